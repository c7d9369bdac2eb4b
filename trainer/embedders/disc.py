"""The GAN's own discriminator as an embedder: pooled features of its last blocks.

D was trained on the base domain, so its features are tuned to exactly the images being adapted —
the "discriminator features" embedder of the single-domain methods (and GenDA's frozen backbone
d(·), whose classifier head sits on :meth:`DiscriminatorEmbedder.backbone`).
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

from gandapt.errors import GandaptError
from gandapt.trainer.embedders.base import Embedder


class DiscriminatorEmbedder(Embedder):
    """Images [N, 3, R, R] in [-1, 1] → channel means and stds of D's blocks at 16 and 8 px and its
    4×4 input, concatenated.

    Args:
        D: a :class:`~gandapt.discriminator.Discriminator` (copied and frozen).
        resolutions: which block outputs to pool (output resolution of each block).
    """

    name = "disc"

    def __init__(self, D: Optional[nn.Module] = None, resolutions=(16, 8, 4)):
        super().__init__()
        if D is None:
            raise GandaptError("the disc embedder needs the base model's discriminator; the model file has none "
                               "(train or load a checkpoint with D, e.g. gandapt.samples.base_model())")
        self.D = copy.deepcopy(D).eval().requires_grad_(False)
        self.R = D.img_resolution
        self.taps = tuple(int(r) for r in resolutions)
        ch = D.config.channel_dict
        bad = [r for r in self.taps if r not in ch or r >= self.R]
        if bad:
            raise GandaptError(f"disc embedder: no block output at {bad} px for a {self.R} px discriminator")
        self.dim = 2 * sum(ch[r] for r in self.taps)

    def backbone(self, img: torch.Tensor) -> dict:
        """Block outputs {resolution: [N, C, r, r]} (D without its real/fake epilogue)."""
        if img.shape[-1] != self.R:
            img = nn.functional.interpolate(img, size=(self.R, self.R), mode="bilinear", align_corners=False,
                                            antialias=img.shape[-1] > self.R)
        feats, x = {}, img
        for res in self.D.block_resolutions:
            x = getattr(self.D, f"b{res}")(x, img)        # [N, C, res/2, res/2]
            feats[res // 2] = x
        return feats

    def _embed_image(self, img: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(img)
        stats = []
        for r in self.taps:
            f = feats[r].flatten(2)
            stats += [f.mean(2), (f.var(2, unbiased=False) + 1e-5).sqrt()]
        return torch.cat(stats, dim=1)
