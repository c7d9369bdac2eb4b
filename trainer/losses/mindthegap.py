"""MindTheGap's reference-image losses (Zhu et al. 2022, arXiv:2110.08398; weights as DynaGAN's
release, reference/methods.md §4.2). ``n`` is L2 normalisation, E the embedder, I the reference
image, w_ref its inversion, G_d the adapted and G the frozen generator:

* across:  1 − cos(n(E(G_d(w)) − E(G(w))), n(E(I) − E(G(w_ref))))
* within:  1 − cos(n(E(G_d(w)) − E(I)), n(E(G(w)) − E(G(w_ref))))
* ref:     1 − cos(E(G_d(w_ref)), E(I))
* rec:     ‖G_d(w_ref) − I‖² (and a perceptual distance through the embedder's features)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def across_loss(e_adapted: torch.Tensor, e_frozen: torch.Tensor, e_ref: torch.Tensor,
                e_ref_frozen: torch.Tensor) -> torch.Tensor:
    """[N, dim] ×2, [dim] ×2 → scalar."""
    d_gen = F.normalize(F.normalize(e_adapted, dim=-1) - F.normalize(e_frozen, dim=-1), dim=-1)
    d_ref = F.normalize(F.normalize(e_ref, dim=-1) - F.normalize(e_ref_frozen, dim=-1), dim=-1)
    return (1 - d_gen @ d_ref).mean()


def within_loss(e_adapted: torch.Tensor, e_frozen: torch.Tensor, e_ref: torch.Tensor,
                e_ref_frozen: torch.Tensor) -> torch.Tensor:
    """[N, dim] ×2, [dim] ×2 → scalar."""
    a = F.normalize(F.normalize(e_adapted, dim=-1) - F.normalize(e_ref, dim=-1), dim=-1)
    b = F.normalize(F.normalize(e_frozen, dim=-1) - F.normalize(e_ref_frozen, dim=-1), dim=-1)
    return (1 - (a * b).sum(-1)).mean()


def ref_loss(e_ref_adapted: torch.Tensor, e_ref: torch.Tensor) -> torch.Tensor:
    """1 − cos(E(G_d(w_ref)), E(I)); [M, dim], [M, dim] or [dim] → scalar."""
    return (1 - F.cosine_similarity(e_ref_adapted, e_ref.expand_as(e_ref_adapted), dim=-1)).mean()


def rec_loss(img_ref_adapted: torch.Tensor, img_ref: torch.Tensor) -> torch.Tensor:
    """Pixel MSE of G_d(w_ref) against the reference image(s), both [M, 3, H, W] in [-1, 1]."""
    return (img_ref_adapted - img_ref).pow(2).mean()
