"""StyleGAN-NADA's directional loss and HyperDomainNet's in-domain angle loss.

Directional (Gal et al. 2022, arXiv:2108.00946, eq. 2): L = 1 − cos(E(G_d(w)) − E(G(w)), Δ), with Δ
the normalised target-minus-source direction of text prompts or of image sets (the image form is
MindTheGap's "across" direction with the reference's inversion replaced by the source set's mean).
In-domain angle (Alanov et al. 2022, HyperDomainNet, arXiv:2210.08884, eq. 6): the pairwise cosine
geometry of a batch must survive adaptation.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.nn import functional as F

from gandapt.errors import GandaptError
from gandapt.trainer.embedders.base import Embedder


@torch.no_grad()
def mean_embedding(embedder: Embedder, images: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Mean normalised embedding [dim] of images [N, 3, H, W] in [-1, 1]."""
    if len(images) == 0:
        raise GandaptError("no images to embed; the target folder is empty")
    e = torch.cat([F.normalize(embedder.encode_image(images[i:i + batch]), dim=-1)
                   for i in range(0, len(images), batch)])
    return e.mean(0)


@torch.no_grad()
def image_direction(embedder: Embedder, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Unit direction [dim] from the mean source embedding to the mean target embedding."""
    d = mean_embedding(embedder, target) - mean_embedding(embedder, source)
    if d.norm() < 1e-8:
        raise GandaptError("the target images embed exactly like the source images; nothing to adapt towards")
    return F.normalize(d, dim=0)


@torch.no_grad()
def text_direction(embedder: Embedder, source: str, target: str) -> torch.Tensor:
    """Unit direction [dim] from the source prompt to the target prompt (template-averaged)."""
    e = F.normalize(embedder.encode_text([source, target]), dim=-1)
    return F.normalize(e[1] - e[0], dim=0)


DELTA_EPS = 1e-2


def directional_loss(e_adapted: torch.Tensor, e_frozen: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """1 − cos(n(e_adapted) − n(e_frozen), direction), averaged over the batch.

    Args:
        e_adapted: [N, dim] embeddings of G_d(w).
        e_frozen: [N, dim] embeddings of G(w) (same w).
        direction: [dim] or [N, dim] unit target direction.
    """
    delta = F.normalize(e_adapted, dim=-1) - F.normalize(e_frozen, dim=-1)
    # At the start G_d = G, so delta is exactly 0 and the cosine's gradient grows like 1/max(|delta|, eps):
    # with eps = 1e-8 the first steps' gradients (~1e7) swamp Adam's second-moment estimate and freeze
    # every later update. An eps of DELTA_EPS (unit-normalised embeddings move by ~0.05-0.5 when adapted)
    # makes the start a linear pull along the direction instead.
    return (1 - F.cosine_similarity(delta, direction.expand_as(delta), dim=-1, eps=DELTA_EPS)).mean()


def indomain_angle_loss(e_adapted: torch.Tensor, e_frozen: torch.Tensor) -> torch.Tensor:
    """Mean squared change of the pairwise cosines within a batch (HDN's ``indomain``).

    Args:
        e_adapted, e_frozen: [N, dim] embeddings of G_d(w_i) and G(w_i), N ≥ 2.
    """
    n = e_adapted.shape[0]
    if n < 2:
        raise GandaptError("the in-domain angle loss needs a batch of at least 2")
    a, f = F.normalize(e_adapted, dim=-1), F.normalize(e_frozen, dim=-1)
    iu = torch.triu_indices(n, n, offset=1)
    diff = (f @ f.T - a @ a.T)[iu[0], iu[1]]
    return diff.pow(2).mean()


def quality_diversity(e_adapted: torch.Tensor, target: torch.Tensor) -> tuple:
    """HDN's evaluation pair: quality = mean cos to the target embedding, diversity = mean pairwise
    (1 − cos) within the adapted batch (reference/methods.md §8.4)."""
    a = F.normalize(e_adapted, dim=-1)
    quality = (a @ F.normalize(target, dim=0)).mean()
    n = a.shape[0]
    iu = torch.triu_indices(n, n, offset=1)
    diversity = (1 - (a @ a.T)[iu[0], iu[1]]).mean() if n > 1 else a.new_tensor(0.0)
    return float(quality), float(diversity)


def check_prompts(texts: Sequence[str]) -> None:
    if any(not t.strip() for t in texts):
        raise GandaptError("empty text prompt; pass --text and --source-text with words, e.g. --text sketch")
