"""Differentiable augmentation for small datasets (DiffAugment; Zhao et al., NeurIPS 2020, §3).

The same random transform family is applied to real and fake images before D, in both the G and D
steps, so D never sees un-augmented images and the augmentation does not leak into G's output.
Written from the paper's description: colour (brightness, saturation, contrast), translation by up
to 1/8 of the image with zero fill, and cutout of a square half the image size.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple:
    """'color,translation' → ('color', 'translation'); '' or 'none' → ()."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip() and p.strip() != "none")
    bad = [p for p in names if p not in POLICIES]
    if bad:
        from gandapt.errors import GandaptError

        raise GandaptError(f"unknown augmentation {bad[0]!r}; use a comma list of {', '.join(POLICIES)} or 'none'")
    return names


def diff_augment(x: torch.Tensor, policy: Sequence[str], generator: torch.Generator = None) -> torch.Tensor:
    """Apply the augmentations in ``policy`` with independent randomness per sample.

    Args:
        x: images [N, C, H, W] in [-1, 1].
        policy: names from :data:`POLICIES`.
        generator: RNG for reproducible training (CPU).

    Returns:
        Augmented images [N, C, H, W]; differentiable w.r.t. ``x``.
    """
    n = x.shape[0]

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(x.device, x.dtype)

    if "color" in policy:
        x = x + (rand(n, 1, 1, 1) - 0.5)                                   # brightness ±0.5
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (rand(n, 1, 1, 1) * 2) + mean                     # saturation ×[0, 2]
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean                   # contrast ×[0.5, 1.5]
    if "translation" in policy:
        x = _translate(x, rand(n, 2), ratio=0.125)
    if "cutout" in policy:
        x = _cutout(x, rand(n, 2), ratio=0.5)
    return x


def _translate(x: torch.Tensor, u: torch.Tensor, ratio: float) -> torch.Tensor:
    """Shift each image by an integer offset in [−ratio·size, ratio·size], filling with zeros."""
    n, c, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (u[:, 0] * (2 * sy + 1)).floor().long() - sy  # [N]
    dx = (u[:, 1] * (2 * sx + 1)).floor().long() - sx
    padded = F.pad(x, [sx, sx, sy, sy])
    iy = (torch.arange(h, device=x.device)[None, :] + sy - dy[:, None]).clamp(0, h + 2 * sy - 1)  # [N, H]
    ix = (torch.arange(w, device=x.device)[None, :] + sx - dx[:, None]).clamp(0, w + 2 * sx - 1)  # [N, W]
    rows = torch.gather(padded, 2, iy[:, None, :, None].expand(n, c, h, w + 2 * sx))
    return torch.gather(rows, 3, ix[:, None, None, :].expand(n, c, h, w))


def _cutout(x: torch.Tensor, u: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero a square of side ratio·size at a random centre in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (u[:, 0] * (h + 1 - ch % 2)).floor()  # [N] top-left corner offset by half the size
    cx = (u[:, 1] * (w + 1 - cw % 2)).floor()
    ys = torch.arange(h, device=x.device, dtype=x.dtype)[None, :] - (cy[:, None] - ch // 2)
    xs = torch.arange(w, device=x.device, dtype=x.dtype)[None, :] - (cx[:, None] - cw // 2)
    keep_y = ((ys < 0) | (ys >= ch)).to(x.dtype)  # [N, H]
    keep_x = ((xs < 0) | (xs >= cw)).to(x.dtype)  # [N, W]
    mask = 1 - (1 - keep_y[:, :, None]) * (1 - keep_x[:, None, :])  # [N, H, W]
    return x * mask[:, None]
