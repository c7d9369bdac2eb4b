"""The training loop behind ``gandapt-train domain-mod|stylespace|genda|finetune``.

The base generator stays frozen. The method's :mod:`objective <gandapt.trainer.adapters.objectives>`
says what trains — a slice of the runtime domain layout, or (finetune) a copy of the synthesis
weights — and the loss of a step. The run writes ``model.pt``: the base G + D in gandapt's native
format with the adapter state and the domain pack embedded (``extra['domain_pack']``, what
``gandapt-export model.pt`` reads) plus ``domains.safetensors``; finetune writes the tuned G instead
and says so. Checkpoints are atomic; a NaN loss stops the run with the last checkpoint kept.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from gandapt.checkpoint import load as load_model
from gandapt.checkpoint import save_native
from gandapt.device import resolve_device
from gandapt.errors import GandaptError
from gandapt.io import atomic_path, atomic_write_bytes
from gandapt.pack import Domain, DomainPack, pack_bytes
from gandapt.trainer.adapters.methods import METHODS
from gandapt.trainer.adapters.options import AdapterTrainOptions
from gandapt.trainer.adapters.objectives import DirectionalObjective, GenDAObjective, Objective, TiedLayoutParam
from gandapt.trainer.adapters.param import LayoutParam
from gandapt.trainer.adapters.targets import load_targets
from gandapt.trainer.embedders import embedder_from_options
from gandapt.trainer.gan.grid import save_grid
from gandapt.trainer.losses.directional import image_direction, text_direction
from gandapt.trainer.rundir import prepare_out, write_json
from gandapt.trainer.seed import seeded
from gandapt.trainer.steps import Counter, adam_update, check_resume, latent_step_fn, run_steps

CHECKPOINT, FINAL, PACK = "checkpoint.pt", "model.pt", "domains.safetensors"
RUN_FILES = (CHECKPOINT, FINAL, PACK, "log.jsonl", "training_options.json", "samples.png")
RUN_FORMAT = "gandapt.adapter-run"


def train_adapter(options: AdapterTrainOptions, resume: bool = False, force: bool = False,
                  on_step: Optional[Callable[[int], None]] = None) -> Path:
    """Train one domain for a frozen base model.

    Args:
        options: the run's settings (method defaults fill what is None).
        resume: continue the run in ``options.out`` from its checkpoint.
        force: start over in an existing ``options.out``.
        on_step: called with the step number after each completed step.

    Returns:
        Path of ``out/model.pt``.
    """
    options = options.resolved()
    method = METHODS[options.method]
    out = Path(options.out)
    device = resolve_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    base = load_model(options.model, device=device)
    G = base.G.eval().requires_grad_(False)
    layout = G.synthesis.set_domain_stages(method.stages)
    emb = embedder_from_options(options, base.D, device)  # a missing CLIP checkpoint fails here, before any output
    targets = load_targets(options.target, G.img_resolution, options.shots) if options.target else None
    prepare_out(out, resume, force, RUN_FILES, CHECKPOINT)

    with seeded(options.seed):  # GenDA's classifier starts from the same weights for the same --seed
        objective = build_objective(options, G, base, layout, emb, targets, device)
    param = getattr(objective, "param", None)
    opt = torch.optim.Adam(objective.trainable(), lr=options.lr,
                           betas=(0.0, 0.99) if options.method == "finetune" else (0.9, 0.999))
    gen = torch.Generator().manual_seed(options.seed)
    counter = Counter()
    if resume:
        state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
        check_resume(out, out / CHECKPOINT, options.incompatible_with(AdapterTrainOptions.from_dict(state["options"])),
                     state["base_fingerprint"], base.fingerprint)
        with torch.no_grad():
            for p, v in zip(objective.trainable(), state["trainable"]):
                p.copy_(v)
        if hasattr(objective, "load_aux_state"):
            objective.load_aux_state(state["aux"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["rng"])
        counter = Counter(int(state["step"]), float(state["seconds"]))
    write_json(out / "training_options.json", options.to_dict())

    def checkpoint() -> None:
        state = {"gandapt_format": RUN_FORMAT, "trainable": [p.detach().cpu() for p in objective.trainable()],
                 "opt": opt.state_dict(), "rng": gen.get_state(), "step": counter.step, "seconds": counter.seconds,
                 "options": options.to_dict(), "base_fingerprint": base.fingerprint,
                 "aux": objective.aux_state() if hasattr(objective, "aux_state") else {}}
        with atomic_path(out / CHECKPOINT, force=True) as tmp:
            torch.save(state, tmp)

    weights = loss_weights(options)
    grid_z = torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(options.seed + 2)).to(device)

    step_fn = latent_step_fn(G, objective, weights, options.batch, options.truncation, gen, device)

    def samples(step: int) -> None:
        if options.sample_every and step % options.sample_every == 0:
            _grid(G, objective, grid_z, options, out / "samples" / f"step{step:06d}.png")

    run_steps(counter, options.steps, step_fn, adam_update(opt), out=out, desc=options.method,
              progress=options.progress, checkpoint=checkpoint, checkpoint_minutes=options.checkpoint_minutes,
              on_step=on_step, after_step=samples)
    step, seconds = counter.step, counter.seconds

    meta_base = {"path": str(options.model), "format": base.format, "fingerprint": base.fingerprint}
    run_info = {"training_options": options.to_dict(), "steps": step, "train_seconds": round(seconds, 1)}
    if param is None:  # finetune: the weights themselves are the result
        _grid(G, objective, grid_z, options, out / "samples.png")
        print(f"finetune writes a new base model (all synthesis weights changed), not a domain pack: {out / FINAL}",
              file=sys.stderr)
        extra = {"adapter": {"method": "finetune", "trainable_params": sum(p.numel() for p in objective.trainable())},
                 "base": meta_base, **run_info}
        return save_native(out / FINAL, objective.tuned, base.D, extra=extra, force=True)

    vec = param.vector()
    if options.sparse:
        vec = sparsify(vec, param, options.sparse)
        with torch.no_grad():
            param.values.copy_(torch.from_numpy(vec[param.index.cpu().numpy()]))
    domain = Domain.from_vector(options.domain_name(), layout, vec, meta={
        "method": options.method, "variant": options.variant, "sparse": options.sparse,
        "target": options.target or options.text, "shots": options.shots, "embedder": options.embedder,
        "steps": step, "trainable_params": param.num_params, "train_seconds": round(seconds, 1)})
    pack = DomainPack([domain], base.config, base.fingerprint, meta={"made_by": f"gandapt-train {options.method}"})
    data = pack_bytes(pack)
    atomic_write_bytes(out / PACK, data, force=True)
    _grid(G, objective, grid_z, options, out / "samples.png")
    G.synthesis.set_domain_stages()  # back to the full layout before saving
    extra = {"domain_pack": torch.frombuffer(bytearray(data), dtype=torch.uint8),
             "adapter": {"method": options.method, "variant": options.variant, "entries": list(param.names),
                         "values": torch.from_numpy(vec[param.index.cpu().numpy()].copy()),
                         "trainable_params": param.num_params},
             "base": meta_base, **run_info}
    return save_native(out / FINAL, G, base.D, extra=extra, force=True)


def loss_weights(options: AdapterTrainOptions) -> dict:
    """Weights of the losses an objective returns (others are only logged)."""
    if options.method == "genda":
        return {"attribute": 1.0}
    return {"direction": options.lambda_direction, "indomain": options.lambda_indomain, "l2": options.lambda_l2,
            "rec": options.lambda_rec}


def build_objective(options: AdapterTrainOptions, G, base, layout, emb, targets, device) -> Objective:
    """The method's objective, with its fixed target direction or reference images."""
    method = METHODS[options.method]
    if options.method == "genda":
        if targets is None:
            raise GandaptError("genda adapts to reference images: pass --target FOLDER (it has no text mode)")
        names = method.select(layout, options.variant)
        param = (TiedLayoutParam(layout, names, G.config.w_dim, G.num_ws) if options.variant == "shared"
                 else LayoutParam(layout, names))
        return GenDAObjective(param, emb, targets.to(device)).to(device)
    # The target direction is fixed for the run: from a seeded source sample, or from the targets' own
    # inversions (then each reference's content cancels in the direction and only its style remains).
    ref_ws = None
    if targets is not None:
        with torch.no_grad():
            if options.encoder is not None:
                ref_ws = invert(options.encoder, base.fingerprint, targets.to(device), device)
                source = _render(G, ref_ws)
            else:
                z = torch.randn(options.n_source, G.z_dim, generator=torch.Generator().manual_seed(options.seed + 1))
                source = G(z.to(device), truncation_psi=options.truncation)
        direction = image_direction(emb, source, targets.to(device))
    else:
        direction = text_direction(emb, options.source_text, options.text)
    weights = loss_weights(options)
    refs = {"ref_ws": ref_ws, "ref_images": targets.to(device) if ref_ws is not None else None}
    if options.method == "finetune":
        return DirectionalObjective(emb, direction, weights, None, G, **refs).to(device)
    return DirectionalObjective(emb, direction, weights, LayoutParam(layout, method.select(layout, options.variant)),
                                **refs).to(device)


def invert(encoder: str, fingerprint: str, targets: torch.Tensor, device) -> torch.Tensor:
    """W+ inversions [N, num_ws, w_dim] of target images [N, 3, R, R] through the base model's encoder.

    MindTheGap (Zhu et al. 2022, arXiv:2110.08398) takes the reference's GAN inversion G(w_ref) as the
    source of its image direction (with a single reference, a direction from random samples also
    carries whatever that one image's content differs in from the average) and asks G_d(w_ref) to
    reconstruct the reference.

    Raises:
        GandaptError: the encoder is missing, unreadable, or made for another base model.
    """
    enc = checked_encoder(encoder, fingerprint, device)
    return torch.cat([enc.E(targets[i:i + 16]) for i in range(0, len(targets), 16)])


def checked_encoder(encoder: str, fingerprint: str, device="cpu", flag: str = "--encoder"):
    """The inversion encoder file ``encoder``, loaded and checked to invert into the model ``fingerprint``;
    errors name the option ``flag`` it came from.

    Raises:
        GandaptError: the file is missing, unreadable, or made for another base model.
    """
    from pathlib import Path

    from gandapt.checkpoint import load_encoder

    if not Path(encoder).is_file():
        raise GandaptError(f"{flag} {encoder} does not exist; train one with gandapt-train encoder, or use "
                           "gandapt.samples.encoder() for the embedded model")
    enc = load_encoder(encoder, device=str(device))
    if enc.base_fingerprint != fingerprint:
        raise GandaptError(f"{flag} {encoder} inverts into model {enc.base_fingerprint}, not this base model "
                           f"({fingerprint}); pass the encoder trained for --model")
    return enc


def inverted_sources(encoder: str, G, fingerprint: str, targets: torch.Tensor, device) -> torch.Tensor:
    """G(E(x)) [N, 3, R, R] for each target image x: the base-domain image nearest to each reference."""
    return _render(G, invert(encoder, fingerprint, targets, device))


def _render(G, ws: torch.Tensor) -> torch.Tensor:
    return torch.cat([G.synthesis(ws[i:i + 16], noise_mode="const") for i in range(0, len(ws), 16)])


def sparsify(vec: np.ndarray, param: LayoutParam, keep: float) -> np.ndarray:
    """StyleSpaceSparse: keep the top ``keep`` fraction of |Δ| of the trained entries, zero the rest
    (back to identity)."""
    idx = param.index.cpu().numpy()
    ident = param.identity.cpu().numpy()[idx]
    delta = vec[idx] - ident
    k = max(1, int(math.ceil(keep * delta.size)))
    top = np.argsort(-np.abs(delta), kind="stable")[:k]  # exactly k, ties broken by position
    kept = np.zeros_like(delta)
    kept[top] = delta[top]
    delta = kept
    out = vec.copy()
    out[idx] = ident + delta
    return out


@torch.no_grad()
def _grid(G, objective: Objective, z: torch.Tensor, options: AdapterTrainOptions, path: Path) -> None:
    """Two rows: the base model, then the same latents in the domain."""
    ws = G.mapping(z, truncation_psi=options.truncation)
    before = G.synthesis(ws, noise_mode="const")
    after = objective.generator(G).synthesis(ws, domain=objective.domain(), noise_mode="const")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(torch.cat([before, after]), path, cols=len(z))
