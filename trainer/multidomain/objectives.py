"""Multi-domain training objectives: what a hypernetwork step samples and the losses it returns.

Notation: E is the frozen embedder (CLIP, or an offline image tower), n(·) L2 normalisation, t_c
domain c's target embedding (the template-averaged text embedding, or the mean normalised
embedding of its image set), s the source embedding (the source prompt, or the mean embedding of
``n_source`` base samples). The direction of a conditioning e is n(e − s).

HyperDomainNet (Alanov et al. 2022, arXiv:2210.08884; methods.md §2.2–2.3):
  * direction   1 − cos(n(E(G_d(w))) − n(E(G(w))), n(e − s))        (StyleGAN-NADA, eq. 2)
  * indomain    mean_{i<j} (⟨E(G(w_i)), E(G(w_j))⟩ − ⟨E(G_d(w_i)), E(G_d(w_j))⟩)²
  * tt          1 − cos(n(E(G_{d_a}(w_a))) − n(E(G_{d_b}(w_b))), e_a − e_b) over batch pairs with a ≠ b
  * norm        domain-norm: mean over convs of ‖δ_l‖² / numel(δ_l)   (``offsets_l2``)
  and the ``td_multiple`` generalisation trick: a fraction ``mixing`` of the samples is conditioned
  on a random convex mix Σ λ_k t_k (λ uniform on the simplex) with the matching direction.
  * identity    (ours, not the paper's; off unless ``--id-encoder``) DynaGAN's fixed identity term below.
                Without it the mapper's domains collapse onto one look here (ink +51%); with it the
                seen domains keep their content (adaptation_discussion.md).

DynaGAN (Kim et al. 2022, arXiv:2211.14554; methods.md §4.2):
  * direction   as above with the image direction of domain c (MindTheGap's ``clip_across``). Its source
                is the mean of random samples, or with ``--encoder`` the mean of the references'
                encoder inversions G(E(I_c)), which stand in for DynaGAN's II2S inversions.
  * contrast    contrastive adaptation: cross-entropy over logits cos(E(G_c(w)), ·)/τ with the
                positive t_c (un-augmented) and as negatives the other domains' t_j and 4
                DiffAugment (xflip, colour) copies of each. ``contrast_space="direction"`` (ours, not
                the paper's) contrasts directions instead: logits cos(n(n(E(G_c(w))) − n(E(G(w)))),
                d_j)/τ over the K domain directions d_j = n(t_j − s). CLIP's image embeddings of
                different styles are far apart; the offline towers' are nearly parallel (VGG style
                statistics: cosine 0.87–0.97 between the table's references), so the absolute logits
                barely differ between domains and the loss pulls every sample towards its reference
                as a whole, content included. Directions from G(w) drop the shared part.
  * identity    **the released-code bug** (§4.2): ``id_loss(frozen_img, trainable_img)`` detaches
                the trainable image, so the identity term gives no gradient as released. Decision:
                we fix it. With an identity network (``--id-encoder``: the base model's inversion
                encoder stands in for ArcFace, which has no weights offline; see
                :mod:`gandapt.trainer.losses.identity`) the term 1 − cos(ID(G_c(w)), sg[ID(G(w))])
                trains at the paper's weight 3 with gradient through the adapted image. Without one
                the term is off, which is exactly the released training dynamics (a term without
                gradient changes nothing). The fixed term is what keeps the domains from collapsing
                onto their references here (benchmarks/results/adaptation_discussion.md).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn
from torch.nn import functional as F

from gandapt.errors import GandaptError
from gandapt.trainer.losses.directional import DELTA_EPS, directional_loss, indomain_angle_loss
from gandapt.trainer.multidomain.hypernets import DynaGANHyperNet, HDNMapper


def round_robin_labels(num_domains: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """Domain index per sample [B]: consecutive domains from a random start, so a batch of ≥ 2 always
    holds ≥ 2 domains (the tt and contrastive losses need pairs)."""
    start = int(torch.randint(num_domains, [1], generator=gen))
    return (start + torch.arange(batch)) % num_domains


def tt_direction_loss(e_adapted: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """HDN's target-target direction over pairs with different conditionings.

    Args:
        e_adapted: [B, dim] embeddings of the adapted images.
        cond: [B, dim] their conditionings e (same space as the image embeddings).

    Returns:
        Scalar; 0 when every sample has the same conditioning.
    """
    b = e_adapted.shape[0]
    iu = torch.triu_indices(b, b, offset=1)
    dt = cond[iu[0]] - cond[iu[1]]
    keep = dt.norm(dim=-1) > 1e-6
    if not bool(keep.any()):
        return e_adapted.new_zeros(())
    a = F.normalize(e_adapted, dim=-1)
    di = a[iu[0]] - a[iu[1]]
    return (1 - F.cosine_similarity(di[keep], dt[keep], dim=-1, eps=1e-8)).mean()


class HDNObjective(nn.Module):
    """HyperDomainNet over K domains (module docstring).

    Args:
        mapper: the :class:`HDNMapper`.
        embedder: the frozen tower the losses use.
        conds: [K, dim] target embeddings t_k (also the mapper's conditioning).
        source: [dim] source embedding s.
        weights: ``{direction, indomain, tt, norm, id}``; ``id`` needs ``identity``.
        mixing: fraction of samples on a random convex mix of the domains.
        identity: the identity loss ``(adapted, base) -> scalar``, or None.
    """

    def __init__(self, mapper: HDNMapper, embedder: nn.Module, conds: torch.Tensor, source: torch.Tensor,
                 weights: Dict[str, float], mixing: float = 0.5, identity: Optional[nn.Module] = None):
        super().__init__()
        _check_identity(weights, identity)
        self.net, self.embedder, self.weights, self.mixing = mapper, embedder, dict(weights), float(mixing)
        self.identity = identity
        self.register_buffer("conds", conds)
        self.register_buffer("source", source)

    def trainable(self) -> List[torch.Tensor]:
        return list(self.net.parameters())

    def sample_conditions(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        """Conditionings [B, dim]: one domain each, or (with probability ``mixing``) a convex mix."""
        k = self.conds.shape[0]
        lam = F.one_hot(round_robin_labels(k, batch, gen), k).float()                  # [B, K]
        mix = torch.rand(batch, generator=gen) < self.mixing
        if bool(mix.any()):
            expo = -torch.log(torch.rand(batch, k, generator=gen).clamp_min(1e-12))    # Dirichlet(1) weights
            lam = torch.where(mix[:, None], expo / expo.sum(1, keepdim=True), lam)
        return lam.to(self.conds.device) @ self.conds

    def losses(self, G: nn.Module, ws: torch.Tensor, gen: torch.Generator) -> Dict[str, torch.Tensor]:
        cond = self.sample_conditions(ws.shape[0], gen)                                  # [B, dim]
        direction = F.normalize(cond - self.source, dim=-1)
        with torch.no_grad():
            frozen = G.synthesis(ws, noise_mode="const")                                 # [B, 3, R, R]
            e_frozen = self.embedder.encode_image(frozen)
        delta = self.net.offsets(cond)
        vec = torch.cat([1 + delta[e.name] for e in self.net.layout.entries], dim=1)     # [B, D]
        adapted = G.synthesis(ws, domain=vec, noise_mode="const")
        e_adapted = self.embedder.encode_image(adapted)
        out = {"direction": directional_loss(e_adapted, e_frozen, direction)}
        if self.weights.get("id"):
            out["id"] = self.identity(adapted, frozen)
        if self.weights.get("indomain"):
            out["indomain"] = indomain_angle_loss(e_adapted, e_frozen)
        if self.weights.get("tt"):
            out["tt"] = tt_direction_loss(e_adapted, cond)
        if self.weights.get("norm"):
            out["norm"] = torch.stack([d.pow(2).mean() for d in delta.values()]).mean()
        return out


def _check_identity(weights: Dict[str, float], identity: Optional[nn.Module]) -> None:
    if weights.get("id") and identity is None:
        raise GandaptError("the identity loss needs an identity network: pass --id-encoder FILE (the base model's "
                           "inversion encoder) or leave --lambda-id at 0")


def _xflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


@torch.no_grad()
def augmented_bank(embedder: nn.Module, target_sets: List[torch.Tensor], copies: int,
                   gen: torch.Generator) -> torch.Tensor:
    """[K, copies, dim]: for each domain, ``copies`` mean embeddings of DiffAugmented (xflip + colour)
    versions of its target images (DynaGAN's augmented negatives)."""
    from gandapt.trainer.gan.augment import diff_augment

    bank = []
    for images in target_sets:
        rows = []
        for _ in range(copies):
            aug = diff_augment(_xflip(images, gen), ("color",), gen)
            rows.append(F.normalize(embedder.encode_image(aug), dim=-1).mean(0))
        bank.append(torch.stack(rows))
    return torch.stack(bank)


class DynaGANObjective(nn.Module):
    """DynaGAN over K target sets (module docstring).

    Args:
        net: the :class:`DynaGANHyperNet`.
        embedder: the frozen tower.
        refs: [K, dim] target embeddings t_c.
        augs: [K, A, dim] augmented target embeddings (negatives for the other domains).
        source: [dim] source embedding, or [K, dim] one per domain (its references' inversions).
        weights: ``{direction, contrast, id}``; ``id`` needs ``identity``.
        temperature: τ of the contrastive logits (DynaGAN: 1.0).
        contrast_space: ``embedding`` (DynaGAN) or ``direction`` (module docstring).
        identity: the identity loss ``(adapted, base) -> scalar``
            (:class:`~gandapt.trainer.losses.identity.EncoderIdentity`), or None.
    """

    def __init__(self, net: DynaGANHyperNet, embedder: nn.Module, refs: torch.Tensor, augs: torch.Tensor,
                 source: torch.Tensor, weights: Dict[str, float], temperature: float = 1.0,
                 contrast_space: str = "embedding", identity: Optional[nn.Module] = None):
        super().__init__()
        _check_identity(weights, identity)
        self.net, self.embedder, self.weights, self.temperature = net, embedder, dict(weights), float(temperature)
        self.contrast_space, self.identity = contrast_space, identity
        self.register_buffer("refs", refs)
        self.register_buffer("augs", augs)
        self.register_buffer("directions", F.normalize(refs - source, dim=-1))           # [K, dim]

    def trainable(self) -> List[torch.Tensor]:
        return list(self.net.parameters())

    def contrastive_loss(self, e_adapted: torch.Tensor, labels: torch.Tensor,
                         e_frozen: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Cross-entropy of each sample against [all t_j, augmented copies of the other domains], or with
        ``contrast_space="direction"`` of its direction from ``e_frozen`` against the K domain directions.

        Args:
            e_adapted: [B, dim] embeddings of G_c(w).
            labels: [B] domain c of each sample.
            e_frozen: [B, dim] embeddings of G(w) (needed by the direction space only).
        """
        if self.contrast_space == "direction":
            # DELTA_EPS as in directional_loss: at init G_c(w) ≈ G(w), and a tiny eps would blow the gradient up
            d = F.normalize(F.normalize(e_adapted, dim=-1) - F.normalize(e_frozen, dim=-1), dim=-1, eps=DELTA_EPS)
            return F.cross_entropy(d @ self.directions.T / self.temperature, labels)     # logits [B, K]
        k, a, _ = self.augs.shape
        e = F.normalize(e_adapted, dim=-1)
        sim_ref = e @ F.normalize(self.refs, dim=-1).T                                   # [B, K]
        sim_aug = e @ F.normalize(self.augs.reshape(k * a, -1), dim=-1).T                # [B, K·A]
        own = torch.arange(k, device=e.device).repeat_interleave(a)[None] == labels[:, None]
        sim_aug = sim_aug.masked_fill(own, float("-inf"))                                # no own copies
        logits = torch.cat([sim_ref, sim_aug], dim=1) / self.temperature
        return F.cross_entropy(logits, labels)

    def losses(self, G: nn.Module, ws: torch.Tensor, gen: torch.Generator) -> Dict[str, torch.Tensor]:
        k = self.refs.shape[0]
        labels = round_robin_labels(k, ws.shape[0], gen).to(ws.device)
        vec = self.net(F.one_hot(labels, k).float())                                      # [B, D]
        with torch.no_grad():
            frozen = G.synthesis(ws, noise_mode="const")                                 # [B, 3, R, R]
            e_frozen = self.embedder.encode_image(frozen)
        adapted = G.synthesis(ws, domain=vec, noise_mode="const")
        e_adapted = self.embedder.encode_image(adapted)
        out = {"direction": directional_loss(e_adapted, e_frozen, self.directions[labels])}
        if self.weights.get("contrast"):
            out["contrast"] = self.contrastive_loss(e_adapted, labels, e_frozen)
        if self.weights.get("id"):  # the fixed identity term; see the module docstring
            out["id"] = self.identity(adapted, frozen)
        return out
