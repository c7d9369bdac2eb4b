"""``gandapt-train expansion`` (a thin layer over :func:`~gandapt.trainer.expansion.loop.train_expansion`)."""

from __future__ import annotations

import click

from gandapt.cli.errors import user_errors
from gandapt.cli.types import PSI

_CTX = {"help_option_names": ["-h", "--help"], "show_default": True}


@click.command("expansion", context_settings=_CTX)
@click.option("--model", required=True, type=click.Path(), help="Base model to expand (any checkpoint format).")
@click.option("--out", required=True, type=click.Path(), help="Run directory (model.pt, domains.safetensors, samples.png).")
@click.option("--target", "targets", multiple=True, help="A new domain's image folder, [NAME=]FOLDER; repeat per domain.")
@click.option("--text", "texts", multiple=True, help="A new domain's prompt, [NAME=]PROMPT (needs --clip); repeatable.")
@click.option("--source-text", default="photo", help="Source prompt of the text directions.")
@click.option("--shots", type=click.IntRange(min=1), default=None, help="Use only the first N images of each folder.")
@click.option("--embedder", type=click.Choice(["vgg", "disc", "inception", "clip"]), default="vgg",
              help="Image tower of the losses (text targets switch to clip).")
@click.option("--clip", type=click.Path(), default=None, help="Local open_clip checkpoint (never downloaded).")
@click.option("--clip-arch", default="ViT-B-32", help="open_clip architecture of --clip.")
@click.option("--clip-config", type=click.Path(), default=None, help="JSON config registering a custom architecture.")
@click.option("--dormant-ratio", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1,
              help="A W direction is dormant when its std is below this fraction of the largest.")
@click.option("--basis-samples", type=click.IntRange(min=2), default=4096, help="Latents of the PCA of W.")
@click.option("--distance", type=click.FloatRange(0, min_open=True), default=5.0,
              help="Subspace distance s (domain = w + s*v_d), in units of W's largest std.")
@click.option("--steps", type=click.IntRange(min=1), default=300)
@click.option("--batch", type=click.IntRange(min=2), default=4, help="Latents per step, cycled over the domains.")
@click.option("--lr", type=float, default=0.002)
@click.option("--lambda-expand", type=float, default=1.0, help="NADA directional loss of the new domains.")
@click.option("--lambda-recon", type=float, default=10.0, help="Pixel MSE keeping the base subspace.")
@click.option("--lambda-recon-feat", type=float, default=10.0, help="Embedding distance keeping the base subspace.")
@click.option("--lambda-indomain", type=float, default=0.5, help="HDN in-domain angle of each new domain.")
@click.option("--truncation", type=PSI, default=0.7, help="Truncation psi of the training latents.")
@click.option("--seed", type=int, default=0)
@click.option("--checkpoint-minutes", type=float, default=2.0)
@click.option("--sample-every", type=click.IntRange(min=0), default=0)
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option("--device", default="auto", help="auto, cpu, cuda, cuda:N.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--force", is_flag=True, help="Start over in an existing --out.")
@click.option("--progress/--no-progress", default=True)
def expansion(resume: bool, force: bool, **kwargs) -> None:
    """Domain Expansion: repurpose dormant latent directions of the base model as new domains.

    \b
    Finds the directions of W the base model barely uses (PCA of the mapping's outputs), gives
    each new domain one of them, and trains the synthesis weights so that w + s*v_d is the domain
    while images at ordinary latents stay those of the base model. Writes an expanded base model
    (model.pt, a new fingerprint) and domains.safetensors whose domains are W offsets that only
    work on that expanded model. Example:
      gandapt-train expansion --model model.pt --target sketch=data/sketch64 --target ink=data/ink64 \\
          --shots 4 --steps 300 --out runs/expanded
    """
    from gandapt.trainer.expansion.loop import train_expansion
    from gandapt.trainer.expansion.options import ExpansionOptions

    with user_errors():
        path = train_expansion(ExpansionOptions(**kwargs), resume=resume, force=force)
    click.echo(f"wrote {path}")
