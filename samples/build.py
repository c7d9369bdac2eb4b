"""Rebuild the files in ``samples/data/`` from their recipes: ``python -m gandapt.samples.build``.

Every sample file is made by the project's own code from a fixed recipe, so anyone can check
where it came from. Later issues add the trained base model, encoder, domain pack, bundle and clip
as further recipes here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Dict

from gandapt.samples import data_dir


def build_tiny_g32(path: Path) -> None:
    """A random-weight 32 px generator + discriminator (seed 0): the smallest real gandapt model.

    It is what the README's first command inspects until the trained avatar model ships.
    """
    import torch

    from gandapt.checkpoint import save_native
    from gandapt.config import DiscriminatorConfig, GeneratorConfig
    from gandapt.discriminator import Discriminator
    from gandapt.generator import Generator

    channels = (32, 32, 16, 16)
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=32, w_dim=32, img_resolution=32, channels=channels, mapping_layers=2))
    D = Discriminator(DiscriminatorConfig(img_resolution=32, channels=channels))
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mean_latent(1024, seed=0))
    save_native(path, G, D, extra={"recipe": "tiny_g32: random weights, torch.manual_seed(0)"}, force=True)


RECIPES: Dict[str, Callable[[Path], None]] = {
    "tiny_g32.pt": build_tiny_g32,
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Rebuild gandapt's sample files from their recipes.")
    p.add_argument("names", nargs="*", help=f"files to build (default: all of {', '.join(RECIPES)})")
    p.add_argument("--out", type=Path, default=data_dir(), help="target folder (default: samples/data)")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        p.error(f"unknown sample {unknown[0]!r}; choose from {', '.join(RECIPES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or RECIPES:
        RECIPES[name](args.out / name)
        print(f"built {args.out / name}")


if __name__ == "__main__":
    main()
