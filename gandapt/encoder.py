"""The W+ inversion encoder: image [N, 3, R, R] → ws [N, num_ws, w_dim] for a fixed generator.

A small pSp-style network (Richardson et al. 2021, "Encoding in Style", arXiv:2008.00951): a
residual CNN pyramid whose coarse, medium and fine feature maps each predict the ws rows of the
generator layers at matching scales. As in e4e (Tov et al. 2021, arXiv:2102.02766) every row is
``w_avg + base + delta_row``: one shared code plus per-row offsets that training keeps small, so
inversions stay close to W, where edits and domains behave as on sampled latents.

Images use the GAN convention: RGB in [-1, 1], ``img_resolution`` square (the runtime crops and
resizes camera frames to it with :mod:`gandapt.runtime.crop`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from gandapt.config import GeneratorConfig, _check_resolution
from gandapt.errors import GandaptError

# Generator blocks up to this resolution are "coarse", up to MEDIUM_MAX "medium", the rest "fine"
# (pSp's split of the 18 FFHQ rows: 4–8 px / 16–32 px / 64 px and up).
COARSE_MAX, MEDIUM_MAX = 8, 32


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of an :class:`Encoder`.

    Attributes:
        img_resolution: input size R (square).
        num_ws: rows of the generator's W+.
        w_dim: width of a w.
        channels: widths of the downsampling stages R/2, R/4, ..., 4 (the last three stages feed
            the fine, medium and coarse heads); None: ``min(256, max(16, 1024 // r))`` for a stage
            of output size r.
        groups: ws rows predicted by the (coarse, medium, fine) heads; they sum to ``num_ws``.
        head_channels: 1×1-conv width of each head before its 4×4 pooling.
        head_dim: hidden width of each head's MLP.
    """

    img_resolution: int
    num_ws: int
    w_dim: int
    groups: Tuple[int, int, int]
    channels: Optional[Tuple[int, ...]] = None
    head_channels: int = 32
    head_dim: int = 256

    def __post_init__(self) -> None:
        log2 = _check_resolution(self.img_resolution)
        if log2 < 5:
            raise GandaptError(f"the encoder needs inputs of at least 32 px, got {self.img_resolution}")
        if self.channels is None:
            sizes = [self.img_resolution >> (i + 1) for i in range(log2 - 2)]  # R/2 .. 4
            object.__setattr__(self, "channels", tuple(min(256, max(16, 1024 // r)) for r in sizes))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "groups", tuple(int(g) for g in self.groups))
        if len(self.channels) < 3 or len(self.channels) > log2 - 2:
            raise GandaptError(
                f"encoder channels must list 3..{log2 - 2} stage widths for {self.img_resolution} px input "
                f"(the last stage must stay >= 4 px), got {len(self.channels)}"
            )
        if len(self.groups) != 3 or sum(self.groups) != self.num_ws or min(self.groups) < 0:
            raise GandaptError(f"encoder groups {self.groups} must be 3 counts summing to num_ws={self.num_ws}")

    @classmethod
    def for_generator(cls, g: GeneratorConfig, **kwargs: Any) -> "EncoderConfig":
        """The encoder for generator ``g``, reading images at ``g.img_resolution``.

        The coarse/medium/fine split follows the resolution of the layer each ws row feeds.
        """
        res_of_row = {}
        for spec in g.layers():
            res_of_row.setdefault(spec.w_index, spec.resolution)
        res_of_row.setdefault(g.num_ws - 1, g.img_resolution)  # the last ToRGB's extra row
        coarse = sum(1 for i in range(g.num_ws) if res_of_row.get(i, g.img_resolution) <= COARSE_MAX)
        medium = sum(1 for i in range(g.num_ws) if COARSE_MAX < res_of_row.get(i, g.img_resolution) <= MEDIUM_MAX)
        kwargs.setdefault("img_resolution", g.img_resolution)
        return cls(num_ws=g.num_ws, w_dim=g.w_dim, groups=(coarse, medium, g.num_ws - coarse - medium), **kwargs)

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EncoderConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise GandaptError(f"unknown encoder config field(s) {unknown}; written by a newer gandapt?")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class _ResBlock(nn.Module):
    """Two 3×3 convs with a strided 1×1 shortcut: [N, C_in, H, W] → [N, C_out, H/2, W/2]."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv0 = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.bn0(self.conv0(x)), 0.2)
        y = self.bn1(self.conv1(y))
        return F.leaky_relu(y + self.skip(x), 0.2)


class _Head(nn.Module):
    """Feature map [N, C, H, W] → ``rows`` codes [N, rows, w_dim] (pSp's map2style, pooled to 4×4)."""

    def __init__(self, c_in: int, size: int, rows: int, cfg: EncoderConfig, extra: int = 0):
        super().__init__()
        self.pool = size // 4
        self.rows, self.extra, self.w_dim = rows, extra, cfg.w_dim
        self.reduce = nn.Conv2d(c_in, cfg.head_channels, 1)
        self.fc0 = nn.Linear(cfg.head_channels * 16, cfg.head_dim)
        self.fc1 = nn.Linear(cfg.head_dim, (rows + extra) * cfg.w_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.reduce(x), 0.2)              # [N, head_channels, H, W]
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)                 # [N, head_channels, 4, 4]
        x = F.leaky_relu(self.fc0(x.flatten(1)), 0.2)      # [N, head_dim]
        return self.fc1(x).view(-1, self.rows + self.extra, self.w_dim)


class Encoder(nn.Module):
    """image [N, 3, R, R] in [-1, 1] → ws [N, num_ws, w_dim] (see the module docstring)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        self.stem = nn.Sequential(nn.Conv2d(3, ch[0], 3, padding=1, bias=False), nn.BatchNorm2d(ch[0]),
                                  nn.LeakyReLU(0.2))
        self.stages = nn.ModuleList(_ResBlock(a, b) for a, b in zip((ch[0],) + ch[:-1], ch))
        sizes = [config.img_resolution >> (i + 1) for i in range(len(ch))]
        coarse, medium, fine = config.groups
        # The coarse head also predicts the shared base code (one extra row).
        self.coarse = _Head(ch[-1], sizes[-1], coarse, config, extra=1)
        # A generator too small for a medium/fine group (32 px has no fine rows) gets no such head.
        self.medium = _Head(ch[-2], sizes[-2], medium, config) if medium else None
        self.fine = _Head(ch[-3], sizes[-3], fine, config) if fine else None
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Invert images.

        Args:
            img: [N, 3, R, R], RGB in [-1, 1].

        Returns:
            ws [N, num_ws, w_dim].
        """
        ws, _ = self.forward_parts(img)
        return ws

    def forward_parts(self, img: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`forward`, also returning the per-row offsets [N, num_ws, w_dim] (for e4e's
        delta regulariser)."""
        R = self.config.img_resolution
        if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != R or img.shape[3] != R:
            raise GandaptError(f"the encoder takes images [N, 3, {R}, {R}], got {list(img.shape)}; "
                               f"crop and resize inputs to {R} px")
        feats = []
        x = self.stem(img)                                  # [N, ch0, R, R]
        for stage in self.stages:
            x = stage(x)                                    # [N, ch_i, R/2^(i+1), ...]
            feats.append(x)
        c = self.coarse(feats[-1])                          # [N, 1 + coarse, w_dim]
        base, deltas = c[:, :1], [c[:, 1:]]
        if self.medium is not None:
            deltas.append(self.medium(feats[-2]))
        if self.fine is not None:
            deltas.append(self.fine(feats[-3]))
        delta = torch.cat(deltas, dim=1)                    # [N, num_ws, w_dim]
        return self.w_avg + base + delta, delta
