"""Evaluate a domain: paired error, FID/KID, precision/recall, quality/diversity.

* **Paired error** (the avatar world's ground truth): for seeded latents w, the mean absolute
  difference on [0, 1] between the domain's image G_d(w) and the known transform of the base image
  T(G(w)) (``gandapt-train data transform``'s functions). The unadapted model's error, between G(w)
  and T(G(w)), is reported beside it.
* **FID/KID** of G_d against a target image folder (N stated), through the FID Inception.
* **Precision/recall** (Kynkäänniemi et al. 2019, arXiv:1904.06991): k-NN manifolds (k = 3) of the
  same Inception features.
* **Quality/diversity** (HyperDomainNet's formulas, reference/methods.md §8.4) with an offline
  embedder: quality = mean cos(E(G_d(z)), mean target embedding), diversity = mean pairwise
  (1 − cos) within the samples.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from gandapt.errors import GandaptError


class DomainGenerator(nn.Module):
    """``G`` with a fixed domain vector, behind the plain generator API the metrics use."""

    def __init__(self, G: nn.Module, domain: Optional[torch.Tensor]):
        super().__init__()
        self.G, self.z_dim, self.img_resolution = G, G.z_dim, G.img_resolution
        self.register_buffer("domain", domain if domain is not None else torch.zeros(0))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(self.G.mapping(z, truncation_psi=truncation_psi), noise_mode=noise_mode)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        domain = self.domain[None] if self.domain.numel() else None
        return self.G.synthesis(ws, domain=domain, noise_mode=noise_mode)


def load_domain(model: str, domain: Optional[str] = None, pack: Optional[str] = None,
                base: Optional[str] = None):
    """(adapted generator, base generator, description) for a trained model and domain.

    A model with a pack (its own or ``pack``) needs ``domain`` when it holds several; a finetune
    model is its own adapted generator and compares against ``base`` (default: the base it records).

    Raises:
        GandaptError: ``base`` given for a model evaluated through a pack, or bad inputs.
    """
    import gandapt
    from gandapt.pack import check_compatible

    ck = gandapt.load(model, with_d=False)
    stored = ck.extra.get("domain_pack")
    if pack is not None or stored is not None:
        if base is not None:  # a pack's domains apply to the model itself; --base would be ignored
            raise GandaptError(f"--base compares a finetune model with its base, but {model} is evaluated through "
                               "a domain pack, whose base is the model itself; leave --base out")
        from gandapt.export.bundle import _resolve_pack

        p = _resolve_pack(ck, pack)
        check_compatible(p, ck.config, ck.fingerprint)
        name = domain or (p.names[0] if len(p) == 1 else None)
        if name is None:
            raise GandaptError(f"{model} holds domains {', '.join(p.names)}; pick one with --domain")
        if name not in p:
            raise GandaptError(f"no domain {name!r} in the pack; available: {', '.join(p.names)}")
        layout = ck.G.synthesis.set_domain_stages()
        vec = torch.from_numpy(p.vector(name, layout))
        return DomainGenerator(ck.G, vec).eval(), DomainGenerator(ck.G, None).eval(), f"{name} ({p[name].meta.get('method')})"
    base_path = base or (ck.extra.get("base") or {}).get("path")
    if base_path is None:
        raise GandaptError(f"{model} has no domain pack and records no base model; pass --base")
    ref = gandapt.load(base_path, with_d=False)
    return DomainGenerator(ck.G, None).eval(), DomainGenerator(ref.G, None).eval(), "full fine-tune"


@torch.no_grad()
def paired_error(G_d: nn.Module, G: nn.Module, transform: str, n: int = 128, seed: int = 0,
                 truncation: float = 0.7, batch: int = 32) -> Dict[str, float]:
    """Mean |G_d(w) − T(G(w))| on [0, 1] over ``n`` seeded latents, and the unadapted |G(w) − T(G(w))|."""
    from gandapt.trainer.data.transforms import apply_transform

    gen = torch.Generator().manual_seed(seed)
    err, err0 = [], []
    for start in range(0, n, batch):
        z = torch.randn(min(batch, n - start), G.z_dim, generator=gen)
        ws = G.G.mapping(z, truncation_psi=truncation)
        base = _uint8(G.synthesis(ws))
        adapted = _uint8(G_d.synthesis(ws))
        target = np.stack([apply_transform(transform, im) for im in base]).astype(np.float32)
        err.append(np.abs(adapted.astype(np.float32) - target).mean(axis=(1, 2, 3)) / 255)
        err0.append(np.abs(base.astype(np.float32) - target).mean(axis=(1, 2, 3)) / 255)
    return {"paired_l1": float(np.concatenate(err).mean()), "unadapted_l1": float(np.concatenate(err0).mean()),
            "paired_n": n, "transform": transform}


def _uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def precision_recall(fake: np.ndarray, real: np.ndarray, k: int = 3) -> Dict[str, float]:
    """k-NN precision and recall of feature sets [N, F] (Kynkäänniemi et al. 2019).

    Raises:
        GandaptError: a set with k images or fewer (its k-th nearest neighbour does not exist).
    """
    if min(len(fake), len(real)) <= k:
        raise GandaptError(f"precision/recall needs at least {k + 1} images per set (k = {k} nearest neighbours); "
                           f"got {len(fake)} generated and {len(real)} target images: raise --n or add target images")
    f, r = torch.from_numpy(fake).double(), torch.from_numpy(real).double()

    def radii(x):  # distance to the k-th nearest neighbour within the set (excluding itself)
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values

    rr, rf = radii(r), radii(f)
    precision = (torch.cdist(f, r) <= rr[None]).any(1).double().mean()
    recall = (torch.cdist(r, f) <= rf[None]).any(1).double().mean()
    return {"precision": float(precision), "recall": float(recall), "pr_k": k}


@torch.no_grad()
def quality_diversity_of(G_d: nn.Module, embedder: nn.Module, targets: torch.Tensor, n: int = 64,
                         seed: int = 0, truncation: float = 0.7) -> Dict[str, float]:
    """HDN quality/diversity of ``n`` samples against target images [M, 3, R, R]."""
    from gandapt.trainer.losses.directional import mean_embedding, quality_diversity

    z = torch.randn(n, G_d.z_dim, generator=torch.Generator().manual_seed(seed))
    e = torch.cat([embedder.encode_image(G_d(z[i:i + 16], truncation_psi=truncation)) for i in range(0, n, 16)])
    q, d = quality_diversity(e, mean_embedding(embedder, targets))
    return {"quality": q, "diversity": d, "qd_n": n, "qd_embedder": embedder.name}


def evaluate_domain(model: str, domain: Optional[str] = None, pack: Optional[str] = None,
                    transform: Optional[str] = None, target_set: Optional[str] = None, n_fid: int = 500,
                    paired_n: int = 128, embedder: str = "vgg", base: Optional[str] = None, seed: int = 0,
                    progress: bool = False) -> Dict[str, Any]:
    """All metrics of one domain that its inputs allow (``transform`` → paired error; ``target_set``
    → FID/KID, precision/recall, quality/diversity).

    Raises:
        GandaptError: nothing to measure (neither ``transform`` nor ``target_set``), or bad inputs.
    """
    if transform is None and target_set is None:
        raise GandaptError("nothing to evaluate: pass --transform NAME (paired error) and/or --target-set FOLDER")
    G_d, G, what = load_domain(model, domain, pack, base)
    out: Dict[str, Any] = {"model": str(model), "domain": what}
    if transform is not None:
        out.update(paired_error(G_d, G, transform, paired_n, seed))
    if target_set is not None:
        from gandapt.trainer.adapters.targets import load_targets
        from gandapt.trainer.embedders import build_embedder
        from gandapt.trainer.metrics.evaluate import (FeatureStats, InceptionFeatures, compare, generator_features,
                                                      real_stats)

        inception = InceptionFeatures("cpu", 32, progress)
        real = real_stats(target_set, n_fid, G.img_resolution, inception=inception)
        fake = FeatureStats.from_features(generator_features(G_d, n_fid, inception, 1.0, seed))
        out.update(compare(fake, real, seed=seed))
        out.update(precision_recall(fake.features, real.features[:n_fid]))
        targets = load_targets(target_set, G.img_resolution, shots=64)
        out.update(quality_diversity_of(G_d, build_embedder(embedder), targets, seed=seed))
    return out
