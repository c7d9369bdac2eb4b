"""What the ``gandapt::ModulatedConv2d`` node is: name, version, input order, attributes, limits (no torch).

The exporter, the onnxruntime-extensions CPU reference, the Triton launcher and the TensorRT
registration all read this module, so the node's contract is written down once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Tuple

from gandapt.errors import GandaptError

NAMESPACE = "gandapt"
NAME = "ModulatedConv2d"
PLUGIN_ID = f"{NAMESPACE}::{NAME}"
VERSION = "1"
CHANGELOG = (("1", "first version: 3×3 modulated conv, demodulation with the rank-1 term, fused 2× up + "
                   "[1,3,3,1] blur, noise, bias, lrelu·gain, clamp, in/out scales; fp32 and fp16"),)

# Input order of the node (and of the kernel's pointer arguments). "rows" = the leading dim may be
# N (per sample) or 1 (shared by the batch).
INPUTS: Tuple[Tuple[str, str], ...] = (
    ("x", "[N, I, H, W] activations"),
    ("weight", "[O, I, 3, 3] constant kernel, equalized-lr gain folded in"),
    ("styles", "[N, I] styles s (after the S-stage domain terms)"),
    ("in_scale", "[N|1, I] post-demodulation input scale g (ones when unused)"),
    ("out_scale", "[N|1, O] post-demodulation output scale h (ones when unused)"),
    ("r1_out", "[N|1, O] rank-1 u, β folded in (zeros when unused)"),
    ("r1_in", "[N|1, I] rank-1 v (zeros when unused)"),
    ("r1_k", "[N|1, 3, 3] rank-1 κ (zeros when unused)"),
    ("noise", "[N|1, 1, HO, WO] noise already multiplied by its strength (zeros for none)"),
    ("bias", "[O] bias"),
)
INPUT_NAMES = tuple(name for name, _ in INPUTS)
OUTPUT = ("y", "[N, O, HO, WO], HO = 2H and WO = 2W when up, else H and W")
ACTIVATIONS = ("lrelu", "linear")
DTYPES = ("float32", "float16")
KERNEL_SIZE = 3
MAX_ELEMENTS = 2**31 - 1  # the kernel indexes with int32


@dataclass(frozen=True)
class Attributes:
    """The node's attributes (all constant within one graph; baked into the ahead-of-time kernel).

    Attributes:
        up: 1 = 2× up-sampling (stride-2 transposed conv + [1,3,3,1] blur, gain 4), 0 = none.
        demodulate: 1 = normalise each output channel's kernel (synthesis convs), 0 = none.
        rank1: 1 = apply the rank-1 residual inputs (``r1_*``), 0 = ignore them (cheaper kernel).
        activation: 'lrelu' (slope 0.2) or 'linear'.
        gain: output gain after the activation (√2 for lrelu layers).
        clamp: clamp the output to [−clamp, clamp] when ≥ 0; negative = no clamp.
    """

    up: int = 0
    demodulate: int = 1
    rank1: int = 0
    activation: str = "lrelu"
    gain: float = math.sqrt(2.0)
    clamp: float = -1.0

    def __post_init__(self) -> None:
        for flag in ("up", "demodulate", "rank1"):
            if getattr(self, flag) not in (0, 1) or isinstance(getattr(self, flag), float):
                raise GandaptError(f"{PLUGIN_ID} attribute {flag} must be 0 or 1, got {getattr(self, flag)!r}")
        if self.activation not in ACTIVATIONS:
            raise GandaptError(f"{PLUGIN_ID} attribute activation must be one of {', '.join(ACTIVATIONS)}, "
                               f"got {self.activation!r}")
        for name in ("gain", "clamp"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise GandaptError(f"{PLUGIN_ID} attribute {name} must be a finite number, got {value!r}")
        object.__setattr__(self, "gain", float(self.gain))
        object.__setattr__(self, "clamp", float(self.clamp))

    @classmethod
    def from_mapping(cls, attrs: Mapping[str, Any]) -> "Attributes":
        """Read the node's attributes (ONNX / TensorRT field dicts; unknown keys are refused).

        ``plugin_namespace``, ``plugin_version`` and ``aot`` are the TensorRT ONNX parser's own fields:
        the version must be :data:`VERSION`, the namespace :data:`NAMESPACE`.
        """
        known = {f for f in cls.__dataclass_fields__}
        rest = {}
        for key, value in attrs.items():
            if isinstance(value, bytes):
                value = value.decode()
            if key == "plugin_version":
                check_version(value)
            elif key == "plugin_namespace":
                if value != NAMESPACE:
                    raise GandaptError(f"{NAME} node has plugin_namespace {value!r}; gandapt's plugin is in {NAMESPACE!r}")
            elif key == "aot":
                continue
            elif key in known:
                rest[key] = value
            else:
                raise GandaptError(f"{PLUGIN_ID} has no attribute {key!r}; known: {', '.join(sorted(known))}")
        return cls(**rest)

    def onnx(self, aot: bool = False) -> dict:
        """The attributes of the ONNX node, including the TensorRT parser's plugin fields."""
        out = {"up": self.up, "demodulate": self.demodulate, "rank1": self.rank1, "activation": self.activation,
               "gain": self.gain, "clamp": self.clamp, "plugin_namespace": NAMESPACE, "plugin_version": VERSION}
        if aot:
            out["aot"] = 1  # the TensorRT ONNX parser then uses the ahead-of-time implementation
        return out


def check_version(version: Any) -> str:
    """Refuse a plugin version other than this library's.

    Raises:
        GandaptError: the graph or engine was made for another version of the plugin.
    """
    version = version.decode() if isinstance(version, bytes) else str(version)
    if version != VERSION:
        raise GandaptError(f"the graph asks for {PLUGIN_ID} version {version!r} but this gandapt provides version "
                           f"{VERSION!r}; re-export the bundle (and rebuild its engine) with this gandapt")
    return version


def output_shape(x_shape: Sequence[int], weight_shape: Sequence[int], up: int) -> Tuple[int, int, int, int]:
    """[N, O, HO, WO] of the node's output."""
    n, _, h, w = x_shape
    f = 2 if up else 1
    return (n, weight_shape[0], h * f, w * f)


def check_shapes(shapes: Mapping[str, Sequence[int]], attrs: Attributes) -> Tuple[int, int, int, int]:
    """Check the input shapes against each other and the kernel's supported range.

    Args:
        shapes: input name → shape, for every name of :data:`INPUT_NAMES`.
        attrs: the node's attributes.

    Returns:
        The output shape [N, O, HO, WO].

    Raises:
        GandaptError: one line naming the first input out of range.
    """
    missing = [k for k in INPUT_NAMES if k not in shapes]
    if missing:
        raise GandaptError(f"{PLUGIN_ID} needs {len(INPUT_NAMES)} inputs ({', '.join(INPUT_NAMES)}); missing {', '.join(missing)}")
    x = tuple(int(d) for d in shapes["x"])
    wt = tuple(int(d) for d in shapes["weight"])
    if len(x) != 4 or min(x) < 1:
        raise GandaptError(f"{PLUGIN_ID} input x must be [N, I, H, W] with every dim >= 1, got {list(x)}")
    n, i, h, w = x
    if len(wt) != 4 or wt[1] != i or wt[2:] != (KERNEL_SIZE, KERNEL_SIZE) or wt[0] < 1:
        raise GandaptError(f"{PLUGIN_ID} input weight must be [O, {i}, 3, 3] (3x3 kernels only), got {list(wt)}")
    o = wt[0]
    out = output_shape(x, wt, attrs.up)
    want = {"styles": [(n, i)], "in_scale": [(n, i), (1, i)], "out_scale": [(n, o), (1, o)],
            "r1_out": [(n, o), (1, o)], "r1_in": [(n, i), (1, i)], "r1_k": [(n, 3, 3), (1, 3, 3)],
            "noise": [(n, 1) + out[2:], (1, 1) + out[2:]], "bias": [(o,)]}
    for name, allowed in want.items():
        got = tuple(int(d) for d in shapes[name])
        if got not in allowed:
            raise GandaptError(f"{PLUGIN_ID} input {name} has shape {list(got)}; expected "
                               + " or ".join(str(list(a)) for a in dict.fromkeys(allowed)))
    biggest = n * max(i, o) * out[2] * out[3]
    if biggest > MAX_ELEMENTS:
        raise GandaptError(f"{PLUGIN_ID}: {biggest} elements per tensor exceed the kernel's int32 indexing "
                           f"({MAX_ELEMENTS}); use a smaller batch")
    return out


def check_dtypes(dtypes: Mapping[str, str]) -> str:
    """All inputs share one dtype, float32 or float16 (numpy names); returns it.

    Raises:
        GandaptError: mixed or unsupported dtypes.
    """
    kinds = set(dtypes.values())
    if len(kinds) != 1 or next(iter(kinds)) not in DTYPES:
        detail = ", ".join(f"{k} {v}" for k, v in dtypes.items())
        raise GandaptError(f"{PLUGIN_ID} takes all inputs in one dtype, float32 or float16; got {detail}")
    return next(iter(kinds))
