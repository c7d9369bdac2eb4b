"""The domain layout: where every domain tensor sits in one flat vector ``domain[N, D]``.

A domain is a set of small tensors applied to a frozen generator (DESIGN.md §2, methods.md §11). The
synthesis graph takes them as one flat float32 vector per sample and slices it with the static offset
table computed here, so switching a domain is one copy. numpy only: the runtime imports this on an
edge box without torch.

Entries (identity value in brackets), for layers L in forward order:

- stage ``w``: ``w_scale`` [1], ``w_shift`` [0], each ``[num_ws, w_dim]``.
- stage ``s`` (every layer, ToRGB included): ``s_scale.{L}`` [1], ``s_shift.{L}`` [0], ``[C_in]``.
- stage ``in`` (convs): ``in_scale.{L}`` [1], ``[C_in]``.
- stage ``out`` (convs): ``out_scale.{L}`` [1], ``[C_out]``.
- stage ``rank1`` (convs): ``r1_out.{L}`` ``[C_out]``, ``r1_in.{L}`` ``[C_in]``, ``r1_k.{L}`` ``[k, k]``, all [0];
  the conv weight residual is ``r1_out ⊗ r1_in ⊗ r1_k`` (DynaGAN's scalar β folded into ``r1_out``).
- stage ``rgb`` (ToRGB): ``rgb_dW.{L}`` ``[img_channels, C_in]``, ``rgb_db.{L}`` ``[img_channels]``, both [0].

The flat order is: stages in :data:`STAGES` order; within a stage kind-major (every ``s_scale`` in layer
order, then every ``s_shift``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from gandapt.config import GeneratorConfig
from gandapt.errors import DomainError, GandaptError

LAYOUT_VERSION = 1
STAGES = ("w", "s", "in", "out", "rank1", "rgb")

# kind -> (stage, identity value), in the within-stage (kind-major) order.
KINDS: Dict[str, Tuple[str, float]] = {
    "w_scale": ("w", 1.0), "w_shift": ("w", 0.0),
    "s_scale": ("s", 1.0), "s_shift": ("s", 0.0),
    "in_scale": ("in", 1.0),
    "out_scale": ("out", 1.0),
    "r1_out": ("rank1", 0.0), "r1_in": ("rank1", 0.0), "r1_k": ("rank1", 0.0),
    "rgb_dW": ("rgb", 0.0), "rgb_db": ("rgb", 0.0),
}

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class Entry:
    """One named tensor of the layout.

    Attributes:
        name: ``kind`` or ``kind.layer`` (``w_scale``, ``s_shift.b8.conv0``).
        kind: tensor kind (a key of :data:`KINDS`).
        stage: stage the kind belongs to (one of :data:`STAGES`).
        layer: layer name (``b8.conv0``), None for the W-stage.
        shape: tensor shape.
        offset: start index in the flat vector.
        size: number of floats (``prod(shape)``).
        identity: the value every element takes when the domain leaves this tensor alone.
    """

    name: str
    kind: str
    stage: str
    layer: Optional[str]
    shape: Shape
    offset: int
    size: int
    identity: float


def stage_of(name: str) -> str:
    """Stage of an entry name from its kind prefix (no config needed).

    Raises:
        DomainError: the name does not start with a known kind.
    """
    kind, dot, layer = name.partition(".")
    per_layer = not kind.startswith("w_")  # only the W-stage kinds have no layer suffix
    if kind not in KINDS or bool(dot and layer) != per_layer or (dot and not layer):
        raise DomainError(
            f"unknown domain tensor name {name!r}; names are w_scale, w_shift, or a kind "
            f"({', '.join(k for k in KINDS if not k.startswith('w_'))}) followed by '.<layer>'"
        )
    return KINDS[kind][0]


def check_stages(stages: Union[str, Iterable[str]]) -> Tuple[str, ...]:
    """Validate stage names and return them deduplicated in canonical order.

    Args:
        stages: stage names, or one comma-separated string (``"w,s"``) as a CLI would pass.

    Raises:
        GandaptError: an unknown stage.
    """
    if isinstance(stages, str):
        stages = [s.strip() for s in stages.split(",") if s.strip()]
    stages = list(stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise GandaptError(f"unknown domain stage(s) {', '.join(map(repr, unknown))}; "
                           f"valid stages are {', '.join(STAGES)}")
    return tuple(s for s in STAGES if s in stages)


def _stage_specs(config: GeneratorConfig, stage: str) -> List[Tuple[str, Optional[str], Shape]]:
    """``(kind, layer, shape)`` of one stage in flat (kind-major, forward) order."""
    layers = config.layers()
    convs = [lay for lay in layers if not lay.is_torgb]
    rgbs = [lay for lay in layers if lay.is_torgb]
    if stage == "w":
        return [(k, None, (config.num_ws, config.w_dim)) for k in ("w_scale", "w_shift")]
    if stage == "s":
        return [(k, lay.name, (lay.in_channels,)) for k in ("s_scale", "s_shift") for lay in layers]
    if stage == "in":
        return [("in_scale", lay.name, (lay.in_channels,)) for lay in convs]
    if stage == "out":
        return [("out_scale", lay.name, (lay.out_channels,)) for lay in convs]
    if stage == "rank1":
        return ([("r1_out", lay.name, (lay.out_channels,)) for lay in convs]
                + [("r1_in", lay.name, (lay.in_channels,)) for lay in convs]
                + [("r1_k", lay.name, (lay.kernel_size, lay.kernel_size)) for lay in convs])
    # rgb
    return ([("rgb_dW", lay.name, (config.img_channels, lay.in_channels)) for lay in rgbs]
            + [("rgb_db", lay.name, (config.img_channels,)) for lay in rgbs])


def _shape_str(shape: Iterable[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


class DomainLayout:
    """Offsets of every domain tensor in the flat domain vector of one generator config.

    Args:
        config: the base generator's config.
        stages: stages the vector holds (any subset of :data:`STAGES`, or ``"w,s"``); stored in
            canonical order.

    Attributes:
        config: the generator config.
        stages: the stages, canonical order.
        entries: every :class:`Entry`, in flat order (offsets contiguous from 0).
        size: D, the vector length.
    """

    def __init__(self, config: GeneratorConfig, stages: Union[str, Iterable[str]] = STAGES):
        self.config = config
        self.stages = check_stages(stages)
        entries, offset = [], 0
        for stage in self.stages:
            for kind, layer, shape in _stage_specs(config, stage):
                size = int(np.prod(shape))
                name = kind if layer is None else f"{kind}.{layer}"
                entries.append(Entry(name, kind, stage, layer, shape, offset, size, KINDS[kind][1]))
                offset += size
        self.entries: Tuple[Entry, ...] = tuple(entries)
        self.size: int = offset
        self._by_name = {e.name: e for e in self.entries}
        ident = np.empty(self.size, np.float32)
        for e in self.entries:
            ident[e.offset:e.offset + e.size] = e.identity
        self._identity = ident

    # ---- basics -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"DomainLayout(stages={self.stages}, size={self.size})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, DomainLayout) and (self.config, self.stages) == (other.config, other.stages)

    def __hash__(self) -> int:
        return hash((self.config, self.stages))

    @property
    def names(self) -> Tuple[str, ...]:
        """Entry names in flat order."""
        return tuple(e.name for e in self.entries)

    @property
    def stage_sizes(self) -> Dict[str, int]:
        """Floats per stage of this layout, ``{stage: count}`` in canonical order.

        ``DomainLayout(cfg).stage_sizes`` gives every stage (the methods.md §11.3 table).
        """
        sizes = {s: 0 for s in self.stages}
        for e in self.entries:
            sizes[e.stage] += e.size
        return sizes

    def entry(self, name: str) -> Entry:
        """The :class:`Entry` called ``name``.

        Raises:
            DomainError: no such entry in this layout (unknown name, or its stage is not included).
        """
        e = self._by_name.get(name)
        if e is None:
            self._raise_missing(name)
        return e

    def slice(self, name: str) -> slice:
        """Python slice of entry ``name`` in the flat vector (``vec[layout.slice(n)]``: ``entry.size`` floats)."""
        e = self.entry(name)
        return slice(e.offset, e.offset + e.size)

    def identity(self, n: Optional[int] = None) -> np.ndarray:
        """The identity domain (the base generator unchanged).

        Args:
            n: optional batch size.

        Returns:
            float32 ``[D]``, or ``[n, D]`` when ``n`` is given (a fresh, writable array).
        """
        if n is None:
            return self._identity.copy()
        return np.tile(self._identity, (int(n), 1))

    def subset(self, stages: Union[str, Iterable[str]]) -> "DomainLayout":
        """A layout holding only ``stages`` (offsets recomputed).

        Raises:
            GandaptError: a stage is unknown or not part of this layout.
        """
        stages = check_stages(stages)
        extra = [s for s in stages if s not in self.stages]
        if extra:
            raise GandaptError(
                f"stage(s) {', '.join(extra)} are not in this layout (stages {', '.join(self.stages)}); "
                "pick a subset of those"
            )
        return DomainLayout(self.config, stages)

    # ---- vector <-> tensors -------------------------------------------------------------------
    def to_vector(self, tensors: Mapping[str, Any]) -> np.ndarray:
        """Pack named domain tensors into one flat vector; absent entries take their identity.

        Args:
            tensors: ``{entry name: array of entry.shape}``.

        Returns:
            float32 ``[D]``.

        Raises:
            DomainError: an unknown name, an entry whose stage this layout lacks, a wrong shape, or
                non-finite values.
        """
        vec = self._identity.copy()
        for name, value in tensors.items():
            e = self.entry(name)
            arr = np.asarray(value, dtype=np.float32)
            if arr.shape != e.shape:
                raise DomainError(
                    f"domain tensor {name!r} has shape {_shape_str(arr.shape)} but this generator needs "
                    f"{_shape_str(e.shape)}; use a domain made for this generator"
                )
            if not np.all(np.isfinite(arr)):
                raise DomainError(f"domain tensor {name!r} contains NaN or inf; retrain or re-export that domain")
            vec[e.offset:e.offset + e.size] = arr.reshape(-1)
        return vec

    def from_vector(self, vec: Any, only_changed: bool = True) -> Dict[str, np.ndarray]:
        """Split a flat vector into named tensors.

        Args:
            vec: ``[D]`` domain vector.
            only_changed: keep only entries that differ from identity (what a pack stores).

        Returns:
            ``{name: float32 array of entry.shape}`` in flat order (copies).

        Raises:
            DomainError: ``vec`` is not a ``[D]`` vector.
        """
        vec = self._check_vector(vec, batch=False)
        out = {}
        for e in self.entries:
            part = vec[e.offset:e.offset + e.size]
            if only_changed and np.all(part == e.identity):
                continue
            out[e.name] = part.reshape(e.shape).copy()
        return out

    def convert(self, vec: Any, other: "DomainLayout") -> np.ndarray:
        """Re-lay a vector (or batch) from this layout into ``other``.

        Entries ``other`` has and this layout lacks take their identity.

        Args:
            vec: ``[D]`` or ``[N, D]`` in this layout.
            other: the target layout (same generator config).

        Returns:
            float32 ``[D_other]`` or ``[N, D_other]``.

        Raises:
            DomainError: another config, a bad vector length, or a non-identity entry ``other`` cannot hold.
        """
        if other.config != self.config:
            raise DomainError("cannot convert a domain vector between layouts of different generators; "
                              "use a domain made for the target generator")
        vec = self._check_vector(vec, batch=True)
        single = vec.ndim == 1
        src = vec[None] if single else vec
        out = other.identity(src.shape[0])
        for e in self.entries:
            part = src[:, e.offset:e.offset + e.size]
            o = other._by_name.get(e.name)
            if o is not None:
                out[:, o.offset:o.offset + o.size] = part
            elif not np.all(part == e.identity):
                raise DomainError(
                    f"domain tensor {e.name!r} (stage {e.stage!r}) is not identity but the target layout has "
                    f"only stages {', '.join(other.stages) or '(none)'}; include stage {e.stage!r} in the target"
                )
        return out[0] if single else out

    def stages_used(self, tensors_or_names: Union[Mapping[str, Any], Iterable[str]]) -> Tuple[str, ...]:
        """Stages touched by a set of entry names (e.g. the union over a bundle's domains).

        Names are checked against this generator's full layout, whatever this layout's stages.

        Args:
            tensors_or_names: a ``{name: tensor}`` mapping (its keys are used) or names.

        Returns:
            Stage names in canonical order.

        Raises:
            DomainError: a name no layout of this generator has.
        """
        full = self if self.stages == STAGES else full_layout(self.config)
        used = set()
        for name in tensors_or_names:
            used.add(full.entry(name).stage)
        return tuple(s for s in STAGES if s in used)

    # ---- manifests ----------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Plain, JSON-ready description for manifests.

        Returns:
            ``{'version', 'stages', 'size', 'stage_sizes', 'entries': [{'name', 'offset', 'shape'}, ...]}``.
        """
        return {
            "version": LAYOUT_VERSION,
            "stages": list(self.stages),
            "size": self.size,
            "stage_sizes": self.stage_sizes,
            "entries": [{"name": e.name, "offset": e.offset, "shape": list(e.shape)} for e in self.entries],
        }

    @classmethod
    def from_dict(cls, config: GeneratorConfig, d: Mapping[str, Any]) -> "DomainLayout":
        """Rebuild a layout from a manifest's :meth:`to_dict` and check it matches ``config``.

        Raises:
            DomainError: another layout version, or the offsets/shapes differ from what ``config`` gives.
        """
        version = d.get("version")
        if version != LAYOUT_VERSION:
            raise DomainError(f"domain layout version {version} is not supported (this gandapt uses "
                              f"{LAYOUT_VERSION}); re-export with this gandapt")
        layout = cls(config, d.get("stages", ()))
        if layout.to_dict()["entries"] != [dict(e, shape=list(e["shape"])) for e in d.get("entries", [])]:
            raise DomainError("the recorded domain layout does not match this generator's config; "
                              "re-export the bundle from the same model")
        return layout

    def describe(self) -> str:
        """Human summary: floats per stage, total and fp32 size (for ``gandapt-inspect``)."""
        lines = [f"{s:<6} {n:>10,}" for s, n in self.stage_sizes.items()]
        lines.append(f"{'total':<6} {self.size:>10,}  ({self.size * 4 / 1024:.1f} KiB fp32)")
        return "\n".join(lines)

    # ---- helpers ------------------------------------------------------------------------------
    def _raise_missing(self, name: str) -> None:
        stage = stage_of(name)  # raises for an unknown kind
        if stage not in self.stages:
            raise DomainError(
                f"domain tensor {name!r} belongs to stage {stage!r}, which this layout does not include "
                f"(stages {', '.join(self.stages) or '(none)'}); use a layout that includes stage {stage!r}"
            )
        raise DomainError(f"this generator has no domain tensor {name!r}; "
                          "check the layer name against DomainLayout.names")

    def _check_vector(self, vec: Any, batch: bool) -> np.ndarray:
        vec = np.asarray(vec, dtype=np.float32)
        where = f"this generator's layout needs {self.size} (stages {', '.join(self.stages) or '(none)'})"
        if vec.ndim not in ((1, 2) if batch else (1,)):
            raise DomainError(f"domain vector has shape {_shape_str(vec.shape)} but expected "
                              f"{'[D] or [N, D]' if batch else '[D]'}; {where}")
        if vec.shape[-1] != self.size:
            raise DomainError(f"domain vector has length {vec.shape[-1]} but {where}; "
                              "use a vector made with the same layout")
        return vec


_FULL_CACHE: Dict[GeneratorConfig, DomainLayout] = {}


def full_layout(config: GeneratorConfig) -> DomainLayout:
    """The all-stages layout of ``config``, cached (configs are frozen and hashable); do not mutate it."""
    if config not in _FULL_CACHE:
        _FULL_CACHE[config] = DomainLayout(config)
    return _FULL_CACHE[config]
