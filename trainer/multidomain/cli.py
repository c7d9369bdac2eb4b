"""``gandapt-train hyperdomainnet|dynagan`` (thin layers over train_multidomain)."""

from __future__ import annotations

import click

from gandapt.cli.errors import user_errors
from gandapt.cli.types import PSI
from gandapt.trainer.multidomain.options import CONTRAST_SPACES, DEFAULTS, MultiDomainTrainOptions  # torch-free

_CTX = {"help_option_names": ["-h", "--help"], "show_default": True}

_HELP = {
    "hyperdomainnet": """Train HyperDomainNet: one hypernetwork predicting domain-modulation vectors for many domains.

    \b
    Conditioned on each domain's embedding (the mean image embedding of a --target folder, or with
    a local CLIP checkpoint the embedding of a --text prompt); afterwards a new image set or prompt
    gives a domain with no training (gandapt.trainer.multidomain.model.domain_from_images). Needs
    at least 2 domains. Writes model.pt (base G + D, the hypernetwork, the trained domains' pack)
    and domains.safetensors. --id-encoder (the base model's inversion encoder) adds DynaGAN's
    identity loss, which the paper lacks: the domains then keep each sample's content. Example:
      gandapt-train hyperdomainnet --model model.pt --target data/sketch64 --target data/ink64 \\
          --target data/painting64 --shots 10 --out runs/hdn
    """,
    "dynagan": """Train DynaGAN: one hypernetwork giving each target set a rank-1 kernel residual + output scales.

    \b
    One-hot domain codes over the --target folders (at least 2), the contrastive-adaptation loss
    between them, and exact runtime tensors (r1_out/r1_in/r1_k + out_scale). The identity loss, whose
    gradient the released code lost, trains when --id-encoder names an identity network (the base
    model's inversion encoder); without it the term is off, as released. Example:
      gandapt-train dynagan --model model.pt --target data/sketch64 --target data/ink64 --shots 1 \\
          --id-encoder encoder.pt --out runs/dyna
    """,
}


def _command(method: str) -> click.Command:
    d = DEFAULTS[method]

    @click.command(method, context_settings=_CTX, help=_HELP[method])
    @click.option("--model", required=True, type=click.Path(), help="Frozen base model (any checkpoint format).")
    @click.option("--out", required=True, type=click.Path(), help="Run directory (model.pt, domains.safetensors, samples.png).")
    @click.option("--target", "targets", multiple=True, type=click.Path(), help="Folder of one domain's images (repeat per domain).")
    @click.option("--text", "texts", multiple=True, hidden=method == "dynagan",
                  help="One domain's prompt (repeat per domain; needs --clip).")
    @click.option("--name", "names", multiple=True, help="Domain names, one per --target/--text [default: folder names / prompts].")
    @click.option("--shots", type=click.IntRange(min=1), default=None, help="Use only the first N images of each folder.")
    @click.option("--source-text", default="photo", hidden=method == "dynagan", help="Source prompt of the text directions.")
    @click.option("--embedder", type=click.Choice(["vgg", "disc", "inception", "clip"]), default="vgg",
                  help="Tower for the conditioning and the losses (text domains switch to clip).")
    @click.option("--clip", type=click.Path(), default=None, help="Local open_clip checkpoint (never downloaded).")
    @click.option("--clip-arch", default="ViT-B-32", help="open_clip architecture of --clip.")
    @click.option("--clip-config", type=click.Path(), default=None, help="JSON config registering a custom architecture.")
    @click.option("--steps", type=click.IntRange(min=1), default=d["steps"])
    @click.option("--batch", type=click.IntRange(min=2), default=d["batch"])
    @click.option("--lr", type=float, default=d["lr"])
    @click.option("--hidden", type=click.IntRange(min=1), default=d["hidden"], help="Hypernetwork width.")
    @click.option("--depth", type=click.IntRange(min=1), default=d["depth"], hidden=method == "dynagan",
                  help="Mapper backbone depth (input layer + residual blocks).")
    @click.option("--lambda-direction", type=float, default=d["lambda_direction"], help="Directional loss.")
    @click.option("--lambda-indomain", type=float, default=d["lambda_indomain"], hidden=method == "dynagan",
                  help="In-domain angle loss.")
    @click.option("--lambda-tt", type=float, default=d["lambda_tt"], hidden=method == "dynagan",
                  help="Target-target direction loss.")
    @click.option("--lambda-norm", type=float, default=d["lambda_norm"], hidden=method == "dynagan",
                  help="Domain-norm: mean squared δ of the modulation.")
    @click.option("--mixing", type=click.FloatRange(0, 1), default=d["mixing"], hidden=method == "dynagan",
                  help="Fraction of samples conditioned on a random convex mix of the domains.")
    @click.option("--lambda-contrast", type=float, default=d["lambda_contrast"], hidden=method != "dynagan",
                  help="Contrastive-adaptation loss.")
    @click.option("--lambda-id", type=float, default=None,
                  help=("Identity loss, its released gradient bug fixed" if method == "dynagan" else
                        "Identity loss (DynaGAN's; not in HyperDomainNet)") + "; needs --id-encoder.  [default: "
                       f"{d['lambda_id']:g} with --id-encoder, else 0]")
    @click.option("--id-encoder", type=click.Path(), default=None,
                  help="Inversion encoder of the base model as the identity loss's network (ArcFace has no "
                       "weights offline): keeps each sample's content while its style changes.")
    @click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, hidden=method != "dynagan",
                  help="Temperature of the contrastive logits.")
    @click.option("--contrast-space", type=click.Choice(CONTRAST_SPACES), default="embedding",
                  hidden=method != "dynagan",
                  help="Contrast the adapted images' embeddings with the references' (the paper), or their "
                       "directions from G(w) with the domains' directions. With the offline VGG embedder the "
                       "second helped sketch and ink and hurt painting (adaptation_discussion.md).")
    @click.option("--encoder", type=click.Path(), default=None, hidden=method != "dynagan",
                  help="Inversion encoder of the base model (gandapt-train encoder; gandapt.samples.encoder() for "
                       "the embedded one): each domain's direction starts at its references' inversions G(E(x)), "
                       "as DynaGAN's MindTheGap loss does with II2S, instead of at random samples.")
    @click.option("--truncation", type=PSI, default=0.7, help="Truncation psi of the training latents.")
    @click.option("--seed", type=int, default=0)
    @click.option("--checkpoint-minutes", type=float, default=2.0)
    @click.option("--threads", type=click.IntRange(min=1), default=None)
    @click.option("--device", default="auto", help="auto, cpu, cuda, cuda:N.")
    @click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
    @click.option("--force", is_flag=True, help="Start over in an existing --out.")
    @click.option("--progress/--no-progress", default=True)
    def command(resume: bool, force: bool, **kwargs) -> None:
        with user_errors():
            from gandapt.trainer.multidomain.loop import train_multidomain

            path = train_multidomain(MultiDomainTrainOptions(method=method, **kwargs), resume=resume, force=force)
        click.echo(f"wrote {path}")

    return command


hyperdomainnet = _command("hyperdomainnet")
dynagan = _command("dynagan")
