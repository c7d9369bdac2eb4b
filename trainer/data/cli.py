"""``gandapt-train data``: build the avatar dataset and its target-domain copies.

Thin click layers over :func:`~gandapt.trainer.data.avatars.build_avatars` and
:func:`~gandapt.trainer.data.transforms.transform_dataset`, with the same parameters. User errors
print one line and exit 1 (DESIGN §9).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from gandapt.cli.errors import user_errors

_OUT = click.Path(file_okay=False, path_type=Path)


@click.group("data", context_settings={"help_option_names": ["-h", "--help"]})
def data() -> None:
    """Build and transform the image datasets the trainer learns from."""


@data.command("avatars")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of images.")
@click.option("--size", type=click.IntRange(min=8), default=64, show_default=True, help="Image side in px.")
@click.option("--out", type=_OUT, required=True, help="Output folder (new or empty, unless --resume/--force).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Dataset seed; image i depends only on (seed, i).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Rendering processes (0: one per core).")
@click.option("--render-size", type=int, default=256, show_default=True,
              help="Rasterisation side before downsampling (>= 256: cairosvg loses colours below).")
@click.option("--resume", is_flag=True,
              help="Keep valid images already in --out and render the rest (or extend to --n).")
@click.option("--force", is_flag=True, help="Delete an earlier avatar dataset in --out and rebuild it.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def avatars(n: int, size: int, out: Path, seed: int, workers: int, render_size: int, resume: bool,
            force: bool, progress: bool) -> None:
    """Render --n python-avatars cartoon faces into --out (PNGs, manifest.jsonl, dataset.json)."""
    from gandapt.trainer.data.avatars import build_avatars

    with user_errors():
        result = build_avatars(out, n, size=size, seed=seed, workers=workers, render_size=render_size,
                               force=force, resume=resume, progress=progress)
    rate = result.rendered / result.seconds if result.seconds > 0 else 0.0
    click.echo(f"{out}: rendered {result.rendered}, kept {result.kept} of {n} avatars at {size}x{size} "
               f"in {result.seconds:.1f} s ({rate:.1f} img/s)")


@data.command("transform")
@click.argument("name", required=False)
@click.option("--src", type=click.Path(file_okay=False, path_type=Path), help="Source folder of images.")
@click.option("--out", type=_OUT, help="Output folder (new or empty, unless --force).")
@click.option("--force", is_flag=True, help="Replace an earlier gandapt dataset in --out.")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Threads (0: one per core).")
@click.option("--list", "list_", is_flag=True, help="List the transforms with versions and exit.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def transform(name: Optional[str], src: Optional[Path], out: Optional[Path], force: bool, workers: int,
              list_: bool, progress: bool) -> None:
    """Write transform NAME of every image in --src to --out, with the same file names.

    NAME is a transform from --list, or subset:ATTRIBUTE=VALUE to copy the images of an avatar
    dataset whose manifest attribute matches (e.g. subset:accessory=SUNGLASSES).
    """
    from gandapt.trainer.data.transforms import list_transforms, transform_dataset

    if list_:
        click.echo("\n".join(list_transforms()))
        return
    missing = [flag for flag, value in (("NAME", name), ("--src", src), ("--out", out)) if not value]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or pass --list to see the transforms)")
    with user_errors():
        result = transform_dataset(name, src, out, force=force, workers=workers, progress=progress)
    click.echo(f"{out}: wrote {result.written} images ({name}) in {result.seconds:.1f} s")
    if result.skipped:
        click.echo(f"skipped {len(result.skipped)} unreadable or too-small source image(s), first: "
                   f"{result.skipped[0]}", err=True)
