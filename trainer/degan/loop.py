"""The training loop behind ``gandapt-train degan`` (the domain encoder, reference/methods.md §6.2).

Each step draws M domain images and K latents; the encoder turns every image into Δs (times the
fade-in m), and the frozen G renders all M×K pairs with s' = s + m·Δs. Losses, after the thesis'
``degan/loss/loss.py`` with the offline embedders in place of CLIP ViT-B/16:

* Direction: ``1 − cos(E(G(s+Δs)) − E(G(s)), E(I_d) − ē_src)`` with ē_src the mean embedding of
  generated images (DiFa-style; Gal et al. 2022 eq. 2 for the directional form);
* TTDirection (HyperDomainNet, Alanov et al. 2022): for two domains i, j and one latent,
  ``1 − cos(E(G_i(w)) − E(G_j(w)), E(I_i) − E(I_j))``;
* InDomainAngle (HDN eq. 6): the pairwise cosine geometry of each domain's K images is kept.

``checkpoint.pt`` is a loadable domain-encoder file at every moment (its ``extra['train']`` holds the
resume state). The run writes ``degan.pt``; with ``--reference`` images also ``domains.safetensors``
and ``model.pt`` (the base G + D with that pack), so ``gandapt-train eval`` and ``gandapt-export`` work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

import torch
from torch.nn import functional as F

from gandapt.checkpoint import load as load_model
from gandapt.checkpoint import save_native
from gandapt.device import resolve_device
from gandapt.errors import GandaptError
from gandapt.io import atomic_write_bytes
from gandapt.pack import pack_bytes
from gandapt.trainer.degan.file import load_domain_encoder, save_domain_encoder
from gandapt.trainer.degan.infer import pack_from_images
from gandapt.trainer.degan.model import STAGES, DomainEncoder, DomainEncoderConfig, DomainVector
from gandapt.trainer.degan.options import DeganOptions
from gandapt.trainer.embedders import embedder_from_options
from gandapt.trainer.gan.grid import save_grid
from gandapt.trainer.losses.directional import directional_loss, indomain_angle_loss, mean_embedding
from gandapt.trainer.rundir import prepare_out, write_json
from gandapt.trainer.steps import Counter, check_resume, run_steps

CHECKPOINT, FINAL, MODEL, PACK = "checkpoint.pt", "degan.pt", "model.pt", "domains.safetensors"
RUN_FILES = (CHECKPOINT, FINAL, MODEL, PACK, "log.jsonl", "training_options.json", "samples.png")


def _load_data(options: DeganOptions, resolution: int) -> torch.Tensor:
    """The training domain images as float [N, 3, R, R] in [-1, 1]."""
    from gandapt.trainer.metrics.evaluate import list_images, load_image

    try:
        files = list_images(options.data)
    except GandaptError as err:
        raise GandaptError(f"--data {options.data}: {err}; give a folder of PNG/JPG domain images") from None
    return torch.stack([load_image(f, resolution) for f in files]).float() / 127.5 - 1


def degan_losses(G, E: DomainEncoder, to_domain: DomainVector, emb, x_ref: torch.Tensor, e_ref: torch.Tensor,
                 ref_id: torch.Tensor, e_src: torch.Tensor, ws: torch.Tensor, fade: float,
                 weights: Dict[str, float]) -> Dict[str, torch.Tensor]:
    """One step's losses (module docstring).

    Args:
        G: the frozen generator (full layout or ``s``-stage layout matching ``to_domain``).
        E: the domain encoder being trained.
        to_domain: Δs → domain vector of ``G``'s layout.
        emb: the frozen embedder.
        x_ref: [M, 3, R, R] domain images.
        e_ref: [M, dim] their normalised embeddings.
        ref_id: [M] dataset index of each (pairs of one image are left out of the tt term).
        e_src: [dim] mean normalised embedding of generated images.
        ws: [K, num_ws, w_dim] latents shared by every domain.
        fade: the fade-in multiplier m.
        weights: loss weights.

    Returns:
        ``{direction[, tt][, indomain]}`` scalars.
    """
    M, K = x_ref.shape[0], ws.shape[0]
    delta = E(x_ref) * fade                                                      # [M, P]
    domain = to_domain(delta).repeat_interleave(K, dim=0)                        # [M·K, D], (m, k) order
    img = G.synthesis(ws.repeat(M, 1, 1), domain=domain, noise_mode="const")     # [M·K, 3, R, R]
    with torch.no_grad():
        e_frozen = emb.encode_image(G.synthesis(ws, noise_mode="const"))         # [K, dim]
    e_ad = emb.encode_image(img)                                                 # [M·K, dim]
    direction = F.normalize(e_ref - e_src, dim=-1).repeat_interleave(K, dim=0)
    out = {"direction": directional_loss(e_ad, e_frozen.repeat(M, 1), direction)}
    if weights.get("tt") and M >= 2:
        a = F.normalize(e_ad, dim=-1).view(M, K, -1)
        i, j = torch.triu_indices(M, M, offset=1)
        keep = ref_id[i] != ref_id[j]
        if bool(keep.any()):
            i, j = i[keep], j[keep]
            da = a[i] - a[j]                                                     # [pairs, K, dim]
            dr = (e_ref[i] - e_ref[j])[:, None].expand_as(da)
            out["tt"] = (1 - F.cosine_similarity(da, dr, dim=-1, eps=1e-8)).mean()
    if weights.get("indomain") and K >= 2:
        out["indomain"] = torch.stack([indomain_angle_loss(e_ad[m * K:(m + 1) * K], e_frozen)
                                       for m in range(M)]).mean()
    return out


def train_degan(options: DeganOptions, resume: bool = False, force: bool = False,
                on_step: Optional[Callable[[int], None]] = None) -> Path:
    """Train a domain encoder for a frozen base model.

    Args:
        options: the run's settings.
        resume: continue the run in ``options.out`` from its checkpoint.
        force: start over in an existing ``options.out``.
        on_step: called with the step number after each completed step.

    Returns:
        Path of ``out/degan.pt``.

    Raises:
        GandaptError: bad input (no images, an unreadable reference, an existing run without
            --resume/--force), or a non-finite loss (the last checkpoint is kept).
    """
    out = Path(options.out)
    device = resolve_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    refs = options.reference_names()
    base = load_model(options.model, device=device)
    G = base.G.eval().requires_grad_(False)
    layout = G.synthesis.set_domain_stages(STAGES)
    images = _load_data(options, G.img_resolution).to(device)                     # [N, 3, R, R]
    for name, path in refs:  # a reference the encoder cannot read fails before training
        from gandapt.trainer.degan.infer import read_reference
        read_reference(path, G.img_resolution)
    emb = embedder_from_options(options, base.D, device)
    prepare_out(out, resume, force, RUN_FILES, CHECKPOINT)

    cfg = DomainEncoderConfig.for_generator(base.config, channels=options.channels, hidden=options.hidden)
    torch.manual_seed(options.seed)
    E = DomainEncoder(cfg).to(device)
    to_domain = DomainVector(layout, cfg).to(device)
    opt = torch.optim.Adam(E.parameters(), lr=options.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=options.lr_gamma)
    gen = torch.Generator().manual_seed(options.seed)
    counter = Counter()
    if resume:
        prev = load_domain_encoder(out / CHECKPOINT)
        train = prev.extra.get("train") or {}
        check_resume(out, out / CHECKPOINT, options.incompatible_with(DeganOptions.from_dict(train.get("options", {}))),
                     prev.base_fingerprint, base.fingerprint)
        E.load_state_dict(prev.E.state_dict())
        opt.load_state_dict(train["opt"])
        sched.load_state_dict(train["sched"])
        gen.set_state(train["rng"])
        counter = Counter(int(train["step"]), float(train["seconds"]))
    write_json(out / "training_options.json", options.to_dict())

    def checkpoint() -> None:
        save_domain_encoder(out / CHECKPOINT, E, base.fingerprint, base.config, force=True, extra={"train": {
            "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": gen.get_state(), "step": counter.step,
            "seconds": counter.seconds, "options": options.to_dict()}})

    with torch.no_grad():  # fixed for the run: reference embeddings and the generated-image mean ē_src
        e_all = torch.cat([F.normalize(emb.encode_image(images[i:i + 16]), dim=-1) for i in range(0, len(images), 16)])
        z = torch.randn(options.n_source, G.z_dim, generator=torch.Generator().manual_seed(options.seed + 1))
        e_src = mean_embedding(emb, G(z.to(device), truncation_psi=options.truncation))
    weights = {"direction": options.lambda_direction, "tt": options.lambda_tt, "indomain": options.lambda_indomain}
    M, K = options.domains_per_step, options.latents_per_domain

    def step_fn(step: int):
        idx = (torch.randperm(len(images), generator=gen)[:M] if len(images) >= M
               else torch.randint(len(images), [M], generator=gen))
        z = torch.randn(K, G.z_dim, generator=gen).to(device)
        ws = G.mapping(z, truncation_psi=options.truncation)                      # [K, num_ws, w_dim]
        idx = idx.to(device)
        losses = degan_losses(G, E, to_domain, emb, images[idx], e_all[idx], idx, e_src, ws,
                              options.fade(step), weights)
        loss = sum(weights[k] * v for k, v in losses.items() if weights.get(k))
        return loss, {"loss": round(loss.item(), 6), "fade": round(options.fade(step), 4),
                      **{k: round(v.item(), 6) for k, v in losses.items()}}

    def update(loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(E.parameters(), options.grad_clip)
        opt.step()
        sched.step()

    def samples(step: int) -> None:
        if options.sample_every and step % options.sample_every == 0:
            _grid(G, E, to_domain, images[:4], options, out / "samples" / f"step{step:06d}.png")

    E.train()
    run_steps(counter, options.steps, step_fn, update, out=out, desc="degan", progress=options.progress,
              checkpoint=checkpoint, checkpoint_minutes=options.checkpoint_minutes, on_step=on_step,
              after_step=samples)
    step, seconds = counter.step, counter.seconds

    E.eval()
    _grid(G, E, to_domain, images[:4], options, out / "samples.png")
    final = save_domain_encoder(out / FINAL, E, base.fingerprint, base.config, force=True, extra={
        "training_options": options.to_dict(), "steps": step, "train_seconds": round(seconds, 1),
        "trainable_params": sum(p.numel() for p in E.parameters())})
    if refs:
        enc = load_domain_encoder(final, device=str(device))
        pack = pack_from_images(enc, dict(refs))
        for dom in pack.domains.values():
            dom.meta.update(steps=step, embedder=options.embedder, train_seconds=round(seconds, 1))
        data = pack_bytes(pack)
        atomic_write_bytes(out / PACK, data, force=True)
        G.synthesis.set_domain_stages()  # back to the full layout before saving
        save_native(out / MODEL, G, base.D, force=True, extra={
            "domain_pack": torch.frombuffer(bytearray(data), dtype=torch.uint8),
            "adapter": {"method": "degan", "encoder": str(final)},
            "base": {"path": str(options.model), "format": base.format, "fingerprint": base.fingerprint},
            "training_options": options.to_dict(), "steps": step, "train_seconds": round(seconds, 1)})
    return final


@torch.no_grad()
def _grid(G, E: DomainEncoder, to_domain: DomainVector, refs: torch.Tensor, options: DeganOptions, path: Path) -> None:
    """First column the reference (first row empty), then the base row and one row per reference."""
    z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(options.seed + 2)).to(refs.device)
    ws = G.mapping(z, truncation_psi=options.truncation)
    was = E.training
    E.eval()
    rows = [torch.cat([torch.zeros_like(refs[:1]), G.synthesis(ws, noise_mode="const")])]
    for r in refs:
        dom = to_domain(E(r[None]))
        rows.append(torch.cat([r[None], G.synthesis(ws, domain=dom, noise_mode="const")]))
    E.train(was)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(torch.cat(rows), path, cols=len(z) + 1)
