"""``gandapt-train domain-mod|stylespace|genda|finetune`` (thin layers over train_adapter)."""

from __future__ import annotations

import click

from gandapt.cli.errors import user_errors
from gandapt.cli.types import PSI
from gandapt.trainer.adapters.methods import METHODS  # torch-free: keeps --help fast
from gandapt.trainer.adapters.options import AdapterTrainOptions

_CTX = {"help_option_names": ["-h", "--help"], "show_default": True}

_HELP = {
    "domain-mod": """Train HyperDomainNet's domain-modulation vector (post-demod input-channel scales).

    \b
    One domain for a frozen base model from target images (one- or few-shot) or, with a local
    CLIP checkpoint, from text. Writes model.pt (base G + D, adapter state, domain pack) and
    domains.safetensors. Example:
      gandapt-train data transform sketch --src data/avatars64 --out data/sketch64 --n 10
      gandapt-train domain-mod --model model.pt --target data/sketch64 --shots 1 --name sketch --out runs/sketch
    """,
    "stylespace": """Train StyleDomain's StyleSpace directions (pre-demod style shifts).

    \b
    --variant conv trains the convs' styles (the paper's 6k-dim space at 1024 px), all adds the
    ToRGB layers (9k); --sparse 0.2 keeps the largest 20% (StyleSpaceSparse). Example:
      gandapt-train stylespace --model model.pt --target data/ink64 --shots 1 --name ink --out runs/ink
    """,
    "genda": """Train GenDA's attribute adaptor on W+ and the last ToRGB from one reference image.

    
    A lightweight attribute classifier on the frozen discriminator decides whether samples carry
    the reference's attribute; the adaptor (w' = a*w + b, per W+ row or --variant shared) learns to
    make them, with truncation during training for diversity. Needs a model with D. Example:
      gandapt-train genda --model model.pt --target data/sunglasses64 --shots 1 --name sunglasses --out runs/sun
    """,
    "finetune": """Fine-tune every synthesis weight with the NADA loss: the baseline the adapters beat.

    
    Writes a new base model (model.pt), not a domain pack: a fine-tuned generator cannot be
    expressed as a runtime domain. Example:
      gandapt-train finetune --model model.pt --target data/sketch64 --shots 1 --out runs/sketch-ft
    """,
}


def _command(method: str) -> click.Command:
    m = METHODS[method]

    @click.command(method, context_settings=_CTX, help=_HELP[method])
    @click.option("--model", required=True, type=click.Path(), help="Frozen base model (any checkpoint format).")
    @click.option("--out", required=True, type=click.Path(), help="Run directory (model.pt, domains.safetensors, samples.png).")
    @click.option("--target", type=click.Path(), default=None, help="Folder of target-domain images.")
    @click.option("--shots", type=click.IntRange(min=1), default=None, help="Use only the first N target images.")
    @click.option("--text", default=None, help="Target prompt (needs --clip).")
    @click.option("--source-text", default="photo", help="Source prompt of the text direction.")
    @click.option("--name", default=None, help="Domain name [default: the target folder's name or the text].")
    @click.option("--variant", type=click.Choice(m.variants), default=m.variants[0])
    @click.option("--sparse", type=click.FloatRange(0, 1, max_open=True), default=0.0, hidden=method != "stylespace",
                  help="Keep this top fraction of |Δs| (StyleSpaceSparse; 0: dense).")
    @click.option("--embedder", type=click.Choice(["vgg", "disc", "inception", "clip"]), default="vgg",
                  help="Image tower the losses use (text targets switch to clip).")
    @click.option("--clip", type=click.Path(), default=None, help="Local open_clip checkpoint (never downloaded).")
    @click.option("--clip-arch", default="ViT-B-32", help="open_clip architecture of --clip.")
    @click.option("--clip-config", type=click.Path(), default=None, help="JSON config registering a custom architecture.")
    @click.option("--steps", type=click.IntRange(min=1), default=m.steps)
    @click.option("--batch", type=click.IntRange(min=2), default=m.batch)
    @click.option("--lr", type=float, default=m.lr)
    @click.option("--lambda-direction", type=float, default=m.losses["direction"], help="NADA directional loss.")
    @click.option("--lambda-indomain", type=float, default=m.losses["indomain"], help="HDN in-domain angle loss.")
    @click.option("--lambda-l2", type=float, default=m.losses["l2"], help="L2 of the domain to identity.")
    @click.option("--encoder", type=click.Path(), default=None,
                  help="Inversion encoder of the base model (gandapt-train encoder): the image direction starts "
                       "from the targets' own inversions G(E(target)) instead of random samples (MindTheGap), so "
                       "the references' content does not leak into the domain.")
    @click.option("--lambda-rec", type=click.FloatRange(min=0), default=0.0,
                  help="MindTheGap reconstruction: G_d(E(x)) should render the reference x (needs --encoder).")
    @click.option("--truncation", type=PSI, default=0.7, help="Truncation psi of the training latents.")
    @click.option("--seed", type=int, default=0)
    @click.option("--checkpoint-minutes", type=float, default=2.0)
    @click.option("--sample-every", type=click.IntRange(min=0), default=0)
    @click.option("--threads", type=click.IntRange(min=1), default=None)
    @click.option("--device", default="auto", help="auto, cpu, cuda, cuda:N.")
    @click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
    @click.option("--force", is_flag=True, help="Start over in an existing --out.")
    @click.option("--progress/--no-progress", default=True)
    def command(resume: bool, force: bool, **kwargs) -> None:
        from gandapt.trainer.adapters.loop import train_adapter

        with user_errors():
            path = train_adapter(AdapterTrainOptions(method=method, **kwargs), resume=resume, force=force)
        click.echo(f"wrote {path}")

    return command


domain_mod = _command("domain-mod")
stylespace = _command("stylespace")
genda = _command("genda")
finetune = _command("finetune")


@click.command("eval", context_settings=_CTX)
@click.argument("model", type=click.Path())
@click.option("--domain", default=None, help="Domain of the model's pack (needed when it holds several).")
@click.option("--domains", "pack", type=click.Path(), default=None, help="A pack file instead of the model's own.")
@click.option("--transform", default=None, help="Known target transform (sketch, painting, ...) for the paired error.")
@click.option("--target-set", type=click.Path(), default=None, help="Target image folder for FID/KID, P/R, quality/diversity.")
@click.option("--n", "n_fid", type=click.IntRange(min=2), default=500, help="Generated and real images for FID/KID and P/R.")
@click.option("--paired-n", type=click.IntRange(min=1), default=128, help="Latents for the paired error.")
@click.option("--embedder", type=click.Choice(["vgg", "inception"]), default="vgg", help="Tower for quality/diversity.")
@click.option("--base", type=click.Path(), default=None, help="Base model a finetune run is compared with [default: recorded].")
@click.option("--seed", type=int, default=0)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def eval_domain(as_json: bool, **kwargs) -> None:
    """Measure a domain: paired error vs a known transform, FID/KID, precision/recall, quality/diversity.

    \b
    Example:
      gandapt-train eval runs/sketch/model.pt --transform sketch --target-set data/sketch64 --n 1000
    """
    import json

    from gandapt.trainer.adapters.evaluate import evaluate_domain

    with user_errors():
        result = evaluate_domain(progress=not as_json, **kwargs)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        click.echo(f"{key:<14} {value:.4f}" if isinstance(value, float) else f"{key:<14} {value}")


@click.command("table", context_settings=_CTX)
@click.option("--model", required=True, type=click.Path(), help="The base model every method adapts.")
@click.option("--data", required=True, type=click.Path(), help="Its avatar set (the held-out tail becomes the targets).")
@click.option("--work", required=True, type=click.Path(), help="Folder for targets, runs and cached metrics.")
@click.option("--out", default="benchmarks/results", type=click.Path(), help="Where adaptation.{md,json,png} go.")
@click.option("--retrain", is_flag=True, help="Rerun every training run (default: train only missing runs).")
@click.option("--no-train", is_flag=True, help="Only evaluate and render the runs already in --work.")
@click.option("--n", "n_fid", type=click.IntRange(min=2), default=250, help="Images per FID/KID and P/R.")
@click.option("--paired-n", type=click.IntRange(min=1), default=128)
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option("--encoder", type=click.Path(), default=None,
              help="Inversion encoder of --model: image directions start from the targets' inversions (MindTheGap; "
                   "the single-domain rows but genda, and dynagan).")
@click.option("--id-encoder", type=click.Path(), default=None,
              help="Inversion encoder of --model as dynagan's identity network [default: the shipped encoder, for "
                   "the shipped base model].")
@click.option("--only", multiple=True,
              help="Train and measure only this row (repeatable; e.g. dynagan); every other row is carried over "
                   "unchanged from the adaptation.json already in --out. The figure is redrawn only when --work "
                   "holds every run it shows.")
def table(model: str, data: str, work: str, out: str, retrain: bool, no_train: bool, n_fid: int, paired_n: int,
          threads, encoder, id_encoder, only) -> None:
    """Train and evaluate every method on the avatar targets; write the results table.

    \b
    Each run has a fixed step budget (finetune/domain-mod/stylespace 150, genda 300; learning rates a
    quarter to a fifth of the CLI defaults, which overshoot at 64 px): 1-shot runs on every target,
    10-shot runs on sketch. Then one model per multi-domain method over all targets (hyperdomainnet 300
    steps, dynagan 300 with its identity loss, expansion 200, degan 300 at a quarter of its default lr);
    hyperdomainnet and degan also make domains for held-out targets (colorshift, pixel). On 2 CPU cores a run takes
    about 4 minutes with its metrics, the table about 2 hours. Saved runs and metrics are reused (a run whose options
    changed is retrained), so rerunning only renders.
    """
    from gandapt.trainer.adapters.table import build_table

    with user_errors():
        path = build_table(model, data, work, out, retrain=retrain, train=not no_train, n_fid=n_fid,
                           paired_n=paired_n, threads=threads, encoder=encoder, id_encoder=id_encoder,
                           only=tuple(only))
    click.echo(f"wrote {path}")


@click.command("oracle", context_settings=_CTX)
@click.argument("model", type=click.Path())
@click.option("--transform", required=True, help="Known avatar transform (sketch, ink, painting, ...).")
@click.option("--method", type=click.Choice([m for m in METHODS if m != "finetune"]), default="domain-mod",
              help="Whose layout entries to train.")
@click.option("--variant", default=None, help="The method's variant [default: its first].")
@click.option("--steps", type=click.IntRange(min=1), default=200)
@click.option("--batch", type=click.IntRange(min=1), default=8)
@click.option("--lr", type=float, default=None, help="Adam step [default: the method's].")
@click.option("--paired-n", type=click.IntRange(min=1), default=128, help="Latents for the paired error.")
@click.option("--seed", type=int, default=0)
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def oracle(model: str, as_json: bool, steps: int, **kwargs) -> None:
    """Bound a method's parameterisation: train its entries on the paired error to a known transform.

    \b
    Not an adaptation method (nobody has these pairs): the floor its few parameters could reach, to
    tell a capacity limit from a loss that points the wrong way. Example:
      gandapt-train oracle samples/data/avatars64.pt --transform ink --method domain-mod --steps 200
    """
    import json

    from tqdm.auto import tqdm

    from gandapt.trainer.adapters.oracle import paired_oracle

    bars = []  # opened at the first step, so bad input fails before a bar is drawn

    def step(i: int, loss: float) -> None:
        if not bars:
            bars.append(tqdm(total=steps, desc="oracle", disable=as_json))
        bars[0].update(1)
        bars[0].set_postfix(l1=f"{loss:.4f}")

    with user_errors():
        try:
            result = paired_oracle(model, steps=steps, on_step=step, **kwargs)
        finally:
            for bar in bars:
                bar.close()
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        click.echo(f"{key:<18} {value:.4f}" if isinstance(value, float) else f"{key:<18} {value}")
