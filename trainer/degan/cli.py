"""``gandapt-train degan`` (a thin layer over :func:`~gandapt.trainer.degan.loop.train_degan`)."""

from __future__ import annotations

import click

from gandapt.cli.errors import user_errors
from gandapt.cli.types import PSI

_CTX = {"help_option_names": ["-h", "--help"], "show_default": True}


@click.command("degan", context_settings=_CTX)
@click.option("--model", required=True, type=click.Path(), help="Frozen base model (any checkpoint format).")
@click.option("--out", required=True, type=click.Path(), help="Run directory (degan.pt; with --reference also "
              "domains.safetensors and model.pt).")
@click.option("--data", required=True, type=click.Path(), help="Folder (searched recursively) of domain images.")
@click.option("--reference", "references", multiple=True,
              help="After training, make a domain from this image, [NAME=]PATH; repeatable.")
@click.option("--embedder", type=click.Choice(["vgg", "disc", "inception", "clip"]), default="vgg",
              help="Image tower of the losses.")
@click.option("--clip", type=click.Path(), default=None, help="Local open_clip checkpoint (never downloaded).")
@click.option("--clip-arch", default="ViT-B-32", help="open_clip architecture of --clip.")
@click.option("--clip-config", type=click.Path(), default=None, help="JSON config registering a custom architecture.")
@click.option("--channels", default="32,64,128,128", help="Backbone stage widths, comma-separated.")
@click.option("--hidden", type=click.IntRange(min=1), default=128, help="Width of the per-layer head MLPs.")
@click.option("--steps", type=click.IntRange(min=1), default=1000)
@click.option("--domains-per-step", type=click.IntRange(min=1), default=4, help="Domain images per step.")
@click.option("--latents-per-domain", type=click.IntRange(min=1), default=2, help="Latents rendered per image.")
@click.option("--lr", type=float, default=1e-3)
@click.option("--lr-gamma", type=float, default=0.9999, help="ExponentialLR decay per step.")
@click.option("--grad-clip", type=float, default=100.0)
@click.option("--fade-steps", type=click.IntRange(min=0), default=200, help="Offsets fade in 0.1 -> 1 over N steps.")
@click.option("--lambda-direction", type=float, default=1.0, help="Directional loss towards each image.")
@click.option("--lambda-tt", type=float, default=1.0, help="HDN tt-direction between the step's domains.")
@click.option("--lambda-indomain", type=float, default=12.0, help="In-domain angle within each domain.")
@click.option("--truncation", type=PSI, default=0.7)
@click.option("--seed", type=int, default=0)
@click.option("--checkpoint-minutes", type=float, default=2.0)
@click.option("--sample-every", type=click.IntRange(min=0), default=0)
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option("--device", default="auto", help="auto, cpu, cuda, cuda:N.")
@click.option("--onnx", "onnx_path", type=click.Path(), default=None,
              help="Also export the trained encoder to this .onnx (image -> domain), checked in onnxruntime.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--force", is_flag=True, help="Start over in an existing --out.")
@click.option("--progress/--no-progress", default=True)
def degan(channels: str, onnx_path, resume: bool, force: bool, **kwargs) -> None:
    """Train DEGAN's domain encoder: a reference image -> StyleSpace offsets in one forward pass.

    \b
    The encoder learns from a folder of domain images (e.g. several transformed avatar sets) so
    that any new image becomes a domain without training (s_shift on every layer of the frozen
    base model). Example:
      gandapt-train degan --model model.pt --data data/domains64 --steps 1000 \\
          --reference sketch=data/heldout/sketch.png --onnx runs/degan/domain_encoder.onnx --out runs/degan
    """
    from gandapt.errors import GandaptError
    from gandapt.trainer.degan.loop import train_degan
    from gandapt.trainer.degan.options import DeganOptions

    with user_errors():
        try:
            widths = tuple(int(c) for c in channels.split(",") if c.strip())
        except ValueError:
            raise GandaptError(f"--channels {channels!r} is not a comma-separated list of integers") from None
        if onnx_path:  # an existing .onnx, or a folder that takes no files, is refused before training
            from gandapt.io import check_writable, temp_beside

            check_writable(onnx_path, force)
            temp_beside(onnx_path).unlink()
        path = train_degan(DeganOptions(channels=widths, **kwargs), resume=resume, force=force)
        if onnx_path:
            from gandapt.trainer.degan.export import export_domain_encoder
            from gandapt.trainer.degan.file import load_domain_encoder

            info = export_domain_encoder(load_domain_encoder(path), onnx_path)
            click.echo(f"wrote {info['path']} (max |onnxruntime - torch| {info['max_abs_diff']:.2g})")
    click.echo(f"wrote {path}")
