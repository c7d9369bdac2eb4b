"""Equalized-learning-rate building blocks shared by the mapping network and the discriminator.

Weights are stored unscaled and multiplied at run time by ``lr_mul / sqrt(fan_in)``; biases by
``lr_mul`` (Karras et al., "Progressive Growing of GANs", §4.1; both StyleGAN2 references do this).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from gandapt.resample import blur, setup_filter

SQRT2 = math.sqrt(2.0)


def bias_act(
    x: torch.Tensor,
    bias: Optional[torch.Tensor],
    lrelu: bool = True,
    gain: float = 1.0,
    clamp: Optional[float] = None,
) -> torch.Tensor:
    """Add a per-channel bias, apply leaky-ReLU(0.2)·gain (or linear·gain), then clamp.

    Args:
        x: activations [N, C, ...].
        bias: [C] or None.
        lrelu: leaky ReLU with slope 0.2; False for a linear layer.
        gain: output gain (√2 for lrelu layers).
        clamp: symmetric clamp applied last (NVlabs ``conv_clamp``); None for no clamp.

    Returns:
        Tensor shaped like ``x``.
    """
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    if lrelu:
        x = F.leaky_relu(x, 0.2)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class FullyConnected(nn.Module):
    """Equalized-lr linear layer (NVlabs ``FullyConnectedLayer``, rosinality ``EqualLinear``)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        lrelu: bool = False,   # leaky ReLU·√2 after the bias
        lr_mul: float = 1.0,   # learning-rate multiplier (0.01 in the mapping network)
        bias_init: float = 0.0,  # 1 for the style affines, so styles start at 1
    ):
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_mul))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, in_features] → [N, out_features]."""
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain
        if not self.lrelu:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, lrelu=True, gain=SQRT2)


class Conv2dLayer(nn.Module):
    """Equalized-lr conv with optional 2× FIR downsampling, bias, leaky ReLU and clamp (discriminator)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        lrelu: bool = True,
        down: bool = False,                 # halve the resolution
        conv_clamp: Optional[float] = None,
        downsample: str = "blur",           # 'blur' (+ stride-2 conv) or 'avgpool' (+ stride-1 conv)
    ):
        super().__init__()
        self.lrelu = lrelu
        self.down = down
        self.downsample = downsample
        self.conv_clamp = conv_clamp
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.register_buffer("resample_filter", setup_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """[N, I, H, W] → [N, O, H', W'] (H' = H/2 when ``down``).

        ``gain`` scales the output (and the clamp) — the residual blocks fold √0.5 in here.
        """
        w = self.weight * self.weight_gain  # [O, I, k, k]
        if self.down and self.downsample == "avgpool":
            # 2×2 mean then a same-size conv: cheaper than blur + stride 2 on CPU, esp. channels_last.
            x = F.conv2d(F.avg_pool2d(x, 2), w, padding=self.kernel_size // 2)
        elif self.down:
            # Blur with enough padding that the stride-2 conv lands on H/2 (pad 2 for 3×3, 1 for 1×1).
            x = blur(x, self.resample_filter, pad=(self.kernel_size + 1) // 2)
            x = F.conv2d(x, w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.kernel_size // 2)
        act_gain = (SQRT2 if self.lrelu else 1.0) * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, lrelu=self.lrelu, gain=act_gain, clamp=clamp)
