"""The training loop behind ``gandapt-train expansion`` (Domain Expansion, reference/methods.md §5).

One copy of the synthesis network is trained (the paper's ``G_params = G.synthesis.parameters()``;
mapping frozen) so that, with ``v_d`` the d-th dormant direction of W and ``s`` the subspace distance:

* L_expand (Nitzan et al. 2023, NADA task): ``1 − cos(E(G_exp(w + s·v_d)) − E(G_exp(w)), Δ_d)``
  with ``G_exp(w)`` detached and Δ_d the domain's image (or text) direction (Gal et al. 2022, eq. 2),
  plus HyperDomainNet's in-domain angle within each domain;
* L_recon: ``G_exp(w)`` stays ``G(w)`` on the base subspace: pixel MSE and, standing in for the
  paper's LPIPS(AlexNet), the squared distance of normalised embedder features.

The run writes ``model.pt``: the *expanded* base model (a new fingerprint) with ``extra['expansion']``
(basis, dims, shifts, parent fingerprint) and ``extra['domain_pack']``, plus ``domains.safetensors``:
one domain per target whose only tensor is ``w_shift = s·v_d`` on every W+ row. The pack records that
it needs the expanded base, and :func:`gandapt.pack.check_compatible` refuses it on the parent.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch.nn import functional as F

from gandapt.checkpoint import load as load_model
from gandapt.checkpoint import save_native
from gandapt.device import resolve_device
from gandapt.errors import GandaptError
from gandapt.fingerprint import fingerprint
from gandapt.io import atomic_path, atomic_write_bytes
from gandapt.pack import REQUIRES_BASE, Domain, DomainPack, pack_bytes
from gandapt.trainer.adapters.targets import load_targets
from gandapt.trainer.embedders import embedder_from_options
from gandapt.trainer.expansion.basis import LatentBasis, latent_basis
from gandapt.trainer.expansion.options import ExpansionOptions
from gandapt.trainer.gan.grid import save_grid
from gandapt.trainer.losses.directional import directional_loss, image_direction, indomain_angle_loss, text_direction
from gandapt.trainer.rundir import prepare_out, write_json
from gandapt.trainer.steps import Counter, adam_update, check_resume, loss_log, run_steps

CHECKPOINT, FINAL, PACK = "checkpoint.pt", "model.pt", "domains.safetensors"
RUN_FILES = (CHECKPOINT, FINAL, PACK, "log.jsonl", "training_options.json", "samples.png")
RUN_FORMAT = "gandapt.expansion-run"


def domain_shifts(basis: LatentBasis, n_domains: int, distance: float) -> torch.Tensor:
    """The W offsets s·v_d of the first ``n_domains`` dormant directions.

    Args:
        basis: the PCA of W.
        n_domains: number of new domains.
        distance: s in units of W's largest std.

    Returns:
        [n_domains, w_dim].

    Raises:
        GandaptError: more domains than dormant directions.
    """
    if n_domains > basis.num_dormant:
        raise GandaptError(
            f"{n_domains} new domains asked for but the base model has only {basis.num_dormant} dormant latent "
            f"direction(s) (std below {basis.ratio:g} of the largest); train fewer domains or raise --dormant-ratio"
        )
    return distance * basis.max_std * basis.directions[:, :n_domains].T.contiguous()


def expanded_fingerprint(G: torch.nn.Module) -> str:
    """The fingerprint ``gandapt.load`` will report for ``G`` once saved (same keys and order)."""
    return fingerprint(G.config, {k: v.detach().cpu().numpy() for k, v in G.state_dict().items()})


def _directions(options: ExpansionOptions, G, emb, device) -> torch.Tensor:
    """Unit target direction of every domain: [n_domains, dim]."""
    specs = options.domains()
    source = None
    out = []
    for spec in specs:
        if spec.kind == "text":
            out.append(text_direction(emb, options.source_text, spec.value))
            continue
        targets = load_targets(spec.value, G.img_resolution, options.shots).to(device)
        if source is None:  # one seeded source sample shared by every image domain
            with torch.no_grad():
                z = torch.randn(options.n_source, G.z_dim, generator=torch.Generator().manual_seed(options.seed + 1))
                source = G(z.to(device), truncation_psi=options.truncation)
        out.append(image_direction(emb, source, targets))
    return torch.stack(out)


def train_expansion(options: ExpansionOptions, resume: bool = False, force: bool = False,
                    on_step: Optional[Callable[[int], None]] = None) -> Path:
    """Expand a base model with one new domain per target.

    Args:
        options: the run's settings.
        resume: continue the run in ``options.out`` from its checkpoint.
        force: start over in an existing ``options.out``.
        on_step: called with the step number after each completed step.

    Returns:
        Path of ``out/model.pt`` (the expanded base model with its domain pack).

    Raises:
        GandaptError: bad input (more domains than dormant directions, unreadable targets, an existing
            run without --resume/--force), or a non-finite loss (the last checkpoint is kept).
    """
    out = Path(options.out)
    device = resolve_device(options.device)
    if options.threads:
        torch.set_num_threads(options.threads)
    specs = options.domains()
    base = load_model(options.model, device=device)
    G = base.G.eval().requires_grad_(False)
    basis = latent_basis(G, options.basis_samples, options.dormant_ratio, options.seed)
    shifts = domain_shifts(basis, len(specs), options.distance).to(device)        # [n_dom, w_dim]
    emb = embedder_from_options(options, base.D, device)  # a missing CLIP checkpoint fails here, before any output
    directions = _directions(options, G, emb, device)                             # [n_dom, dim]
    prepare_out(out, resume, force, RUN_FILES, CHECKPOINT)

    tuned = copy.deepcopy(G).requires_grad_(False)
    tuned.synthesis.requires_grad_(True)
    params = [p for p in tuned.synthesis.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=options.lr, betas=(0.0, 0.99))
    gen = torch.Generator().manual_seed(options.seed)
    counter = Counter()
    if resume:
        state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
        check_resume(out, out / CHECKPOINT, options.incompatible_with(ExpansionOptions.from_dict(state["options"])),
                     state["base_fingerprint"], base.fingerprint)
        tuned.synthesis.load_state_dict(state["synthesis"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["rng"])
        shifts = state["shifts"].to(device)
        counter = Counter(int(state["step"]), float(state["seconds"]))
    write_json(out / "training_options.json", options.to_dict())

    def checkpoint() -> None:
        state = {"gandapt_format": RUN_FORMAT, "synthesis": {k: v.detach().cpu() for k, v in
                                                             tuned.synthesis.state_dict().items()},
                 "opt": opt.state_dict(), "rng": gen.get_state(), "step": counter.step, "seconds": counter.seconds,
                 "shifts": shifts.cpu(), "options": options.to_dict(), "base_fingerprint": base.fingerprint}
        with atomic_path(out / CHECKPOINT, force=True) as tmp:
            torch.save(state, tmp)

    weights = {"expand": options.lambda_expand, "recon": options.lambda_recon,
               "recon_feat": options.lambda_recon_feat, "indomain": options.lambda_indomain}
    grid_z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(options.seed + 2)).to(device)

    def step_fn(step: int):
        z = torch.randn(options.batch, G.z_dim, generator=gen).to(device)
        ws = G.mapping(z, truncation_psi=options.truncation)                      # [B, num_ws, w_dim]
        dom = (step * options.batch + torch.arange(options.batch)) % len(shifts)  # domain of each sample
        losses = expansion_losses(G, tuned, emb, ws, shifts, directions, dom.to(device), weights)
        loss = sum(weights[k] * v for k, v in losses.items() if weights.get(k))
        return loss, loss_log(loss, losses)

    def samples(step: int) -> None:
        if options.sample_every and step % options.sample_every == 0:
            sample_grid(G, tuned, shifts, grid_z, options.truncation, out / "samples" / f"step{step:06d}.png")

    run_steps(counter, options.steps, step_fn, adam_update(opt), out=out, desc="expansion",
              progress=options.progress, checkpoint=checkpoint, checkpoint_minutes=options.checkpoint_minutes,
              on_step=on_step, after_step=samples)
    step, seconds = counter.step, counter.seconds
    return _write_result(options, base, tuned, basis, shifts, step, seconds, out)


def expansion_losses(G, tuned, emb, ws: torch.Tensor, shifts: torch.Tensor, directions: torch.Tensor,
                     dom: torch.Tensor, weights: Dict[str, float]) -> Dict[str, torch.Tensor]:
    """One step's losses (module docstring).

    Args:
        G: the frozen parent generator.
        tuned: the generator being expanded.
        emb: the frozen embedder.
        ws: [B, num_ws, w_dim] base-subspace latents.
        shifts: [n_dom, w_dim] s·v_d.
        directions: [n_dom, dim] unit target directions.
        dom: [B] domain index of each sample.
        weights: loss weights (a zero weight skips that term's computation where possible).

    Returns:
        ``{expand, recon, recon_feat[, indomain]}`` scalars.
    """
    with torch.no_grad():
        frozen = G.synthesis(ws, noise_mode="const")                              # [B, 3, R, R]
        e_frozen = F.normalize(emb.encode_image(frozen), dim=-1)
    base_img = tuned.synthesis(ws, noise_mode="const")
    dom_img = tuned.synthesis(ws + shifts[dom][:, None, :], noise_mode="const")  # w_d = w + s·v_d on every row
    e_base = emb.encode_image(base_img)
    e_dom = emb.encode_image(dom_img)
    out = {"expand": directional_loss(e_dom, e_base.detach(), directions[dom]),
           "recon": (base_img - frozen).pow(2).mean(),
           "recon_feat": (F.normalize(e_base, dim=-1) - e_frozen).pow(2).sum(-1).mean()}
    if weights.get("indomain"):
        groups = [dom == d for d in dom.unique() if int((dom == d).sum()) >= 2]
        if groups:
            out["indomain"] = torch.stack([indomain_angle_loss(e_dom[m], e_base.detach()[m]) for m in groups]).mean()
    return out


def _write_result(options: ExpansionOptions, base, tuned, basis: LatentBasis, shifts: torch.Tensor, step: int,
                  seconds: float, out: Path) -> Path:
    """``model.pt`` (expanded G + D + pack) and ``domains.safetensors``; returns the model path."""
    tuned = tuned.eval().requires_grad_(False)
    specs = options.domains()
    fp = expanded_fingerprint(tuned)
    num_ws = tuned.config.num_ws
    domains: List[Domain] = []
    for d, spec in enumerate(specs):
        w_shift = shifts[d].detach().cpu().expand(num_ws, -1).numpy()            # [num_ws, w_dim]
        domains.append(Domain(spec.name, {"w_shift": w_shift}, meta={
            "method": "expansion", "target": spec.value, "target_kind": spec.kind, "dimension": d,
            "dormant_std": float(basis.stds[d]), "subspace_distance": float(shifts[d].norm()),
            "embedder": options.embedder, "shots": options.shots, "steps": step,
            "train_seconds": round(seconds, 1), "requires_expanded_base": fp}))
    requires = {"kind": "expanded", "fingerprint": fp, "parent_fingerprint": base.fingerprint,
                "method": "expansion", "model": str(out / FINAL)}
    pack = DomainPack(domains, tuned.config, fp, meta={"made_by": "gandapt-train expansion", REQUIRES_BASE: requires})
    data = pack_bytes(pack)
    atomic_write_bytes(out / PACK, data, force=True)
    sample_grid(base.G, tuned, shifts, torch.randn(6, tuned.z_dim, generator=torch.Generator().manual_seed(
        options.seed + 2)).to(shifts.device), options.truncation, out / "samples.png")
    extra = {
        "domain_pack": torch.frombuffer(bytearray(data), dtype=torch.uint8),
        "expansion": {**basis.to_dict(), "dims": list(range(len(specs))), "names": [s.name for s in specs],
                      "shifts": shifts.detach().cpu(), "distance": options.distance,
                      "parent_fingerprint": base.fingerprint},
        "adapter": {"method": "expansion", "trainable_params": sum(p.numel() for p in tuned.synthesis.parameters())},
        "base": {"path": str(options.model), "format": base.format, "fingerprint": base.fingerprint},
        "training_options": options.to_dict(), "steps": step, "train_seconds": round(seconds, 1),
    }
    return save_native(out / FINAL, tuned, base.D, extra=extra, force=True)


@torch.no_grad()
def sample_grid(G, tuned, shifts: torch.Tensor, z: torch.Tensor, psi: float, path: Path) -> None:
    """Rows: the parent, the expanded base subspace, then each new domain (same latents)."""
    ws = G.mapping(z, truncation_psi=psi)
    rows = [G.synthesis(ws, noise_mode="const"), tuned.synthesis(ws, noise_mode="const")]
    rows += [tuned.synthesis(ws + s[None, None], noise_mode="const") for s in shifts]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(torch.cat(rows), path, cols=len(z))
