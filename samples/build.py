"""Rebuild the files in ``samples/data/`` from their recipes: ``python -m gandapt.samples.build``.

Every sample file is made by the project's own code from a fixed recipe, so anyone can check where
it came from (``samples/README.md`` has the provenance). Cheap recipes (seconds) run by default;
the trained ones need a work folder for the dataset and the training runs, and resume whatever is
already there::

    python -m gandapt.samples.build                              # the cheap ones
    python -m gandapt.samples.build avatars64.pt avatars64_encoder.pt --work runs/samples

Rebuilding ``avatars64.pt`` from nothing renders 20k avatars (~10 min) and trains ~3 h on two
CPU cores; the encoder then trains ~40 min, the domain encoder ~8 min. ``--list`` names every recipe.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from gandapt.samples import BASE_MODEL, BUNDLE, CLIP, DOMAIN_ENCODER, ENCODER, PACK, data_dir


@dataclass(frozen=True)
class Recipe:
    """How one sample file is made.

    Attributes:
        build: ``build(path, work)`` writes the file (``work`` holds datasets and runs; None for cheap
            recipes).
        trained: needs ``--work`` (a dataset and a training run; hours on CPU).
        about: one line for ``--list``.
        needs: sample files it is made from (a default build skips it while they are missing).
    """

    build: Callable[[Path, Optional[Path]], None]
    trained: bool
    about: str
    needs: Tuple[str, ...] = ()


# ----------------------------------------------------------------------------- tiny_g32.pt


def build_tiny_g32(path: Path, work: Optional[Path] = None) -> None:
    """A random-weight 32 px generator + discriminator (seed 0): the smallest real gandapt model
    (tests and quick experiments)."""
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


# ----------------------------------------------------------------------------- avatars64.pt

# The shipped base model's run, exactly: gandapt-train data avatars + gandapt-train base with these
# settings (the run was stopped after BASE_STEPS steps; `steps` only sets where it ends).
AVATARS = {"n": 20000, "size": 64, "seed": 0}
BASE_STEPS = 9131
BASE_RUN = {"kimg": 2000, "steps": BASE_STEPS, "threads": 2, "checkpoint_minutes": 5, "sample_every": 250,
            "progress": False}
FID_N = 1000


def _dataset(work: Path, data: Optional[Path]) -> Path:
    """The avatar set: ``data`` if given (must hold the recipe's set), else built/resumed in ``work``."""
    from gandapt.trainer.data.avatars import build_avatars, read_dataset_info

    folder = Path(data) if data else work / "avatars64"
    info = read_dataset_info(folder)
    if info is None or not info.get("complete") or info.get("n") != AVATARS["n"]:
        build_avatars(folder, resume=folder.exists(), **AVATARS)
    return folder


def base_run_dir(work: Path) -> Path:
    return work / "base64"


def build_avatars64(path: Path, work: Optional[Path], data: Optional[Path] = None) -> None:
    """Train (or resume) the avatar base model, measure its FID and store G_ema + D in fp16."""
    import torch

    from gandapt.checkpoint import load, save_native
    from gandapt.trainer.gan.loop import train_base
    from gandapt.trainer.gan.options import BaseTrainOptions
    from gandapt.trainer.metrics.evaluate import evaluate_generator

    folder = _dataset(work, data)
    run = base_run_dir(work)
    options = BaseTrainOptions(data=str(folder), out=str(run), **BASE_RUN)
    model = train_base(options, resume=(run / "checkpoint.pt").is_file())
    ckpt = load(model)
    fid = evaluate_generator(ckpt.G, folder, n=FID_N, seed=0, progress=sys.stderr.isatty())
    train = load(run / "checkpoint.pt").extra["train"]
    extra = {
        "recipe": f"python -m gandapt.samples.build {BASE_MODEL} (gandapt.samples.build.build_avatars64)",
        "dataset": {"builder": "gandapt-train data avatars", **AVATARS},
        "training_options": json.loads(json.dumps(ckpt.extra.get("training_options", {}))),
        "images_seen": int(train["images_seen"]),
        "train_seconds": round(float(train["seconds"]), 1),
        "fid": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in fid.items()},
        "stored_dtype": "float16",
    }
    save_native(path, ckpt.G, ckpt.D, extra=extra, force=True, dtype=torch.float16)


# ----------------------------------------------------------------------------- avatars64_encoder.pt

ENCODER_RUN = {"steps": 4000, "threads": 2, "progress": False}


def build_encoder(path: Path, work: Optional[Path], data: Optional[Path] = None) -> None:
    """Train (or resume) the inversion encoder of the shipped base model; store it in fp16."""
    import torch

    from gandapt.checkpoint import load_encoder, save_encoder
    from gandapt.trainer.encoder.loop import train_encoder
    from gandapt.trainer.encoder.options import EncoderTrainOptions

    folder = _dataset(work, data)
    run = work / "encoder64"
    model = path.parent / BASE_MODEL  # the shipped (fp16) model: the encoder must match its fingerprint
    if not model.is_file():
        raise SystemExit(f"{model} is missing; build {BASE_MODEL} first (the encoder inverts into it)")
    options = EncoderTrainOptions(model=str(model), data=str(folder), out=str(run), **ENCODER_RUN)
    done = run / "encoder.pt"
    if not done.is_file():
        train_encoder(options, resume=(run / "checkpoint.pt").is_file())
    enc = load_encoder(done)
    extra = {**enc.extra, "recipe": f"python -m gandapt.samples.build {ENCODER} --work WORK",
             "stored_dtype": "float16"}
    save_encoder(path, enc.E, enc.base_fingerprint, extra=extra, dtype=torch.float16, force=True)


# ----------------------------------------------------------------------------- avatars64_domains.safetensors

# The shipped domains: (name, method, target transform of held-out avatars, shots, extra options).
PACK_DOMAINS = (
    ("sketch", "stylespace", "sketch", 10, {"steps": 250, "variant": "all", "lr": 0.1}),
    ("ink", "stylespace", "ink", 10, {"steps": 150, "variant": "conv"}),
    ("painting", "stylespace", "painting", 10, {"steps": 150, "variant": "all", "sparse": 0.2}),
    ("colorshift", "domain-mod", "colorshift", 10, {"steps": 150}),
)
# Two domains from a multi-domain method: one HyperDomainNet trained over three 10-shot image sets; the pack
# takes its trained ``pixel`` domain and ``sketch_ink``, the 50/50 blend of two of its domains made in its
# conditioning space (reference/methods.md §11.5), which no stored-vector mix reproduces.
HDN_TARGETS = ("pixel", "sketch", "ink")
HDN_OPTIONS = {"steps": 300}
HDN_DOMAINS = (("pixel", {"pixel": 1.0}), ("sketch_ink", {"sketch": 0.5, "ink": 0.5}))


def build_domain_pack(path: Path, work: Optional[Path], data: Optional[Path] = None) -> None:
    """Train the shipped domains on the shipped base model (held-out avatars through each
    transform as targets) and merge them into one pack."""
    from gandapt.pack import DomainPack, load_pack, save_pack
    from gandapt.trainer.adapters.loop import train_adapter
    from gandapt.trainer.adapters.options import AdapterTrainOptions
    from gandapt.trainer.adapters.table import prepare_targets

    model = path.parent / BASE_MODEL
    if not model.is_file():
        raise SystemExit(f"{model} is missing; build {BASE_MODEL} first (the domains adapt it)")
    folder = _dataset(work, data)
    names = {t for _, _, t, _, _ in PACK_DOMAINS} | set(HDN_TARGETS)
    targets = prepare_targets(folder, work / "table", targets=tuple(sorted(names)))
    domains = []
    for name, method, target, shots, extra in PACK_DOMAINS:
        out = work / "pack" / name
        if not (out / "domains.safetensors").is_file():
            train_adapter(AdapterTrainOptions(method=method, model=str(model), out=str(out), target=str(targets[target]),
                                              shots=shots, name=name, progress=False, threads=2, **extra), force=True)
        domains.append(load_pack(out / "domains.safetensors")[name])
    domains += _hdn_domains(model, work / "pack" / "hyperdomainnet", targets)
    base = load_pack(work / "pack" / PACK_DOMAINS[0][0] / "domains.safetensors")
    pack = DomainPack(domains, base.base_config, base.base_fingerprint,
                      meta={"recipe": f"python -m gandapt.samples.build {PACK} --work WORK"})
    save_pack(pack, path, force=True)


def _hdn_domains(model: Path, out: Path, targets: Dict[str, Path]) -> list:
    """The shipped HyperDomainNet domains (trained once in ``out``, then recomputed from the model)."""
    from gandapt.pack import Domain
    from gandapt.trainer.multidomain.loop import train_multidomain
    from gandapt.trainer.multidomain.model import blend, load_hypermodel
    from gandapt.trainer.multidomain.options import MultiDomainTrainOptions

    if not (out / "model.pt").is_file():
        train_multidomain(MultiDomainTrainOptions(
            method="hyperdomainnet", model=str(model), out=str(out), targets=tuple(str(targets[t]) for t in HDN_TARGETS),
            names=HDN_TARGETS, shots=10, threads=2, progress=False, **HDN_OPTIONS), force=True)
    m = load_hypermodel(out / "model.pt")
    return [Domain.from_vector(name, m.full_layout, blend(m, weights),
                               meta={"method": "hyperdomainnet", "blend": weights, "trained_on": list(HDN_TARGETS),
                                     "shots": 10, **HDN_OPTIONS}) for name, weights in HDN_DOMAINS]


# ----------------------------------------------------------------------------- avatars64_domain_encoder.onnx

def build_domain_encoder(path: Path, work: Optional[Path], data: Optional[Path] = None) -> None:
    """Train the DEGAN domain encoder of the shipped base model and export it to ONNX (image -> domain).

    The recipe is the results table's DEGAN row (``trainer/adapters/table_multi.py``): one reference
    encoder over the table's targets at a quarter of the thesis' rate, where its domains beat the unadapted
    model on four of the table's five targets (all but the held-out pixel).
    """
    from gandapt.trainer.adapters.table import TARGETS, prepare_targets
    from gandapt.trainer.adapters.table_multi import MULTI_ROWS, degan_data
    from gandapt.trainer.degan.export import export_domain_encoder
    from gandapt.trainer.degan.file import load_domain_encoder
    from gandapt.trainer.degan.loop import train_degan
    from gandapt.trainer.degan.options import DeganOptions

    model = path.parent / BASE_MODEL
    if not model.is_file():
        raise SystemExit(f"{model} is missing; build {BASE_MODEL} first (the encoder makes domains for it)")
    row = next(r for r in MULTI_ROWS if r.method == "degan")
    targets = prepare_targets(_dataset(work, data), work / "table", targets=TARGETS)
    out = work / "degan"
    if not (out / "degan.pt").is_file():
        train_degan(DeganOptions(model=str(model), out=str(out), data=str(degan_data(work / "table", targets)),
                                 threads=2, progress=False, **row.options), force=True)
    export_domain_encoder(load_domain_encoder(out / "degan.pt"), path, provenance={
        "recipe": f"python -m gandapt.samples.build {DOMAIN_ENCODER} --work WORK", "targets": list(TARGETS),
        **row.options})


# ----------------------------------------------------------------------------- avatars64_bundle/


def build_bundle(path: Path, work: Optional[Path] = None) -> None:
    """Export the shipped model, domains and encoder (decomposed fp32: runs everywhere)."""
    from gandapt.export.bundle import export_bundle

    parts = [path.parent / n for n in (BASE_MODEL, PACK, ENCODER)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise SystemExit(f"build {', '.join(missing)} first (the bundle exports them)")
    export_bundle(parts[0], path, domains=parts[1], encoder=parts[2], force=True, progress=False)


# ----------------------------------------------------------------------------- avatar_clip.mp4


def build_clip(path: Path, work: Optional[Path] = None) -> None:
    """Six seconds of three talking avatars (python-avatars renders) for ``--source sample``."""
    from gandapt.samples.render_clip import build_avatar_clip

    build_avatar_clip(path, force=True)


RECIPES: Dict[str, Recipe] = {
    "tiny_g32.pt": Recipe(build_tiny_g32, False, "random-weight 32 px G + D (tests)"),
    CLIP: Recipe(build_clip, False, "6 s of talking avatars rendered by the project (camera stand-in)"),
    BASE_MODEL: Recipe(build_avatars64, True, "64 px avatar StyleGAN2 with D, fp16 (needs --work; ~3 h CPU)"),
    ENCODER: Recipe(build_encoder, True, "W+ inversion encoder of the base model, fp16 (needs --work; ~40 min CPU)"),
    PACK: Recipe(build_domain_pack, True, "domains sketch, ink, painting, colorshift, pixel, sketch_ink for the base model (needs --work)",
                 (BASE_MODEL,)),
    DOMAIN_ENCODER: Recipe(build_domain_encoder, True, "DEGAN domain encoder of the base model, ONNX: image -> domain "
                           "(needs --work; ~8 min CPU)", (BASE_MODEL,)),
    BUNDLE: Recipe(build_bundle, False, "ONNX bundle of the base model, its domains and encoder",
                   (BASE_MODEL, PACK, ENCODER)),
}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Rebuild gandapt's sample files from their recipes.")
    p.add_argument("names", nargs="*", help="files to build (default: every recipe that needs no training)")
    p.add_argument("--out", type=Path, default=data_dir(), help="target folder (default: samples/data)")
    p.add_argument("--work", type=Path, default=None, help="folder for datasets and training runs (trained recipes)")
    p.add_argument("--data", type=Path, default=None, help="an existing avatars64 set to use instead of building one")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    args = p.parse_args(argv)
    if args.list:
        for name, r in RECIPES.items():
            print(f"{name:<30} {r.about}")
        return
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        p.error(f"unknown sample {unknown[0]!r}; choose from {', '.join(RECIPES)}")
    names = args.names
    if not names:
        names = []
        for n, r in RECIPES.items():
            missing = [f for f in r.needs if not (args.out / f).exists()]
            if r.trained:
                continue
            if missing:
                print(f"skipped {n}: build {', '.join(missing)} first (trained recipes need --work)")
                continue
            names.append(n)
    if any(RECIPES[n].trained for n in names) and args.work is None:
        p.error("trained recipes need --work DIR (dataset and runs are built or resumed there)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        recipe = RECIPES[name]
        if recipe.trained:
            recipe.build(args.out / name, args.work, args.data)
        else:
            recipe.build(args.out / name, None)
        print(f"built {args.out / name}")


if __name__ == "__main__":
    main()
