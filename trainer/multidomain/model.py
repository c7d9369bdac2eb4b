"""A trained hypernetwork: load it, make domains from new conditionings, blend domains.

``model.pt`` of a ``hyperdomainnet``/``dynagan`` run stores ``extra['hypernet']``::

    {'method', 'arch': {...}, 'stages': [...], 'state': {param: tensor}, 'names': [K],
     'conditions': [K, E] tensor, 'source': [E] tensor or None, 'embedder': {name, clip, clip_arch, clip_config}}

HyperDomainNet's conditionings are the domains' target embeddings t_k (its conditioning space is the
embedder's space). DynaGAN's are its one-hot codes; its conditioning space is υ = M_A(c).

Blending (methods.md §11.5): the mapper is non-linear and DynaGAN's ΔW is trilinear in its factors,
so a mix of two domains is *not* the mix of their tensors. :func:`blend` interpolates in the
conditioning space — Σ w_k t_k for HDN (what its convex-mix training saw), Σ w_k υ_k for DynaGAN
(the paper's domain interpolation) — and recomputes the tensors. It runs once per blend change, off
the frame path; the runtime then copies the returned vector like any other domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from gandapt.errors import GandaptError
from gandapt.layout import DomainLayout, full_layout
from gandapt.pack import Domain
from gandapt.trainer.multidomain.hypernets import DYNAGAN_STAGES, HDN_STAGES, DynaGANHyperNet, HDNMapper

STAGES = {"hyperdomainnet": HDN_STAGES, "dynagan": DYNAGAN_STAGES}


def build_net(method: str, layout: DomainLayout, arch: Mapping[str, int]) -> nn.Module:
    """The method's hypernetwork for ``layout`` (stages :data:`STAGES`) with constructor ``arch``."""
    if method == "hyperdomainnet":
        return HDNMapper(arch["cond_dim"], layout, hidden=arch["hidden"], depth=arch["depth"])
    if method == "dynagan":
        return DynaGANHyperNet(arch["num_domains"], layout, hidden=arch["hidden"])
    raise GandaptError(f"unknown hypernetwork method {method!r}; this gandapt knows {', '.join(STAGES)}")


def hypernet_state(method: str, net: nn.Module, names, conditions: torch.Tensor,
                   source: Optional[torch.Tensor], embedder: Mapping[str, Any]) -> Dict[str, Any]:
    """The plain dict stored as ``extra['hypernet']`` (loads with ``weights_only=True``)."""
    return {"method": method, "arch": net.arch(), "stages": list(STAGES[method]),
            "state": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            "names": list(names), "conditions": conditions.detach().cpu().clone(),
            "source": None if source is None else source.detach().cpu().clone(), "embedder": dict(embedder)}


@dataclass
class HyperModel:
    """A loaded hypernetwork with its frozen base generator.

    Attributes:
        method: ``hyperdomainnet`` or ``dynagan``.
        G: the base generator (frozen, eval).
        D: its discriminator or None (the ``disc`` embedder needs it).
        net: the hypernetwork (eval).
        layout: the method's layout (its stages only).
        names: trained domain names, in code order.
        conditions: [K, E] conditionings of the trained domains.
        source: [E] source embedding (HDN), or None.
        embedder: how the training embedder was built (``name``, ``clip``, ``clip_arch``, ``clip_config``).
        fingerprint: the base model's fingerprint.
    """

    method: str
    G: nn.Module
    D: Optional[nn.Module]
    net: nn.Module
    layout: DomainLayout
    names: Tuple[str, ...]
    conditions: torch.Tensor
    source: Optional[torch.Tensor]
    embedder: Dict[str, Any]
    fingerprint: str

    @property
    def full_layout(self) -> DomainLayout:
        """The generator's all-stages layout (what packs and the runtime index)."""
        return full_layout(self.G.config)

    def condition(self, name: str) -> torch.Tensor:
        """Conditioning [E] of a trained domain."""
        if name not in self.names:
            raise GandaptError(f"no trained domain {name!r}; this model has {', '.join(self.names)}")
        return self.conditions[self.names.index(name)]

    @torch.no_grad()
    def vectors(self, cond: torch.Tensor) -> np.ndarray:
        """Method-layout domain vectors [B, D] for conditionings [B, E] (HDN) or codes [B, K] (DynaGAN)."""
        return self.net(cond.float()).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def latent_vectors(self, upsilon: torch.Tensor) -> np.ndarray:
        """DynaGAN: domain vectors [B, D] from latents υ [B, hidden]."""
        return self.net.from_latent(upsilon.float()).cpu().numpy().astype(np.float32)

    def to_full(self, vec: np.ndarray) -> np.ndarray:
        """Method-layout [D] or [B, D] → the full layout."""
        return self.layout.convert(vec, self.full_layout)


def load_hypermodel(model: Union[str, Path, Any]) -> HyperModel:
    """Load the hypernetwork of a ``hyperdomainnet``/``dynagan`` run.

    Args:
        model: path of the run's ``model.pt``, or an already loaded :class:`~gandapt.checkpoint.Checkpoint`.

    Raises:
        GandaptError: the file holds no hypernetwork (another method's model or a plain base model).
    """
    import gandapt

    ck = gandapt.load(model) if isinstance(model, (str, Path)) else model
    state = ck.extra.get("hypernet")
    if not state:
        raise GandaptError(f"{getattr(ck, 'path', model)} holds no hypernetwork; give the model.pt of a "
                           "gandapt-train hyperdomainnet or dynagan run")
    layout = DomainLayout(ck.config, state["stages"])
    net = build_net(state["method"], layout, state["arch"])
    net.load_state_dict(state["state"])
    G = ck.G.eval().requires_grad_(False)
    G.synthesis.set_domain_stages()
    return HyperModel(state["method"], G, ck.D, net.eval().requires_grad_(False), layout, tuple(state["names"]),
                      state["conditions"].float(), None if state["source"] is None else state["source"].float(),
                      dict(state["embedder"]), ck.fingerprint)


def _as_model(model) -> HyperModel:
    return model if isinstance(model, HyperModel) else load_hypermodel(model)


def vector_from_embedding(model, embedding: Any) -> np.ndarray:
    """HyperDomainNet: the full-layout domain vector [D] for a conditioning embedding [E], no training.

    Args:
        model: a :class:`HyperModel` or a run's ``model.pt``.
        embedding: [E] — a CLIP text embedding, or the mean normalised image embedding of a set
            (what :func:`domain_from_images` computes), in the embedder the model was trained with.
    """
    m = _as_model(model)
    if m.method != "hyperdomainnet":
        raise GandaptError("dynagan domains are codes of its training sets, not embeddings; new domains from "
                           "an embedding need a hyperdomainnet model (dynagan can blend its own domains)")
    e = torch.as_tensor(np.asarray(embedding, dtype=np.float32)).reshape(1, -1)
    if not torch.isfinite(e).all() or e.norm() < 1e-12:
        raise GandaptError("the conditioning embedding is zero or not finite; embed real images or a prompt")
    return m.to_full(m.vectors(e))[0]


def domain_from_embedding(model, embedding: Any, name: str, meta: Optional[Mapping[str, Any]] = None) -> Domain:
    """A pack :class:`~gandapt.pack.Domain` for a new conditioning embedding (see :func:`vector_from_embedding`)."""
    m = _as_model(model)
    vec = vector_from_embedding(m, embedding)
    return Domain.from_vector(name, m.full_layout, vec, meta={"method": "hyperdomainnet", "trained": False,
                                                              **dict(meta or {})})


def embed_images(model, images: Union[str, Path, torch.Tensor], embedder=None, shots: Optional[int] = None,
                 device: Optional[torch.device] = None) -> torch.Tensor:
    """Mean normalised embedding [E] of an image folder (or images [N, 3, R, R] in [-1, 1]) through the
    embedder the model was trained with (built from the recorded settings unless ``embedder`` is given)."""
    from gandapt.trainer.losses.directional import mean_embedding

    m = _as_model(model)
    if isinstance(images, (str, Path)):
        from gandapt.trainer.adapters.targets import load_targets

        images = load_targets(str(images), m.G.img_resolution, shots)
    if embedder is None:
        from gandapt.trainer.embedders import embedder_for

        e = m.embedder
        embedder = embedder_for(e["name"], m.D, e.get("clip"), e.get("clip_arch"), e.get("clip_config"), device)
    return mean_embedding(embedder, images.to(device) if device is not None else images).cpu()


def domain_from_images(model, images: Union[str, Path, torch.Tensor], name: str, embedder=None,
                       shots: Optional[int] = None) -> Domain:
    """HyperDomainNet: a domain for a new image set (held-out style) in one forward pass, no training."""
    m = _as_model(model)
    if m.method != "hyperdomainnet":
        raise GandaptError("dynagan cannot make a domain from new images (its domains are one-hot codes of "
                           "its training sets); use a hyperdomainnet model")
    meta = {"target": str(images)} if isinstance(images, (str, Path)) else {}
    return domain_from_embedding(m, embed_images(m, images, embedder, shots), name, meta=meta)


def blend_condition(model, weights: Mapping[str, float]) -> torch.Tensor:
    """The blended conditioning: Σ w_k t_k (HDN, [E]) or Σ w_k υ_k (DynaGAN, [hidden]), with the
    weights normalised to sum 1.

    Raises:
        GandaptError: an unknown domain, a negative weight, or weights summing to 0.
    """
    m = _as_model(model)
    if not weights:
        raise GandaptError("blend needs at least one {domain: weight}")
    unknown = [n for n in weights if n not in m.names]
    if unknown:
        raise GandaptError(f"cannot blend unknown domain(s) {', '.join(map(repr, unknown))}; "
                           f"this model has {', '.join(m.names)}")
    w = np.array([float(v) for v in weights.values()], dtype=np.float64)
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise GandaptError(f"blend weights must be >= 0 and sum to more than 0, got {dict(weights)}")
    w = torch.tensor(w / w.sum(), dtype=torch.float32)
    idx = [m.names.index(n) for n in weights]
    if m.method == "hyperdomainnet":
        return w @ m.conditions[idx]
    with torch.no_grad():
        return w @ m.net.latent(m.conditions[idx])


def blend(model, weights: Mapping[str, float], layout: Optional[DomainLayout] = None) -> np.ndarray:
    """Blend trained domains in the hypernetwork's conditioning space and recompute the tensors.

    Args:
        model: a :class:`HyperModel` or a run's ``model.pt``.
        weights: ``{domain name: weight}``; weights ≥ 0, normalised to sum 1 (``{'a': 1}`` is domain a).
        layout: the layout of the returned vector (default: the generator's full layout).

    Returns:
        float32 [D] domain vector, ready for ``G.synthesis(ws, domain=vec[None])`` or a runtime copy.
    """
    m = _as_model(model)
    cond = blend_condition(m, weights)[None]
    vec = m.vectors(cond) if m.method == "hyperdomainnet" else m.latent_vectors(cond)
    return m.layout.convert(vec, layout or m.full_layout)[0]
