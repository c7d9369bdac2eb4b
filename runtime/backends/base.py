"""The one interface every inference backend implements (DESIGN §6), and its shared input checks.

A backend runs one bundle graph (``mapping``, ``synthesis`` or ``encoder``). Inputs come two ways:

- **fed** per call: ``infer({"ws": ws})``; the batch is the leading dim of the fed inputs;
- **bound** once and held in a backend-owned buffer: ``bind("domain", vec)``, then changed with
  ``update("domain", other)``, which copies into that same buffer (no allocation, no session or engine
  rebuild, ``instance_id`` unchanged). A bound value with one row serves any batch: backends whose
  graph needs ``[N, ...]`` keep one pre-tiled buffer per batch size seen and refresh it on ``update``.

A value fed for a bound input overrides the bound buffer for that call only. Outputs are float32
numpy arrays owned by the caller (never views of backend buffers), so a frame handed to another
thread stays valid after the next ``infer``.

numpy only: this module is imported on torch-free edge boxes.
"""

from __future__ import annotations

import time
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from gandapt.errors import GandaptError

Feed = Mapping[str, np.ndarray]


class Backend:
    """Base class: shape checks, bound-input bookkeeping, timing, context management.

    Subclasses set :attr:`name` and implement :meth:`_infer`, :meth:`_bind`, :meth:`_update`,
    :meth:`_close` and :attr:`instance_id`.

    Attributes:
        name: ``'onnxruntime'``, ``'tensorrt'`` or ``'torch'``.
        graph: ``'mapping'``, ``'synthesis'`` or ``'encoder'``.
        io: the graph's :class:`~gandapt.export.manifest.GraphIO` (dtypes, shapes with ``"N"``).
        last_latency_ms: wall time of the last :meth:`infer` call, copies in and out included.
    """

    name = "backend"

    def __init__(self, graph: str, io) -> None:
        self.graph = graph
        self.io = io
        self.last_latency_ms = 0.0
        self._specs = {t.name: t for t in io.inputs}
        self._bound_shapes: Dict[str, Tuple[int, ...]] = {}  # name → shape of the bound value
        self._closed = False

    # ---- public API ----------------------------------------------------------------------------
    @property
    def instance_id(self) -> int:
        """``id()`` of the underlying session / engine / module: constant for the backend's life."""
        raise NotImplementedError

    @property
    def bound(self) -> Tuple[str, ...]:
        """Names of the bound inputs."""
        return tuple(self._bound_shapes)

    def infer(self, feed: Feed) -> Dict[str, np.ndarray]:
        """Run the graph.

        Args:
            feed: ``{input name: array}`` for every input not bound (float32, or anything numpy
                casts to the graph's dtype); the leading dim is the batch.

        Returns:
            ``{output name: float32 array}``, e.g. ``{"img": [N, 3, R, R]}``; fresh arrays each call.

        Raises:
            GandaptError: an unknown or missing input, a shape that does not fit the graph, a bound
                value whose rows fit neither 1 nor the batch, or a closed backend.
        """
        t0 = time.perf_counter()
        self._check_open()
        batch = self._check_feed(feed)
        out = self._infer(feed, batch)
        self.last_latency_ms = (time.perf_counter() - t0) * 1e3
        return out

    def bind(self, name: str, value: np.ndarray) -> None:
        """Hold ``value`` as input ``name`` in a backend-owned buffer; later feeds may omit it.

        Args:
            name: a graph input, e.g. ``"domain"`` or ``"truncation_psi"``.
            value: its value with 1 or N rows (``[1, D]``, ``[N, D]``); a value missing the batch
                axis (``[D]``, a scalar ψ) is taken as one row.

        Raises:
            GandaptError: an unknown input or a shape that does not fit the graph.
        """
        self._check_open()
        value = self._bindable(name, value)
        self._bind(name, value)
        self._bound_shapes[name] = value.shape

    def update(self, name: str, value: np.ndarray) -> None:
        """Copy ``value`` into the buffer bound as ``name``, in place (same shape as bound).

        Raises:
            GandaptError: ``name`` not bound, or a shape other than the bound one.
        """
        self._check_open()
        if name not in self._bound_shapes:
            raise GandaptError(f"{self.name} {self.graph}: {name!r} is not bound; call bind({name!r}, value) first "
                               f"(bound: {', '.join(self._bound_shapes) or 'none'})")
        value = np.asarray(value)
        want = self._bound_shapes[name]
        if value.shape != want and not (want[0] == 1 and value.shape == want[1:]):  # [D] for a bound [1, D]
            raise GandaptError(f"{self.name} {self.graph}: update({name!r}) got shape {list(value.shape)} but "
                               f"{list(want)} is bound; give the same shape or bind() anew")
        self._update(name, value.reshape(want))  # reshape of a contiguous array is a view

    def close(self) -> None:
        """Release the session / engine / buffers; idempotent."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.graph} bound={list(self._bound_shapes)}>"

    # ---- for subclasses ------------------------------------------------------------------------
    def _infer(self, feed: Feed, batch: int) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def _bind(self, name: str, value: np.ndarray) -> None:
        raise NotImplementedError

    def _update(self, name: str, value: np.ndarray) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # ---- checks --------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise GandaptError(f"the {self.name} {self.graph} backend is closed; open a new one")

    def _spec(self, name: str):
        spec = self._specs.get(name)
        if spec is None:
            raise GandaptError(f"the {self.graph} graph has no input {name!r}; its inputs are "
                               f"{', '.join(self._specs)}")
        return spec

    def _bindable(self, name: str, value: np.ndarray) -> np.ndarray:
        """``value`` as a contiguous array of the input's dtype with a leading batch axis."""
        spec = self._spec(name)
        value = np.asarray(value)
        if value.ndim == len(spec.shape) - 1:
            value = value[None]  # [D] → [1, D]; a scalar ψ → [1]
        rows = value.shape[0] if value.ndim else 0
        fixed = spec.shape[1:] if spec.shape else ()
        ok = value.ndim == len(spec.shape) and rows >= 1 and all(d == int(f) for d, f in zip(value.shape[1:], fixed))
        if ok and not spec.dynamic_batch and rows not in (1, int(spec.shape[0])):
            ok = False
        if not ok:
            raise GandaptError(f"bind({name!r}) got shape {list(value.shape)} but the {self.graph} graph takes "
                               f"{_shape_text(spec)} (1 row for the whole batch, or one per sample)")
        return np.ascontiguousarray(value, dtype=spec.dtype)

    def _check_feed(self, feed: Feed) -> int:
        """Check names and shapes of ``feed`` against the graph; returns the batch."""
        batch: Optional[int] = None
        for name, value in feed.items():
            spec = self._spec(name)
            shape = np.shape(value)
            if len(shape) != len(spec.shape) or not shape:
                raise GandaptError(f"input {name!r} has shape {list(shape)} but the {self.graph} graph takes "
                                   f"{_shape_text(spec)}")
            if batch is None:
                batch = shape[0]
            if shape != spec.concrete(batch) or shape[0] != batch:
                raise GandaptError(f"input {name!r} has shape {list(shape)} but the {self.graph} graph takes "
                                   f"{_shape_text(spec)} with one batch size N for every fed input")
        missing = [n for n in self._specs if n not in feed and n not in self._bound_shapes]
        if missing:
            raise GandaptError(f"{self.graph}: no value for input {', '.join(map(repr, missing))}; "
                               "feed it to infer() or bind() it")
        if batch is None:  # everything bound: the widest bound value sets the batch
            batch = max(self._bound_shapes[n][0] for n in self._specs)
        for name, shape in self._bound_shapes.items():
            if name not in feed and shape[0] not in (1, batch):
                raise GandaptError(f"bound {name!r} has {shape[0]} rows but this call's batch is {batch}; "
                                   "bind one row (shared) or one per sample")
        if self.io.batch is not None and batch != self.io.batch:
            raise GandaptError(f"the {self.graph} graph was exported for batch {self.io.batch}, not {batch}; "
                               "re-export with a dynamic batch")
        return batch


def _shape_text(spec) -> str:
    return "[" + ", ".join(str(d) for d in spec.shape) + "]"
