"""The training loop behind ``gandapt-train hyperdomainnet|dynagan``.

The base generator stays frozen; the hypernetwork trains over all the run's domains at once. The run
writes ``model.pt`` (the base G + D in gandapt's native format, ``extra['hypernet']`` — the
hypernetwork, see :mod:`.model` — and ``extra['domain_pack']`` with the trained domains' exact
tensors) plus ``domains.safetensors``. Like the single-domain loop (:mod:`gandapt.trainer.adapters.loop`):
a progress bar, atomic checkpoints every ``checkpoint_minutes``, ``--resume``, refusal to reuse
``--out`` without ``--resume``/``--force``, and a NaN loss stops the run keeping the last checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import torch
from torch.nn import functional as F

from gandapt.checkpoint import load as load_model
from gandapt.checkpoint import save_native
from gandapt.device import resolve_device
from gandapt.errors import GandaptError
from gandapt.io import atomic_path, atomic_write_bytes
from gandapt.pack import Domain, DomainPack, pack_bytes
from gandapt.trainer.embedders import embedder_from_options
from gandapt.trainer.adapters.loop import checked_encoder, inverted_sources
from gandapt.trainer.adapters.targets import load_targets
from gandapt.trainer.gan.grid import save_grid
from gandapt.trainer.losses.directional import mean_embedding
from gandapt.trainer.losses.identity import EncoderIdentity
from gandapt.trainer.multidomain.hypernets import DynaGANHyperNet, HDNMapper
from gandapt.trainer.multidomain.model import STAGES, hypernet_state
from gandapt.trainer.multidomain.objectives import DynaGANObjective, HDNObjective, augmented_bank
from gandapt.trainer.multidomain.options import MultiDomainTrainOptions
from gandapt.trainer.rundir import prepare_out, write_json
from gandapt.trainer.seed import seeded
from gandapt.trainer.steps import Counter, adam_update, check_resume, latent_step_fn, run_steps

CHECKPOINT, FINAL, PACK = "checkpoint.pt", "model.pt", "domains.safetensors"
RUN_FILES = (CHECKPOINT, FINAL, PACK, "log.jsonl", "training_options.json", "samples.png")
RUN_FORMAT = "gandapt.multidomain-run"
AUG_COPIES = 4  # DynaGAN's augmented copies per reference


def load_target_sets(options: MultiDomainTrainOptions, resolution: int) -> List[torch.Tensor]:
    """Each domain's images [N_k, 3, R, R] in [-1, 1]; a bad folder names its domain."""
    sets = []
    for name, folder in zip(options.domain_names(), options.targets):
        try:
            sets.append(load_targets(folder, resolution, options.shots))
        except GandaptError as err:
            raise GandaptError(f"domain {name!r}: {err}") from None
    return sets


@torch.no_grad()
def conditionings(options, G, emb, target_sets, device, sample_source: bool = True):
    """(t [K, dim], s [dim]): target and source embeddings (module docstring of :mod:`.objectives`).

    ``sample_source=False`` (image targets whose sources come from elsewhere, DynaGAN's ``--encoder``)
    skips the ``n_source`` base samples and returns s = None.
    """
    if options.texts:
        e = F.normalize(emb.encode_text([options.source_text, *options.texts]), dim=-1)
        source, conds = e[0], e[1:]
    else:
        conds = torch.stack([mean_embedding(emb, t.to(device)) for t in target_sets])
        if not sample_source:
            return conds, None
        z = torch.randn(options.n_source, G.z_dim, generator=torch.Generator().manual_seed(options.seed + 1))
        source = mean_embedding(emb, G(z.to(device), truncation_psi=options.truncation))
    same = [n for n, c in zip(options.domain_names(), conds) if (c - source).norm() < 1e-8]
    if same:
        raise GandaptError(f"domain(s) {', '.join(same)} embed exactly like the source; nothing to adapt towards")
    return conds, source


def identity_network(options: MultiDomainTrainOptions, fingerprint: str, device) -> Optional[EncoderIdentity]:
    """The identity loss over ``--id-encoder`` (checked to invert into the base model), or None when the run
    trains without it."""
    if not (options.id_encoder and options.lambda_id):
        return None
    return EncoderIdentity(checked_encoder(options.id_encoder, fingerprint, device, "--id-encoder").E).to(device)


def build_objective(options: MultiDomainTrainOptions, G, layout, emb, target_sets, device, fingerprint: str,
                    identity: Optional[EncoderIdentity] = None):
    """(objective, stored conditionings [K, E], stored source or None).

    ``fingerprint`` (the base model's) checks a DynaGAN ``--encoder`` against the model it inverts into;
    ``identity`` is the identity loss (:func:`identity_network`).
    """
    inverted = options.method == "dynagan" and bool(options.encoder)  # its sources are the references' inversions
    conds, source = conditionings(options, G, emb, target_sets, device, sample_source=not inverted)
    if options.method == "hyperdomainnet":
        net = HDNMapper(conds.shape[1], layout, hidden=options.hidden, depth=options.depth)
        return (HDNObjective(net, emb, conds, source, loss_weights(options), options.mixing, identity).to(device),
                conds, source)
    k = len(target_sets)
    net = DynaGANHyperNet(k, layout, hidden=options.hidden)
    augs = augmented_bank(emb, [t.to(device) for t in target_sets], AUG_COPIES,
                          torch.Generator().manual_seed(options.seed + 3))
    if inverted:  # MindTheGap's clip_across: each domain's direction starts at its references' inversions
        with torch.no_grad():
            source = torch.stack([mean_embedding(emb, inverted_sources(options.encoder, G, fingerprint, t.to(device),
                                                                       device)) for t in target_sets])  # [K, dim]
        same = [n for n, c, s in zip(options.domain_names(), conds, source) if (c - s).norm() < 1e-8]
        if same:
            raise GandaptError(f"domain(s) {', '.join(same)} embed exactly like their inversions; nothing to adapt "
                               "towards")
    obj = DynaGANObjective(net, emb, conds, augs, source, loss_weights(options), options.temperature,
                           options.contrast_space, identity).to(device)
    return obj, torch.eye(k), None


def loss_weights(options: MultiDomainTrainOptions) -> dict:
    return {"direction": options.lambda_direction, "indomain": options.lambda_indomain, "tt": options.lambda_tt,
            "norm": options.lambda_norm, "contrast": options.lambda_contrast, "id": options.lambda_id}


def train_multidomain(options: MultiDomainTrainOptions, resume: bool = False, force: bool = False,
                      on_step: Optional[Callable[[int], None]] = None) -> Path:
    """Train a multi-domain hypernetwork for a frozen base model.

    Args:
        options: the run's settings (method defaults fill what is None).
        resume: continue the run in ``options.out`` from its checkpoint.
        force: start over in an existing ``options.out``.
        on_step: called with the step number after each completed step.

    Returns:
        Path of ``out/model.pt``.
    """
    options = options.resolved()
    out = Path(options.out)
    device = resolve_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    base = load_model(options.model, device=device)
    G = base.G.eval().requires_grad_(False)
    layout = G.synthesis.set_domain_stages(STAGES[options.method])
    emb = embedder_from_options(options, base.D, device)  # a missing CLIP checkpoint fails here, before any output
    target_sets = load_target_sets(options, G.img_resolution) if options.targets else []
    if options.encoder:  # a missing or foreign encoder fails before the run folder is touched
        checked_encoder(options.encoder, base.fingerprint, device)
    identity = identity_network(options, base.fingerprint, device)
    prepare_out(out, resume, force, RUN_FILES, CHECKPOINT)

    with seeded(options.seed):  # the hypernetwork's initial weights follow --seed
        objective, conds, source = build_objective(options, G, layout, emb, target_sets, device, base.fingerprint,
                                                   identity)
    betas = (0.0, 0.99) if options.method == "dynagan" else (0.9, 0.999)
    opt = torch.optim.Adam(objective.trainable(), lr=options.lr, betas=betas)
    gen = torch.Generator().manual_seed(options.seed)
    counter = Counter()
    if resume:
        state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
        check_resume(out, out / CHECKPOINT, options.incompatible_with(MultiDomainTrainOptions.from_dict(state["options"])),
                     state["base_fingerprint"], base.fingerprint)
        objective.net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["rng"])
        counter = Counter(int(state["step"]), float(state["seconds"]))
    write_json(out / "training_options.json", options.to_dict())

    def checkpoint() -> None:
        state = {"gandapt_format": RUN_FORMAT, "net": {k: v.detach().cpu() for k, v in objective.net.state_dict().items()},
                 "opt": opt.state_dict(), "rng": gen.get_state(), "step": counter.step, "seconds": counter.seconds,
                 "options": options.to_dict(), "base_fingerprint": base.fingerprint}
        with atomic_path(out / CHECKPOINT, force=True) as tmp:
            torch.save(state, tmp)

    weights = loss_weights(options)

    step_fn = latent_step_fn(G, objective, weights, options.batch, options.truncation, gen, device)

    run_steps(counter, options.steps, step_fn, adam_update(opt), out=out, desc=options.method,
              progress=options.progress, checkpoint=checkpoint, checkpoint_minutes=options.checkpoint_minutes,
              on_step=on_step)
    step, seconds = counter.step, counter.seconds
    return _write_result(options, base, G, layout, objective, conds, source, step, seconds)


def _write_result(options, base, G, layout, objective, conds, source, step, seconds) -> Path:
    """domains.safetensors, samples.png and model.pt of a finished run."""
    out = Path(options.out)
    net = objective.net.eval()
    names = options.domain_names()
    with torch.no_grad():
        vecs = net(conds.to(next(net.parameters()).device)).cpu().numpy()           # [K, D] method layout
    n_params = sum(p.numel() for p in net.parameters())
    domains = [Domain.from_vector(name, layout, vecs[i], meta={
        "method": options.method, "target": (options.targets or options.texts)[i], "shots": options.shots,
        "embedder": options.embedder, "steps": step, "trainable_params": n_params,
        "train_seconds": round(seconds, 1), "domains_in_model": len(names)}) for i, name in enumerate(names)]
    pack = DomainPack(domains, base.config, base.fingerprint, meta={"made_by": f"gandapt-train {options.method}"})
    data = pack_bytes(pack)
    atomic_write_bytes(out / PACK, data, force=True)
    _grid(G, torch.from_numpy(vecs), options, out / "samples.png")
    G.synthesis.set_domain_stages()  # back to the full layout before saving
    emb_info = {"name": options.embedder, "clip": options.clip, "clip_arch": options.clip_arch,
                "clip_config": options.clip_config}
    extra = {"domain_pack": torch.frombuffer(bytearray(data), dtype=torch.uint8),
             "hypernet": hypernet_state(options.method, net, names, conds, source, emb_info),
             "adapter": {"method": options.method, "trainable_params": n_params},
             "base": {"path": str(options.model), "format": base.format, "fingerprint": base.fingerprint},
             "training_options": options.to_dict(), "steps": step, "train_seconds": round(seconds, 1)}
    return save_native(out / FINAL, G, base.D, extra=extra, force=True)


@torch.no_grad()
def _grid(G, vecs: torch.Tensor, options: MultiDomainTrainOptions, path: Path, n: int = 6) -> None:
    """One row for the base model, then one per trained domain, same latents."""
    device = G.mapping.parameters().__next__().device
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(options.seed + 2)).to(device)
    ws = G.mapping(z, truncation_psi=options.truncation)
    rows = [G.synthesis(ws, noise_mode="const")]
    rows += [G.synthesis(ws, domain=v[None].to(device), noise_mode="const") for v in vecs]
    save_grid(torch.cat(rows), path, cols=n)
