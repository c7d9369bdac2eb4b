"""StyleGAN2 residual discriminator (unconditional), NVlabs key names."""

from __future__ import annotations

import math

import torch
from torch import nn

from gandapt.config import DiscriminatorConfig
from gandapt.layers import Conv2dLayer, FullyConnected

SQRT_HALF = math.sqrt(0.5)


class MinibatchStd(nn.Module):
    """Append the minibatch standard deviation as one extra channel (Karras et al. 2018, §3).

    Groups are *strided*: sample i joins group i mod (N / G), as in both references.
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] → [N, C + 1, H, W]."""
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:  # the references require N % G == 0; use the largest group that divides N
            g -= 1
        y = x.reshape(g, -1, 1, c, h, w)            # [G, N/G, F=1, C, H, W]
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # biased variance over the group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])     # [N/G, F]
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # [N, 1, H, W]
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual block at ``resolution``: (fromrgb) → conv0 → conv1(↓2), plus a ↓2 1×1 skip, ×√0.5."""

    def __init__(self, cfg: DiscriminatorConfig, resolution: int):
        super().__init__()
        ch = cfg.channel_dict
        tmp, out = ch[resolution], ch[resolution // 2]
        self.resolution = resolution
        self.first = resolution == cfg.img_resolution
        if self.first:
            self.fromrgb = Conv2dLayer(cfg.img_channels, tmp, 1, conv_clamp=cfg.conv_clamp)
        self.conv0 = Conv2dLayer(tmp, tmp, 3, conv_clamp=cfg.conv_clamp)
        self.conv1 = Conv2dLayer(tmp, out, 3, down=True, conv_clamp=cfg.conv_clamp, downsample=cfg.downsample)
        self.skip = Conv2dLayer(tmp, out, 1, bias=False, lrelu=False, down=True,  # never clamped
                                downsample=cfg.downsample)

    def forward(self, x: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """[N, C, R, R] (or the image at full resolution) → [N, C', R/2, R/2]."""
        if self.first:
            x = self.fromrgb(img)
        y = self.skip(x, gain=SQRT_HALF)
        x = self.conv1(self.conv0(x), gain=SQRT_HALF)  # √0.5 folded into the gain, as NVlabs does
        return y + x


class DiscriminatorEpilogue(nn.Module):
    """4×4 head: minibatch std → 3×3 conv → FC → FC to one logit."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        c = cfg.channel_dict[4]
        self.mbstd = MinibatchStd(cfg.mbstd_group_size)
        self.conv = Conv2dLayer(c + 1, c, 3, conv_clamp=cfg.conv_clamp)
        self.fc = FullyConnected(c * 16, c, lrelu=True)
        self.out = FullyConnected(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, 4, 4] → logits [N, 1]."""
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))  # NCHW flatten order


class Discriminator(nn.Module):
    """Image [N, img_channels, R, R] → realness logits [N, 1]."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        self.img_resolution = config.img_resolution
        self.block_resolutions = [r for r in reversed(config.resolutions) if r > 4]
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(config, res))
        self.b4 = DiscriminatorEpilogue(config)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """[N, C, R, R] → [N, 1]."""
        x = img
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        return self.b4(x)
