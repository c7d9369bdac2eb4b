"""DEGAN's domain encoder: one reference image → StyleSpace offsets Δs for every modulated layer.

DEGAN ("Domain Encoder GAN", HSE thesis 2024, ``kkorolev1/gan-domain-adaptation``; reference/methods.md
§6.1) encodes a domain image with a frozen ViT-B/16 and, from the [CLS] token of one block per
generator resolution, predicts Δs for each layer of that resolution with an independent 3-layer MLP
``Linear–LN–GELU–Linear–LN–GELU–Linear(C_in)``. The domain is applied pre-demodulation,
s' = s + Δs, on all layers including ToRGB: exactly the runtime layout's ``s_shift.*`` entries.

Scaled down for CPU (and for a world with no pretrained ViT): the backbone is a small strided CNN
trained with the heads; each generator resolution reads one backbone stage (coarse resolutions the
deepest, as pSp/gandapt's inversion encoder does), pooled to channel means and standard deviations
(the style statistics a domain lives in, cf. AdaIN). The last linear of every head starts at zero,
so an untrained encoder yields the identity domain.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gandapt.config import GeneratorConfig, _check_resolution
from gandapt.errors import GandaptError
from gandapt.layout import DomainLayout

STAGES = ("s",)  # the layout stage a DEGAN domain lives in


@dataclass(frozen=True)
class DomainEncoderConfig:
    """Architecture of a :class:`DomainEncoder`.

    Attributes:
        img_resolution: input size R of the reference image (square, RGB in [-1, 1]).
        layers: generator layer names in forward order (``b4.conv1``, ``b4.torgb``, ...).
        layer_channels: C_in of each layer (the length of its Δs).
        layer_resolutions: output resolution of each layer (selects its backbone stage).
        channels: widths of the backbone stages R/2, R/4, ..., (at least 2 stages).
        hidden: width of the heads' MLPs (768 in the thesis).
    """

    img_resolution: int
    layers: Tuple[str, ...]
    layer_channels: Tuple[int, ...]
    layer_resolutions: Tuple[int, ...]
    channels: Tuple[int, ...] = (32, 64, 128, 128)
    hidden: int = 128

    def __post_init__(self) -> None:
        for name in ("layers", "layer_channels", "layer_resolutions", "channels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        log2 = _check_resolution(self.img_resolution)
        if not 2 <= len(self.channels) <= log2 - 1:
            raise GandaptError(f"the domain encoder needs 2..{log2 - 1} backbone stages for {self.img_resolution} px "
                               f"input, got {len(self.channels)}")
        if not (len(self.layers) == len(self.layer_channels) == len(self.layer_resolutions)) or not self.layers:
            raise GandaptError("domain encoder config: layers, layer_channels and layer_resolutions must have one "
                               "entry per generator layer")
        if self.hidden < 1:
            raise GandaptError(f"domain encoder hidden width must be >= 1, got {self.hidden}")

    @classmethod
    def for_generator(cls, g: GeneratorConfig, **kwargs: Any) -> "DomainEncoderConfig":
        """The encoder for generator ``g``; reads images at ``g.img_resolution`` unless told otherwise."""
        specs = g.layers()
        kwargs.setdefault("img_resolution", g.img_resolution)
        return cls(layers=tuple(s.name for s in specs), layer_channels=tuple(s.in_channels for s in specs),
                   layer_resolutions=tuple(s.resolution for s in specs), **kwargs)

    @property
    def out_dim(self) -> int:
        """Length of Δs: ΣC_in over all layers."""
        return int(sum(self.layer_channels))

    def stage_of(self, resolution: int) -> int:
        """Backbone stage read by the layers of ``resolution``: the deepest for 4 px, the shallowest for
        the generator's finest resolution, linearly in log2 between."""
        res = sorted(set(self.layer_resolutions))
        i, k = res.index(resolution), len(self.channels)
        return k - 1 - int(round(i * (k - 1) / max(1, len(res) - 1)))

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DomainEncoderConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise GandaptError(f"unknown domain encoder config field(s) {unknown}; written by a newer gandapt?")
        return cls(**dict(d))


class _Head(nn.Module):
    """DEGAN's per-layer MLP: pooled features [N, F] → Δs [N, C_in] (Linear–LN–GELU ×2, Linear)."""

    def __init__(self, f_in: int, hidden: int, c_out: int):
        super().__init__()
        self.fc0, self.ln0 = nn.Linear(f_in, hidden), nn.LayerNorm(hidden)
        self.fc1, self.ln1 = nn.Linear(hidden, hidden), nn.LayerNorm(hidden)
        self.fc2 = nn.Linear(hidden, c_out)
        nn.init.zeros_(self.fc2.weight)  # start at the identity domain
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.ln0(self.fc0(x)))
        x = F.gelu(self.ln1(self.fc1(x)))
        return self.fc2(x)


class DomainEncoder(nn.Module):
    """reference image [N, 3, R, R] in [-1, 1] → Δs [N, ΣC_in] (layers in forward order)."""

    def __init__(self, config: DomainEncoderConfig):
        super().__init__()
        self.config = config
        ch = config.channels
        self.stem = nn.Conv2d(3, ch[0], 3, padding=1)
        self.stages = nn.ModuleList()
        for a, b in zip((ch[0],) + ch[:-1], ch):  # each stage halves the size: R/2, R/4, ...
            self.stages.append(nn.Sequential(nn.Conv2d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                             nn.Conv2d(b, b, 3, padding=1), nn.LeakyReLU(0.2)))
        self.heads = nn.ModuleList(
            _Head(2 * ch[config.stage_of(r)], config.hidden, c)
            for r, c in zip(config.layer_resolutions, config.layer_channels))
        self._stage_of_layer = [config.stage_of(r) for r in config.layer_resolutions]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Encode reference images.

        Args:
            img: [N, 3, R, R], RGB in [-1, 1].

        Returns:
            Δs [N, ΣC_in]: the layers' offsets concatenated in forward order.
        """
        R = self.config.img_resolution
        if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != R or img.shape[3] != R:
            raise GandaptError(f"the domain encoder takes images [N, 3, {R}, {R}], got {list(img.shape)}; "
                               f"resize reference images to {R} px")
        x = F.leaky_relu(self.stem(img), 0.2)                                     # [N, ch0, R, R]
        pooled = []
        for stage in self.stages:
            x = stage(x)                                                          # [N, ch_i, R/2^(i+1), ...]
            flat = x.flatten(2)
            mean = flat.mean(-1)
            std = (flat - mean[..., None]).pow(2).mean(-1).add(1e-8).sqrt()
            pooled.append(torch.cat([mean, std], dim=1))                          # [N, 2·ch_i]
        return torch.cat([head(pooled[i]) for head, i in zip(self.heads, self._stage_of_layer)], dim=1)


def check_generator(config: DomainEncoderConfig, g: GeneratorConfig) -> None:
    """Refuse a generator whose layers differ from the ones the encoder was built for.

    Raises:
        GandaptError: another layer table.
    """
    specs = g.layers()
    if (tuple(s.name for s in specs) != config.layers
            or tuple(s.in_channels for s in specs) != config.layer_channels):
        raise GandaptError("the domain encoder was built for a generator with other layers or widths; "
                           "train a domain encoder for this model")


class DomainVector(nn.Module):
    """Δs [N, P] → the domain vector [N, D] of the ``s``-stage layout (s_scale = 1, s_shift = Δs).

    The ``s`` stage is kind-major: every ``s_scale`` (ones) then every ``s_shift`` in layer order, so
    the vector is a constant block of ones followed by Δs.
    """

    def __init__(self, layout: DomainLayout, config: DomainEncoderConfig):
        super().__init__()
        if layout.stages != STAGES:
            raise GandaptError(f"a DEGAN domain lives in layout stage 's', got stages {layout.stages}")
        starts = [layout.slice(f"s_shift.{name}").start for name in config.layers]
        ends = [layout.slice(f"s_shift.{name}").stop for name in config.layers]
        if starts[0] != layout.size - config.out_dim or any(a != b for a, b in zip(starts[1:], ends[:-1])) \
                or ends[-1] != layout.size:
            raise GandaptError("unexpected 's' stage layout (s_shift entries not contiguous at the end); "
                               "this gandapt's layout changed: report this")
        self.register_buffer("ones", torch.from_numpy(np.ascontiguousarray(layout.identity()[:starts[0]])))

    def forward(self, delta: torch.Tensor) -> torch.Tensor:
        """[N, P] → [N, D]."""
        return torch.cat([self.ones.expand(delta.shape[0], -1), delta], dim=1)
