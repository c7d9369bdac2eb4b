"""Network configurations (pure Python: no torch, no numpy).

A :class:`GeneratorConfig` fully describes a StyleGAN2 generator's architecture; together with a state
dict it is a network. Everything that needs the layer table without torch (the domain layout, the
runtime, ``gandapt-inspect`` on a pack) derives it from here through :meth:`GeneratorConfig.layers`.

Vocabulary follows NVlabs: ``z_dim``, ``w_dim``, ``num_ws``, ``img_resolution``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from gandapt.errors import GandaptError

VARIANTS = ("nvlabs", "rosinality")


def _check_resolution(res: int) -> int:
    if res < 4 or res & (res - 1):
        raise GandaptError(f"img_resolution must be a power of two >= 4, got {res}")
    return int(math.log2(res))


def channel_table(img_resolution: int, channel_base: int, channel_max: int) -> Tuple[int, ...]:
    """NVlabs channel rule ``min(channel_base // res, channel_max)`` for res = 4 .. img_resolution.

    Returns:
        Channels per resolution, ordered 4, 8, ..., img_resolution.
    """
    log2 = _check_resolution(img_resolution)
    return tuple(min(channel_base // (2**i), channel_max) for i in range(2, log2 + 1))


class _ChannelTable:
    """What both network configs derive from ``img_resolution`` and ``channels``."""

    img_resolution: int
    channels: Tuple[int, ...]

    def _check_channels(self) -> None:
        log2 = _check_resolution(self.img_resolution)
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) != log2 - 1:
            raise GandaptError(
                f"channels must list one width per resolution 4..{self.img_resolution} "
                f"({log2 - 1} values), got {len(self.channels)}"
            )

    @property
    def resolutions(self) -> Tuple[int, ...]:
        """Block resolutions 4, 8, ..., img_resolution."""
        return tuple(4 * 2**i for i in range(len(self.channels)))

    @property
    def channel_dict(self) -> dict:
        """``{resolution: channels}``."""
        return dict(zip(self.resolutions, self.channels))

    def to_dict(self) -> dict:
        """Plain dict (JSON- and ``weights_only``-safe)."""
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d


@dataclass(frozen=True)
class LayerSpec:
    """One modulated layer of the synthesis network, in forward order.

    Attributes:
        name: NVlabs-style name relative to ``synthesis`` (``b4.conv1``, ``b8.conv0``, ``b8.torgb``).
        resolution: output resolution of the layer.
        in_channels: C_in (length of the style vector).
        out_channels: C_out (3 for ToRGB).
        kernel_size: 3 for convs, 1 for ToRGB.
        up: True for the first conv of each block >= 8 px.
        is_torgb: True for ToRGB layers (no demodulation).
        w_index: which row of ``ws`` feeds the layer's affine.
    """

    name: str
    resolution: int
    in_channels: int
    out_channels: int
    kernel_size: int
    up: bool
    is_torgb: bool
    w_index: int


@dataclass(frozen=True)
class GeneratorConfig(_ChannelTable):
    """Architecture of a StyleGAN2 generator.

    Attributes:
        z_dim: latent z size.
        w_dim: intermediate latent size (also the affine input size).
        img_resolution: output resolution (power of two).
        channels: channels per resolution 4, 8, ..., img_resolution.
        mapping_layers: depth of the mapping MLP.
        mapping_lr_mul: equalized-lr multiplier of the mapping layers (0.01 in both references).
        img_channels: output image channels.
        conv_clamp: NVlabs' activation clamp (None for rosinality or no clamp).
        variant: 'nvlabs' or 'rosinality'. They compute the same function; the variant only fixes where
            the equalized-lr weight gain sits (which moves the 1e-8 demodulation eps) so each reference
            is reproduced to rounding.
    """

    z_dim: int
    w_dim: int
    img_resolution: int
    channels: Tuple[int, ...]
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01
    img_channels: int = 3
    conv_clamp: Optional[float] = None
    variant: str = "nvlabs"

    def __post_init__(self) -> None:
        self._check_channels()
        if self.variant not in VARIANTS:
            raise GandaptError(f"unknown variant {self.variant!r}; use one of {', '.join(VARIANTS)}")
        if min(self.z_dim, self.w_dim, self.mapping_layers, min(self.channels)) < 1:
            raise GandaptError("z_dim, w_dim, mapping_layers and every channel width must be >= 1")

    # ---- derived ------------------------------------------------------------------------------
    @property
    def num_ws(self) -> int:
        """Rows of W+ (``2·log2(res) − 2``; 18 at 1024 px)."""
        return 2 * int(math.log2(self.img_resolution)) - 2

    def layers(self) -> Tuple[LayerSpec, ...]:
        """Every modulated layer (convs and ToRGB) in forward order, with its W+ row."""
        ch = self.channel_dict
        out = [
            LayerSpec("b4.conv1", 4, ch[4], ch[4], 3, False, False, 0),
            LayerSpec("b4.torgb", 4, ch[4], self.img_channels, 1, False, True, 1),
        ]
        for k, res in enumerate(self.resolutions[1:]):
            cin, cout = ch[res // 2], ch[res]
            out += [
                LayerSpec(f"b{res}.conv0", res, cin, cout, 3, True, False, 2 * k + 1),
                LayerSpec(f"b{res}.conv1", res, cout, cout, 3, False, False, 2 * k + 2),
                LayerSpec(f"b{res}.torgb", res, cout, self.img_channels, 1, False, True, 2 * k + 3),
            ]
        return tuple(out)

    @property
    def stylespace_dim(self) -> int:
        """Length of StyleSpace: every modulation output, ToRGB included (9088 at FFHQ-1024)."""
        return sum(layer.in_channels for layer in self.layers())

    @property
    def conv_in_dim(self) -> int:
        """Sum of conv input channels, ToRGB excluded (6048 at FFHQ-1024)."""
        return sum(layer.in_channels for layer in self.layers() if not layer.is_torgb)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GeneratorConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a newer format, or a typo)."""
        return _from_dict(cls, d)


@dataclass(frozen=True)
class DiscriminatorConfig(_ChannelTable):
    """Architecture of a StyleGAN2 residual discriminator (unconditional).

    Attributes:
        img_resolution: input resolution.
        channels: channels per resolution 4, 8, ..., img_resolution (block ``b{res}`` works at
            ``channels[res]`` and outputs ``channels[res // 2]``).
        img_channels: input image channels.
        mbstd_group_size: minibatch-std group size (4 in both references).
        conv_clamp: NVlabs' activation clamp (None for rosinality).
        downsample: 'blur' ([1,3,3,1] blur then stride-2 conv, both references) or 'avgpool'
            (2×2 average pool then a stride-1 conv: gandapt's faster CPU choice for its own models,
            see reference/cpu-training.md).
    """

    img_resolution: int
    channels: Tuple[int, ...]
    img_channels: int = 3
    mbstd_group_size: int = 4
    conv_clamp: Optional[float] = None
    downsample: str = "blur"

    def __post_init__(self) -> None:
        self._check_channels()
        if self.downsample not in ("blur", "avgpool"):
            raise GandaptError(f"unknown downsample {self.downsample!r}; use 'blur' or 'avgpool'")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DiscriminatorConfig":
        return _from_dict(cls, d)


def _from_dict(cls, d: Mapping[str, Any]):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise GandaptError(
            f"{cls.__name__}: unknown field(s) {sorted(unknown)}; the file may come from a newer gandapt"
        )
    kwargs = dict(d)
    if "channels" in kwargs:
        kwargs["channels"] = tuple(kwargs["channels"])
    try:
        return cls(**kwargs)
    except TypeError as e:  # missing required fields
        raise GandaptError(f"{cls.__name__}: {e}") from None


def ffhq1024_config(variant: str = "nvlabs") -> GeneratorConfig:
    """The FFHQ-1024 config-f generator (512 channels up to 64 px, then 256/128/64/32)."""
    return GeneratorConfig(
        z_dim=512, w_dim=512, img_resolution=1024,
        channels=channel_table(1024, 32768, 512), mapping_layers=8,
        conv_clamp=256 if variant == "nvlabs" else None, variant=variant,
    )
