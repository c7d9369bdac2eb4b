"""Network configs from state-dict shapes, and the exact key/shape table a config implies.

Widths, depths and resolutions are read from tensor shapes, never assumed (the golden rosinality net
has reduced widths, NVlabs nets follow ``channel_base``/``channel_max``). Only what shapes cannot say —
conv clamp, minibatch-std group, mapping lr multiplier, variant — comes from the caller.

Key names are those of gandapt's networks, i.e. NVlabs stylegan2-ada-pytorch's ``state_dict()`` keys
without the ``resample_filter`` buffers. Provenance: the names and shapes are facts about that
project's checkpoint format (NVIDIA Source Code License), written down from
/work/shared/golden/README.md; no code of it is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Tuple

import torch

from gandapt.checkpoint.common import fail, fmt_shape
from gandapt.config import DiscriminatorConfig, GeneratorConfig
from gandapt.errors import GandaptError

Shape = Tuple[int, ...]
ShapeTable = Dict[str, Shape]


class Origin(NamedTuple):
    """Where a converted tensor came from: its key and shape in the file, and the layout mapping."""

    key: str
    file_shape: Shape
    to_file: Callable[[Shape], Shape]


@dataclass
class Source:
    """Where a state dict came from, so errors name the file's own keys and shapes.

    Attributes:
        path: the checkpoint file.
        section: the entry holding the state dict (``G_ema``, ``g_ema``, ``D``...).
        origin: for converted state dicts, gandapt key → :class:`Origin` of each tensor read; None when
            the file already uses gandapt keys and layouts.
        invert: for converted state dicts, gandapt key → (the file's key, gandapt shape → file shape),
            or None; names the tensors a file lacks.
        basis: what the expected shapes come from, as said in messages.
    """

    path: Path
    section: str
    origin: Optional[Dict[str, Origin]] = None
    basis: str = "the architecture read from the other tensors"
    invert: Optional[Callable[[str], Optional[Tuple[str, Callable[[Shape], Shape]]]]] = None

    def _origin(self, key: str) -> Optional[Origin]:
        if self.origin and key in self.origin:
            return self.origin[key]
        found = self.invert(key) if self.invert else None
        return Origin(found[0], (), found[1]) if found else None

    def key(self, key: str) -> str:
        """The file's name for gandapt ``key``, e.g. ``g_ema['conv1.conv.weight']``."""
        o = self._origin(key)
        return f"{self.section}['{o.key if o else key}']"

    def shape(self, key: str, shape: Shape) -> Shape:
        """A gandapt-layout ``shape`` of ``key`` expressed in the file's layout."""
        o = self._origin(key)
        return tuple(o.to_file(tuple(shape))) if o else tuple(shape)

    def file_shape(self, key: str, tensor: torch.Tensor) -> Shape:
        """The shape ``key``'s tensor has in the file."""
        o = self.origin.get(key) if self.origin else None
        return tuple(o.file_shape) if o else tuple(tensor.shape)


# ---- expected tables ---------------------------------------------------------------------------
def generator_shapes(config: GeneratorConfig) -> ShapeTable:
    """Every state-dict key of a gandapt :class:`~gandapt.generator.Generator` and its shape."""
    out: ShapeTable = {"synthesis.b4.const": (config.channels[0], 4, 4)}
    for spec in config.layers():
        p = f"synthesis.{spec.name}."
        k = spec.kernel_size
        out[p + "weight"] = (spec.out_channels, spec.in_channels, k, k)
        out[p + "bias"] = (spec.out_channels,)
        if not spec.is_torgb:
            out[p + "noise_strength"] = ()
            out[p + "noise_const"] = (spec.resolution, spec.resolution)
        out[p + "affine.weight"] = (spec.in_channels, config.w_dim)
        out[p + "affine.bias"] = (spec.in_channels,)
    for i in range(config.mapping_layers):
        out[f"mapping.fc{i}.weight"] = (config.w_dim, config.z_dim if i == 0 else config.w_dim)
        out[f"mapping.fc{i}.bias"] = (config.w_dim,)
    out["mapping.w_avg"] = (config.w_dim,)
    return out


def discriminator_shapes(config: DiscriminatorConfig) -> ShapeTable:
    """Every state-dict key of a gandapt :class:`~gandapt.discriminator.Discriminator` and its shape."""
    ch = config.channel_dict
    out: ShapeTable = {}
    for res in reversed(config.resolutions[1:]):
        tmp, nxt = ch[res], ch[res // 2]
        if res == config.img_resolution:
            out[f"b{res}.fromrgb.weight"] = (tmp, config.img_channels, 1, 1)
            out[f"b{res}.fromrgb.bias"] = (tmp,)
        out[f"b{res}.conv0.weight"] = (tmp, tmp, 3, 3)
        out[f"b{res}.conv0.bias"] = (tmp,)
        out[f"b{res}.conv1.weight"] = (nxt, tmp, 3, 3)
        out[f"b{res}.conv1.bias"] = (nxt,)
        out[f"b{res}.skip.weight"] = (nxt, tmp, 1, 1)
    c4 = ch[4]
    out["b4.conv.weight"] = (c4, c4 + 1, 3, 3)  # +1: the minibatch-std channel
    out["b4.conv.bias"] = (c4,)
    out["b4.fc.weight"] = (c4, c4 * 16)
    out["b4.fc.bias"] = (c4,)
    out["b4.out.weight"] = (1, c4)
    out["b4.out.bias"] = (1,)
    return out


# ---- checking ----------------------------------------------------------------------------------
def check_state(state: Mapping[str, torch.Tensor], expected: ShapeTable, src: Source) -> None:
    """Require ``state`` to have exactly the keys and shapes of ``expected``.

    Raises:
        CheckpointError: one line naming the first missing, misshapen, unexpected or non-float tensor.
    """
    for key, shape in expected.items():
        if key not in state:
            raise fail(
                f"checkpoint {src.path}: tensor {src.key(key)} is missing, but {src.basis} "
                f"needs it (shape {fmt_shape(src.shape(key, shape))}); "
                "the file is incomplete or not a StyleGAN2 checkpoint"
            )
        got = tuple(state[key].shape)
        if got != tuple(shape):
            raise shape_error(src, key, state[key], shape)
        if not state[key].is_floating_point():
            raise fail(
                f"checkpoint {src.path}: tensor {src.key(key)} has dtype {state[key].dtype}, "
                "but network weights must be floating point; the file is corrupt"
            )
    for key, value in state.items():
        if key not in expected:
            raise fail(
                f"checkpoint {src.path}: unexpected tensor {src.key(key)} (shape "
                f"{fmt_shape(src.file_shape(key, value))}), "
                f"which {src.basis} does not have; "
                "the network uses options gandapt does not support"
            )


def shape_error(src: Source, key: str, tensor: torch.Tensor, needed: Shape):
    """The one-line error for a tensor whose shape disagrees with the rest of the file."""
    return fail(
        f"checkpoint {src.path}: tensor {src.key(key)} has shape {fmt_shape(src.file_shape(key, tensor))} "
        f"but {src.basis} needs {fmt_shape(src.shape(key, needed))}"
    )


# ---- inference ---------------------------------------------------------------------------------
def _get(state: Mapping[str, torch.Tensor], key: str, ndim: int, src: Source, what: str) -> Shape:
    if key not in state:
        raise fail(
            f"checkpoint {src.path}: tensor {src.key(key)} is missing; the file is not a complete "
            f"StyleGAN2 {what}"
        )
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise fail(
            f"checkpoint {src.path}: tensor {src.key(key)} has shape "
            f"{fmt_shape(src.file_shape(key, state[key]))}, which does not fit a StyleGAN2 {what} "
            f"(it needs {len(src.shape(key, (1,) * ndim))} dimensions)"
        )
    return shape


def _resolution(keys, pattern: str, src: Source, what: str) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(pattern, k))}
    if not found:
        raise fail(f"checkpoint {src.path}: {src.section} has no resolution blocks; it is not a StyleGAN2 {what}")
    res = max(found)
    if res < 8 or res & (res - 1):
        raise fail(f"checkpoint {src.path}: {src.section} has blocks up to {res} px, which is not a power of two >= 8")
    return res


def _config(cls, src: Source, **kwargs):
    try:
        return cls(**kwargs)
    except GandaptError as e:
        raise fail(f"checkpoint {src.path}: {src.section} describes an invalid network ({e})") from None


def infer_generator_config(
    state: Mapping[str, torch.Tensor],
    src: Source,
    *,
    variant: str,
    conv_clamp: Optional[float],
    mapping_lr_mul: float = 0.01,
) -> GeneratorConfig:
    """Read a :class:`GeneratorConfig` from a gandapt-keyed generator state dict, then check it.

    Args:
        state: generator state dict (gandapt keys).
        src: where it came from (for messages).
        variant: ``'nvlabs'`` or ``'rosinality'``.
        conv_clamp: NVlabs' activation clamp (None: none).
        mapping_lr_mul: mapping equalized-lr multiplier (shapes cannot tell; 0.01 in both references).

    Raises:
        CheckpointError: tensors missing, or shapes inconsistent with each other.
    """
    what = "generator"
    n_map = 0
    while f"mapping.fc{n_map}.weight" in state:
        n_map += 1
    z_dim = _get(state, "mapping.fc0.weight", 2, src, what)[1]
    w_dim = _get(state, f"mapping.fc{max(n_map - 1, 0)}.weight", 2, src, what)[0]
    res = _resolution(state, r"synthesis\.b(\d+)\.", src, what)
    channels = [_get(state, "synthesis.b4.const", 3, src, what)[0]]
    r = 8
    while r <= res:
        channels.append(_get(state, f"synthesis.b{r}.conv1.weight", 4, src, what)[0])
        r *= 2
    img_channels = _get(state, "synthesis.b4.torgb.weight", 4, src, what)[0]
    config = _config(
        GeneratorConfig, src, z_dim=z_dim, w_dim=w_dim, img_resolution=res, channels=tuple(channels),
        mapping_layers=n_map, mapping_lr_mul=float(mapping_lr_mul), img_channels=img_channels,
        conv_clamp=None if conv_clamp is None else float(conv_clamp), variant=variant,
    )
    check_state(state, generator_shapes(config), src)
    return config


def infer_discriminator_config(
    state: Mapping[str, torch.Tensor],
    src: Source,
    *,
    mbstd_group_size: int = 4,
    conv_clamp: Optional[float] = None,
) -> DiscriminatorConfig:
    """Read a :class:`DiscriminatorConfig` from a gandapt-keyed discriminator state dict, then check it.

    Raises:
        CheckpointError: tensors missing, or shapes inconsistent with each other.
    """
    what = "discriminator"
    res = _resolution(state, r"b(\d+)\.", src, what)
    img_channels = _get(state, f"b{res}.fromrgb.weight", 4, src, what)[1]
    channels = [_get(state, "b4.conv.weight", 4, src, what)[0]]
    r = 8
    while r <= res:
        channels.append(_get(state, f"b{r}.conv0.weight", 4, src, what)[0])
        r *= 2
    config = _config(
        DiscriminatorConfig, src, img_resolution=res, channels=tuple(channels), img_channels=img_channels,
        mbstd_group_size=int(mbstd_group_size), conv_clamp=None if conv_clamp is None else float(conv_clamp),
    )
    check_state(state, discriminator_shapes(config), src)
    return config
