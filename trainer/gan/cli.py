"""``gandapt-train base``: a StyleGAN2 from scratch on an image folder (thin layer over train_base)."""

from __future__ import annotations

import dataclasses
from typing import Optional

import click

from gandapt.cli.errors import user_errors

from gandapt.trainer.gan.options import BaseTrainOptions  # torch-free: keeps --help fast

# Defaults come from the options dataclass, so the CLI and the Python API never disagree.
_D = {f.name: f.default for f in dataclasses.fields(BaseTrainOptions) if f.default is not dataclasses.MISSING}


def _channels(ctx, param, value: Optional[str]):
    if value is None:
        return None
    try:
        return tuple(int(c) for c in value.split(","))
    except ValueError:
        raise click.BadParameter("give comma-separated integers, one per resolution 4..R, e.g. 128,128,128,64,32")


@click.command("base", context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--data", required=True, type=click.Path(), help="Image folder (e.g. from `gandapt-train data avatars`).")
@click.option("--out", required=True, type=click.Path(), help="Run directory (checkpoint.pt, model.pt, samples/, log.jsonl).")
@click.option("--strict", is_flag=True, help="Stop on an unreadable image instead of skipping it.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--force", is_flag=True, help="Start over in an existing --out.")
@click.option("--kimg", type=float, default=_D["kimg"], help="Training length in thousands of real images.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Training length in steps (overrides --kimg).")
@click.option("--resolution", type=int, default=None, help="Train at this size [default: the dataset's].")
@click.option("--channels", callback=_channels, default=None,
              help="Widths per resolution 4..R, comma-separated [default: a CPU-friendly preset].")
@click.option("--z-dim", type=int, default=_D["z_dim"])
@click.option("--w-dim", type=int, default=_D["w_dim"])
@click.option("--mapping-layers", type=int, default=_D["mapping_layers"])
@click.option("--batch", type=click.IntRange(min=1), default=_D["batch"], help="Total batch over all processes.")
@click.option("--g-lr", type=float, default=_D["g_lr"])
@click.option("--d-lr", type=float, default=_D["d_lr"])
@click.option("--r1-gamma", type=float, default=_D["r1_gamma"])
@click.option("--r1-interval", type=click.IntRange(min=1), default=_D["r1_interval"])
@click.option("--ema-kimg", type=float, default=_D["ema_kimg"], help="EMA half-life in thousands of images.")
@click.option("--style-mixing", type=click.FloatRange(0, 1), default=_D["style_mixing"])
@click.option("--augment", default=_D["augment"], help="DiffAugment policy (color,translation,cutout) or 'none'.")
@click.option("--xflip/--no-xflip", default=_D["xflip"])
@click.option("--d-downsample", type=click.Choice(["avgpool", "blur"]), default=_D["d_downsample"])
@click.option("--channels-last/--no-channels-last", default=_D["channels_last"])
@click.option("--checkpoint-minutes", type=float, default=_D["checkpoint_minutes"])
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=_D["checkpoint_every"],
              help="Also checkpoint every N steps (0: off).")
@click.option("--sample-every", type=click.IntRange(min=0), default=_D["sample_every"], help="Sample grid every N steps.")
@click.option("--fid-every", type=click.IntRange(min=0), default=_D["fid_every"],
              help="FID/KID of the EMA generator every N steps into metrics.jsonl (0: off).")
@click.option("--fid-n", type=click.IntRange(min=2), default=_D["fid_n"], help="Images per FID measurement.")
@click.option("--seed", type=int, default=_D["seed"])
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch threads [default: torch's choice].")
@click.option("--device", default=_D["device"], help="auto, cpu, cuda, cuda:N.")
@click.option("--progress/--no-progress", default=True)
def base(resume: bool, force: bool, **kwargs) -> None:
    """Train a StyleGAN2 from scratch: non-saturating loss, lazy R1, G EMA, DiffAugment.

    Writes checkpoint.pt every few minutes (atomic; --resume continues it exactly), sample grids,
    log.jsonl and finally model.pt (EMA generator + discriminator, gandapt's native format).
    Several processes: torchrun --nproc_per_node N $(which gandapt-train) base ...
    """
    from gandapt.trainer.gan.loop import train_base

    with user_errors():
        path = train_base(BaseTrainOptions(**kwargs), resume=resume, force=force)
    click.echo(f"wrote {path}")
