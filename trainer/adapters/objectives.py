"""Per-method training objectives: what is trained and the loss of one step.

* :class:`DirectionalObjective` — ``domain-mod``, ``stylespace`` (a layout slice) and ``finetune``
  (every synthesis weight: the full fine-tuning baseline): NADA directional loss + HDN in-domain
  angle + L2 to identity (layout methods only) + MindTheGap's reference reconstruction (with an
  inversion encoder).
* :class:`GenDAObjective` — GenDA (Yang et al. 2023, arXiv:2111.09876): an attribute adaptor
  w' = a ⊙ w + b on W+ (layout ``w_scale``/``w_shift``, per row or shared by all rows), the last
  ToRGB tuned (``rgb_dW``/``rgb_db``), trained against a lightweight attribute classifier φ on the
  frozen discriminator backbone d(·) (eqs. 4-5): L_A = −log φ(d(G(z'))), L_φ = −log φ(d(x_ref)) −
  log(1 − φ(d(G(z')))), with truncation during training (ψ = 0.7) and DiffAugment on both sides.
"""

from __future__ import annotations

import copy
from typing import Dict, Iterable, List, Optional

import torch
from torch import nn
from torch.nn import functional as F

from gandapt.errors import GandaptError
from gandapt.layout import DomainLayout
from gandapt.trainer.adapters.param import LayoutParam
from gandapt.trainer.losses.directional import directional_loss, indomain_angle_loss
from gandapt.trainer.losses.mindthegap import rec_loss
from gandapt.trainer.losses.regularizers import l2_to_identity


class Objective(nn.Module):
    """What a method trains (:meth:`trainable`) and how one step's losses are computed."""

    def trainable(self) -> List[torch.Tensor]:
        raise NotImplementedError

    def domain(self) -> Optional[torch.Tensor]:
        """The domain vector [1, D] passed to synthesis (None: the weights themselves changed)."""
        return None

    def generator(self, G: nn.Module) -> nn.Module:
        """The generator the adapted images come from."""
        return G

    def losses(self, G: nn.Module, ws: torch.Tensor, gen: torch.Generator) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


class DirectionalObjective(Objective):
    """NADA + in-domain angle (+ L2) for a layout slice, or for all synthesis weights (finetune).

    Args:
        embedder: the frozen image tower.
        direction: [dim] unit target direction.
        weights: ``{direction, indomain, l2}`` loss weights.
        param: the layout slice; None for full fine-tuning.
        G: the frozen base generator (finetune trains a copy of its synthesis network).
    """

    def __init__(self, embedder: nn.Module, direction: torch.Tensor, weights: Dict[str, float],
                 param: Optional[LayoutParam] = None, G: Optional[nn.Module] = None,
                 ref_ws: Optional[torch.Tensor] = None, ref_images: Optional[torch.Tensor] = None):
        super().__init__()
        self.embedder, self.param, self.weights = embedder, param, dict(weights)
        self.register_buffer("direction", direction)
        # MindTheGap's reconstruction term: the references' inversions [M, num_ws, w_dim] must render as
        # the references [M, 3, R, R] in the domain (a pixel anchor the embedder-space losses lack).
        if self.weights.get("rec") and (ref_ws is None or ref_images is None):
            raise GandaptError("the reconstruction loss needs the references' inversions: pass --encoder")
        self.register_buffer("ref_ws", ref_ws if ref_ws is not None else torch.zeros(0))
        self.register_buffer("ref_images", ref_images if ref_images is not None else torch.zeros(0))
        self.tuned = None
        if param is None:
            if G is None:
                raise GandaptError("full fine-tuning needs the base generator")
            self.tuned = copy.deepcopy(G).requires_grad_(False)
            self.tuned.synthesis.requires_grad_(True)  # NADA trains synthesis; mapping stays frozen

    def trainable(self) -> List[torch.Tensor]:
        if self.param is not None:
            return [self.param.values]
        return [p for p in self.tuned.synthesis.parameters() if p.requires_grad]

    def domain(self) -> Optional[torch.Tensor]:
        return self.param() if self.param is not None else None

    def generator(self, G: nn.Module) -> nn.Module:
        return self.tuned if self.tuned is not None else G

    def losses(self, G, ws, gen):
        with torch.no_grad():
            e_frozen = self.embedder.encode_image(G.synthesis(ws, noise_mode="const"))
        img = self.generator(G).synthesis(ws, domain=self.domain(), noise_mode="const")   # [B, 3, R, R]
        e_adapted = self.embedder.encode_image(img)
        out = {"direction": directional_loss(e_adapted, e_frozen, self.direction)}
        if self.weights.get("indomain"):
            out["indomain"] = indomain_angle_loss(e_adapted, e_frozen)
        if self.weights.get("l2") and self.param is not None:
            out["l2"] = l2_to_identity(self.param.values, self.param.identity[self.param.index])
        if self.weights.get("rec"):
            ref = self.generator(G).synthesis(self.ref_ws, domain=self.domain(), noise_mode="const")
            out["rec"] = rec_loss(ref, self.ref_images)
        return out


class TiedLayoutParam(LayoutParam):
    """A layout slice whose ``w_scale``/``w_shift`` share one [w_dim] vector across all W+ rows."""

    def __init__(self, layout: DomainLayout, names: Iterable[str], w_dim: int, num_ws: int):
        names = tuple(names)
        super().__init__(layout, names)
        self.w_dim, self.num_ws = w_dim, num_ws
        # Free values: for each tied W entry one row, the rest as they are.
        keep, self._expand = [], []
        pos = 0
        for n in names:
            size = layout.slice(n).stop - layout.slice(n).start
            if n in ("w_scale", "w_shift"):
                keep.append(torch.arange(pos, pos + w_dim))
                self._expand.append(("tied", w_dim))
            else:
                keep.append(torch.arange(pos, pos + size))
                self._expand.append(("free", size))
            pos += size
        self.values = nn.Parameter(self.values.detach()[torch.cat(keep)].clone())

    def full_values(self) -> torch.Tensor:
        parts, pos = [], 0
        for kind, size in self._expand:
            chunk = self.values[pos:pos + size]
            parts.append(chunk.repeat(self.num_ws) if kind == "tied" else chunk)
            pos += size
        return torch.cat(parts)

    def forward(self) -> torch.Tensor:
        return self.identity.index_put((self.index,), self.full_values()).unsqueeze(0)

    def offset(self) -> torch.Tensor:
        return self.full_values() - self.identity[self.index]

    @property
    def num_params(self) -> int:
        return self.values.numel()


class AttributeClassifier(nn.Module):
    """φ: the frozen D backbone's 4×4 features [N, C, 4, 4] → one logit [N]."""

    def __init__(self, channels: int, hidden: int = 128):
        super().__init__()
        self.fc0 = nn.Linear(channels * 16, hidden)
        self.fc1 = nn.Linear(hidden, 1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.fc1(F.leaky_relu(self.fc0(feat.flatten(1)), 0.2)).squeeze(1)


class GenDAObjective(Objective):
    """GenDA's adaptor + classifier game (module docstring). The classifier is updated inside
    :meth:`losses` (its own optimiser); the returned losses train the adaptor."""

    def __init__(self, param: LayoutParam, disc_embedder: nn.Module, reference: torch.Tensor,
                 augment_policy=("color", "translation", "cutout"), classifier_lr: float = 0.002):
        super().__init__()
        from gandapt.trainer.gan.augment import parse_policy

        self.param, self.d = param, disc_embedder
        self.register_buffer("reference", reference)          # [M, 3, R, R] in [-1, 1]
        c4 = disc_embedder.D.config.channel_dict[4]
        self.phi = AttributeClassifier(c4)
        self.phi_opt = torch.optim.Adam(self.phi.parameters(), lr=classifier_lr, betas=(0.0, 0.99))
        self.policy = parse_policy(",".join(augment_policy)) if augment_policy else ()

    def trainable(self) -> List[torch.Tensor]:
        return [self.param.values]

    def domain(self) -> torch.Tensor:
        return self.param()

    def _aug(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        from gandapt.trainer.gan.augment import diff_augment

        return diff_augment(x, self.policy, gen) if self.policy else x

    def _logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.phi(self.d.backbone(x)[4])

    def losses(self, G, ws, gen):
        img = G.synthesis(ws, domain=self.domain(), noise_mode="const")       # [B, 3, R, R]
        # 1) classifier step: the reference is positive, current adapted samples negative (eq. 5)
        idx = torch.randint(len(self.reference), [img.shape[0]], generator=gen)
        real = self._aug(self.reference[idx.to(self.reference.device)], gen)
        self.phi.requires_grad_(True)
        loss_phi = F.softplus(-self._logit(real)).mean() + F.softplus(self._logit(self._aug(img.detach(), gen))).mean()
        self.phi_opt.zero_grad(set_to_none=True)
        loss_phi.backward()
        self.phi_opt.step()
        # 2) adaptor loss: make samples classify as the attribute (eq. 4); φ frozen for this pass
        self.phi.requires_grad_(False)
        loss_a = F.softplus(-self._logit(self._aug(img, gen))).mean()
        return {"attribute": loss_a, "classifier": loss_phi.detach()}

    def aux_state(self) -> dict:
        return {"phi": self.phi.state_dict(), "phi_opt": self.phi_opt.state_dict()}

    def load_aux_state(self, state: dict) -> None:
        self.phi.load_state_dict(state["phi"])
        self.phi_opt.load_state_dict(state["phi_opt"])
