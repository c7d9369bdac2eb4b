"""``gandapt-generate``: render a seeded grid of images from a model, optionally in one domain.

:func:`generate_grid` does the work and returns a JSON-ready summary; the click command prints it as
one line or, with ``--json``, as JSON only. With no MODEL the embedded base model
(:func:`gandapt.samples.base_model`) is used, so a fresh install can show a working generator.
Images depend only on the model, ``seed``, ``n``, ``truncation`` and the domain (constant noise).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

import click

from gandapt.cli.errors import user_errors
from gandapt.cli.types import PSI
from gandapt.errors import DomainError, GandaptError

PathLike = Union[str, os.PathLike]


def generate_grid(
    model: Optional[PathLike] = None,    # checkpoint of any supported format; None = embedded base model
    out: PathLike = "grid.png",          # PNG to write
    n: int = 16,                         # number of images
    seed: int = 0,                       # seed of the latents z
    truncation: float = 0.7,             # truncation psi (1 = none)
    domain: Optional[str] = None,        # domain name to render in; None = the base generator
    domains: Optional[PathLike] = None,  # domain pack; None = the model's own extra['domain_pack']
    cols: Optional[int] = None,          # grid columns; None = ceil(sqrt(n))
    force: bool = False,                 # overwrite an existing ``out``
    device: str = "cpu",                 # torch device to render on
) -> Dict[str, Any]:
    """Render ``n`` images from seeded latents and save them as one PNG grid.

    Args:
        model: a checkpoint (rosinality ``.pt``, NVlabs ``.pkl``/state dict, gandapt native ``.pt``);
            None uses :func:`gandapt.samples.base_model`.
        out: the PNG file to write (atomically).
        n: number of images, at least 1.
        seed: seed of the ``torch.Generator`` drawing z [n, z_dim].
        truncation: truncation psi towards the model's average latent.
        domain: render in this domain of the pack; None renders the base generator.
        domains: a domain-pack file; None falls back to the model's ``extra['domain_pack']``.
        cols: images per grid row (at most ``n``); None = ceil(sqrt(n)).
        force: replace an existing ``out``.
        device: where the generator runs ('cpu', 'cuda', ...).

    Returns:
        ``{"path", "n", "cols", "seed", "truncation", "resolution", "model", "fingerprint", "domain",
        "seconds"}``.

    Raises:
        GandaptError: missing model (or embedded model), ``out`` exists without ``force``, ``n``/``cols``
            below 1, ``--domain`` without a pack, an unknown domain (lists the available ones), or a
            pack made for another model.
    """
    t0 = time.perf_counter()
    if n < 1 or (cols is not None and cols < 1):
        raise GandaptError(f"--n and --cols must be at least 1 (got n={n}, cols={cols})")
    if domains is not None and domain is None:
        raise GandaptError("--domains needs --domain NAME to pick the domain to render")
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise GandaptError(f"{out}: the grid is written as PNG; give an --out path ending in .png")
    from gandapt.io import check_writable

    check_writable(out, force)  # fail before loading anything
    model = _default_model() if model is None else Path(model)

    import torch

    import gandapt
    from gandapt.trainer.gan.grid import save_grid

    ckpt = gandapt.load(model, device=device, with_d=False)
    G = ckpt.G
    vec = None if domain is None else _domain_vector(ckpt, domain, domains)  # [1, D] or None
    with torch.no_grad():
        z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))  # [n, z_dim], on CPU
        ws = G.mapping(z.to(device), truncation_psi=truncation)                     # [n, num_ws, w_dim]
        d = None if vec is None else vec.to(device)
        images = G.synthesis(ws, domain=d, noise_mode="const")                      # [n, 3, R, R] in [-1, 1]
    cols = min(cols or math.ceil(math.sqrt(n)), n)
    save_grid(images, out, cols=cols, force=force)
    return {
        "path": str(out), "n": n, "cols": cols, "seed": seed, "truncation": truncation,
        "resolution": G.img_resolution, "model": str(ckpt.path), "fingerprint": ckpt.fingerprint,
        "domain": domain, "seconds": round(time.perf_counter() - t0, 3),
    }


def _default_model() -> Path:
    from gandapt.samples import base_model

    try:
        return base_model()
    except GandaptError as err:
        raise GandaptError(f"no MODEL given and the embedded base model is missing ({err}); "
                           "pass a checkpoint path as MODEL") from None


def _domain_vector(ckpt: Any, name: str, domains: Optional[PathLike]) -> Any:
    """Domain ``name`` of the pack (``domains`` or the model's own) as a tensor [1, D] in ``G.layout``."""
    import torch

    from gandapt.export.bundle import _resolve_pack  # the model.pt pack contract lives there
    from gandapt.pack import check_compatible

    pack = _resolve_pack(ckpt, domains)
    if not len(pack):
        raise DomainError(f"--domain {name} needs a domain pack, and {ckpt.path} carries none; "
                          "pass --domains PACK")
    check_compatible(pack, ckpt.config, ckpt.fingerprint)
    vec = pack.vector(name, layout=ckpt.G.layout)  # [D]; an unknown name lists the available ones
    return torch.from_numpy(vec)[None]             # [1, D], one domain for the whole batch


def _summary_line(s: Dict[str, Any]) -> str:
    rows = math.ceil(s["n"] / s["cols"])
    res = s["resolution"]
    return (f"wrote {s['path']}: {s['n']} images of {res}x{res} ({rows}x{s['cols']} grid) from {s['model']} "
            f"[{s['fingerprint']}], seed {s['seed']}, truncation {s['truncation']:g}, "
            f"domain {s['domain'] or 'none'}, {s['seconds']:.1f} s")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", required=False, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("grid.png"), show_default=True,
              help="PNG file to write.")
@click.option("--n", "n", type=click.IntRange(min=1), default=16, show_default=True, help="Number of images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latents.")
@click.option("--truncation", type=PSI, default=0.7, show_default=True, metavar="PSI",
              help="Truncation psi (1 = none).")
@click.option("--domains", type=click.Path(path_type=Path), metavar="PACK",
              help="Domain pack to take --domain from (default: the model's own pack).")
@click.option("--domain", metavar="NAME", help="Render in this domain of the pack.")
@click.option("--cols", type=click.IntRange(min=1), help="Images per row (default: a square-ish grid).")
@click.option("--device", default="cpu", show_default=True, help="Torch device to render on: auto, cpu, cuda, cuda:N.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON only.")
@user_errors()
def main(model: Optional[Path], out: Path, n: int, seed: int, truncation: float, domains: Optional[Path],
         domain: Optional[str], cols: Optional[int], device: str, force: bool, as_json: bool) -> None:
    """Render a grid of N seeded images from MODEL (default: the embedded base model) into a PNG.

    The same seed gives the same images. With --domain, the images are rendered in that domain of
    --domains PACK, or of the pack stored in the model file.
    """
    from gandapt.device import resolve_device  # imports torch: not at module level, so --help stays fast

    summary = generate_grid(model, out, n=n, seed=seed, truncation=truncation, domain=domain,
                            domains=domains, cols=cols, force=force, device=str(resolve_device(device)))
    click.echo(json.dumps(summary, indent=2) if as_json else _summary_line(summary))


if __name__ == "__main__":
    main()
