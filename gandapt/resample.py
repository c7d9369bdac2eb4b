"""FIR up/down-sampling (``upfirdn2d``) in plain PyTorch ops.

Both references resample with the separable binomial filter [1, 3, 3, 1]. This module implements
the general upsample → pad → FIR → downsample operation with ops that export to ONNX (reshape, pad,
depthwise conv), following the definition in NVlabs' ``upfirdn2d`` reference path
(stylegan2-ada-pytorch, torch_utils/ops/upfirdn2d.py); no code is taken from there.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """Outer product of ``taps`` with itself, normalised to sum 1.

    Returns:
        Filter [K, K] (float32); ``outer([1,3,3,1])/64`` by default.
    """
    t = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(t, t)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: Tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad, filter with ``f``, downsample by striding.

    Args:
        x: images [N, C, H, W].
        f: 2-D FIR filter [kh, kw] (applied as a true convolution, i.e. flipped).
        up: integer upsampling factor.
        down: integer downsampling factor.
        pad: (x0, x1, y0, y1) zero padding after upsampling (non-negative).
        gain: overall gain multiplied into the filter (``up**2`` keeps the mean after upsampling).

    Returns:
        [N, C, H', W'] with H' = (H·up + y0 + y1 − kh + 1) // down (and likewise W').
    """
    n, c, h, w = x.shape  # [N, C, H, W]
    if up > 1:
        # Insert up−1 zeros after every pixel: [N, C, H, 1, W, 1] → pad → [N, C, H·up, W·up].
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    if any(pad):
        x = F.pad(x, [x0, x1, y0, y1])
    # Depthwise true convolution: flip the filter because conv2d correlates.
    weight = (f * gain).flip([0, 1]).to(x.dtype)
    weight = weight[None, None].expand(c, 1, *f.shape)  # [C, 1, kh, kw]
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2× upsampling of the skip RGB image (pad 2 before, 1 after, gain 4).

    Args:
        x: [N, C, H, W].
        f: filter [4, 4] summing to 1.

    Returns:
        [N, C, 2H, 2W].
    """
    return upfirdn2d(x, f, up=2, pad=(2, 1, 2, 1), gain=4.0)


def blur(x: torch.Tensor, f: torch.Tensor, pad: int, gain: float = 1.0) -> torch.Tensor:
    """Symmetric FIR blur with ``pad`` pixels of zero padding on every side.

    Args:
        x: [N, C, H, W].
        f: filter [K, K].
        pad: padding per side.
        gain: filter gain (4 after a stride-2 transposed conv).

    Returns:
        [N, C, H + 2·pad − K + 1, W + 2·pad − K + 1].
    """
    return upfirdn2d(x, f, pad=(pad, pad, pad, pad), gain=gain)
