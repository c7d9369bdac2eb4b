"""The two hypernetworks, each writing exact runtime layout entries.

* :class:`HDNMapper` — HyperDomainNet's multi-domain mapper (Alanov et al. 2022, arXiv:2210.08884;
  ``core/mappers.py::ResidualMapper``, methods.md §2.1): a conditioning embedding → a shared
  backbone (Linear–norm–ReLU, then residual blocks) → one head per modulated conv giving δ ∈ R^{C_in};
  the domain-modulation vector d = 1 + δ is the layout's post-demod ``in_scale.*``. Heads start at
  Xavier-uniform × 0.01 and bias 0, so d ≈ 1 at init. Deviation: LayerNorm instead of BatchNorm, so
  a domain computed alone (at run time) equals the one computed inside a training batch.
* :class:`DynaGANHyperNet` — DynaGAN (Kim et al. 2022, arXiv:2211.14554; ``models/stylegan2/model.py::HyperNet``,
  methods.md §4.1): a one-hot domain code → M_A (Linear, then 2 × Linear + leaky ReLU) → υ; per conv
  four *linear* maps of υ give a_out [C_out], a_in [C_in], κ [k×k], δ [C_out] (weights × 0.01 at init,
  biases 1, 1, 0, 1). The kernel residual ΔW = β·a_out ⊗ a_in ⊗ κ is the layout's rank-1 term
  (``r1_out`` = β·a_out, ``r1_in`` = a_in, ``r1_k`` = κ; added to W before modulation, so the
  demodulation sees it) and α(δ − 1) + 1 is the post-demod ``out_scale`` — exact, §4.4.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn
from torch.nn import functional as F

from gandapt.errors import GandaptError
from gandapt.layout import DomainLayout

HDN_STAGES = ("in",)
DYNAGAN_STAGES = ("out", "rank1")


def _convs(layout: DomainLayout) -> List[str]:
    """Names of the modulated convs (not ToRGB) in forward order."""
    return [lay.name for lay in layout.config.layers() if not lay.is_torgb]


def _check_layout(layout: DomainLayout, stages) -> None:
    if layout.stages != tuple(stages):
        raise GandaptError(f"this hypernetwork writes stages {', '.join(stages)} but the layout has "
                           f"{', '.join(layout.stages)}; build the layout with exactly those stages")


class _ResBlock(nn.Module):
    """HDN's ``DummyResBlock``: x + (Linear–norm–ReLU–Linear–norm)(x), then ReLU. [B, H] → [B, H]."""

    def __init__(self, hidden: int):
        super().__init__()
        self.fc0, self.fc1 = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.n0, self.n1 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.n1(self.fc1(F.relu(self.n0(self.fc0(x))))))


class HDNMapper(nn.Module):
    """Conditioning embedding [B, E] → domain vector [B, D] (layout stage ``in``).

    Args:
        cond_dim: E, the embedding size (CLIP's, or the image embedder's).
        layout: a layout with exactly the ``in`` stage.
        hidden: backbone width (HDN: 512).
        depth: backbone depth: one input layer plus ``depth − 1`` residual blocks (HDN ``td_multiple``: 4).
    """

    def __init__(self, cond_dim: int, layout: DomainLayout, hidden: int = 256, depth: int = 2):
        super().__init__()
        _check_layout(layout, HDN_STAGES)
        self.layout, self.cond_dim, self.hidden, self.depth = layout, int(cond_dim), int(hidden), int(depth)
        self.inp = nn.Linear(self.cond_dim, self.hidden)
        self.inp_norm = nn.LayerNorm(self.hidden)
        self.blocks = nn.ModuleList(_ResBlock(self.hidden) for _ in range(max(0, self.depth - 1)))
        self.heads = nn.ModuleDict()
        for e in layout.entries:  # in_scale.<layer>, forward order
            head = nn.Linear(self.hidden, e.size)
            nn.init.xavier_uniform_(head.weight)
            with torch.no_grad():
                head.weight.mul_(0.01)
            nn.init.zeros_(head.bias)
            self.heads[e.layer.replace(".", "_")] = head

    def arch(self) -> Dict[str, int]:
        """Constructor settings (saved with the weights)."""
        return {"cond_dim": self.cond_dim, "hidden": self.hidden, "depth": self.depth}

    def offsets(self, cond: torch.Tensor) -> Dict[str, torch.Tensor]:
        """δ per conv: ``{in_scale.<layer>: [B, C_in]}`` for conditionings [B, E] (normalised inside)."""
        if cond.ndim != 2 or cond.shape[1] != self.cond_dim:
            raise GandaptError(f"the mapper takes embeddings [B, {self.cond_dim}], got {list(cond.shape)}; "
                               "embed with the embedder the model was trained with")
        h = F.relu(self.inp_norm(self.inp(F.normalize(cond, dim=-1))))
        for block in self.blocks:
            h = block(h)
        return {e.name: self.heads[e.layer.replace(".", "_")](h) for e in self.layout.entries}

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """[B, E] → [B, D]: d = 1 + δ in the layout's flat order."""
        delta = self.offsets(cond)
        return torch.cat([1 + delta[e.name] for e in self.layout.entries], dim=1)


class DynaGANHyperNet(nn.Module):
    """Domain code [B, K] (one-hot, or any latent mix) → domain vector [B, D] (stages ``out``, ``rank1``).

    Args:
        num_domains: K, the size of the one-hot code.
        layout: a layout with exactly the ``out`` and ``rank1`` stages.
        hidden: width of υ (DynaGAN: 512).
    """

    def __init__(self, num_domains: int, layout: DomainLayout, hidden: int = 128):
        super().__init__()
        _check_layout(layout, DYNAGAN_STAGES)
        self.layout, self.num_domains, self.hidden = layout, int(num_domains), int(hidden)
        self.embed = nn.Sequential(nn.Linear(self.num_domains, self.hidden),
                                   nn.Linear(self.hidden, self.hidden), nn.LeakyReLU(0.2),
                                   nn.Linear(self.hidden, self.hidden), nn.LeakyReLU(0.2))   # M_A
        self.layers = _convs(layout)
        self.heads = nn.ModuleDict()
        for spec in layout.config.layers():
            if spec.is_torgb:
                continue
            k2 = spec.kernel_size ** 2
            heads = nn.ModuleDict({"a_out": nn.Linear(self.hidden, spec.out_channels),
                                   "a_in": nn.Linear(self.hidden, spec.in_channels),
                                   "kappa": nn.Linear(self.hidden, k2),
                                   "delta": nn.Linear(self.hidden, spec.out_channels)})
            with torch.no_grad():
                for key, lin in heads.items():
                    lin.weight.mul_(0.01)
                    lin.bias.fill_(0.0 if key == "kappa" else 1.0)
            self.heads[spec.name.replace(".", "_")] = heads
        self._kernel = {s.name: s.kernel_size for s in layout.config.layers()}

    def arch(self) -> Dict[str, int]:
        return {"num_domains": self.num_domains, "hidden": self.hidden}

    def latent(self, code: torch.Tensor) -> torch.Tensor:
        """υ = M_A(c): [B, K] → [B, hidden]."""
        if code.ndim != 2 or code.shape[1] != self.num_domains:
            raise GandaptError(f"the domain code must be [B, {self.num_domains}], got {list(code.shape)}")
        return self.embed(code)

    def factors(self, upsilon: torch.Tensor) -> Dict[str, Dict[str, torch.Tensor]]:
        """Per conv ``{a_out [B, O], a_in [B, I], kappa [B, k, k], delta [B, O]}`` (affine in υ)."""
        out = {}
        for name in self.layers:
            heads = self.heads[name.replace(".", "_")]
            k = self._kernel[name]
            f = {key: lin(upsilon) for key, lin in heads.items()}
            f["kappa"] = f["kappa"].reshape(-1, k, k)
            out[name] = f
        return out

    def from_latent(self, upsilon: torch.Tensor, alpha: float = 1.0, beta: float = 1.0) -> torch.Tensor:
        """υ [B, hidden] → domain vector [B, D].

        ``beta`` scales the kernel residual and ``alpha`` the output modulation (DynaGAN's adaptation
        degree, ``generate.py``): r1_out = β·a_out, out_scale = α(δ − 1) + 1.
        """
        f = self.factors(upsilon)
        parts = {}
        for name in self.layers:
            parts[f"out_scale.{name}"] = alpha * (f[name]["delta"] - 1) + 1
            parts[f"r1_out.{name}"] = beta * f[name]["a_out"]
            parts[f"r1_in.{name}"] = f[name]["a_in"]
            parts[f"r1_k.{name}"] = f[name]["kappa"].flatten(1)
        return torch.cat([parts[e.name] for e in self.layout.entries], dim=1)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        """[B, K] → [B, D]."""
        return self.from_latent(self.latent(code))
