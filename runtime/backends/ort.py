"""onnxruntime backend: one InferenceSession per graph, driven through IO binding. Imports no torch.

Hot path (per :meth:`OrtBackend.infer`): fed arrays are copied (and cast, for fp16 graphs) into
host buffers bound once per batch size, the bound inputs stay bound as :class:`onnxruntime.OrtValue`
on the session's device, outputs land in pre-bound host buffers, and the result is one float32 copy
of each output. Nothing is re-bound unless the batch size or the fed/bound choice of an input
changes. ``update`` copies into the bound OrtValue with ``OrtValue.update_inplace`` (the documented
way to change an input whose address must not change, e.g. under CUDA graphs), so switching domains
never touches the session.

Providers: TensorRT and CUDA execution providers first when onnxruntime-gpu offers them and an
NVIDIA driver is present (ORT lists them even without a GPU), then the CPU provider. The TensorRT EP
keeps its engines in ``~/.cache/gandapt/ort-tensorrt`` so only the first session builds them.
"""

from __future__ import annotations

import importlib.util
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from gandapt.errors import GandaptError, one_line
from gandapt.export.engine import has_cuda_driver
from gandapt.runtime.backends.base import Backend, Feed

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
MAX_SLOTS = 4  # batch sizes kept bound at once (least recently used dropped)


def default_providers() -> List[Any]:
    """Execution providers in preference order for this machine (TensorRT, CUDA, CPU)."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    out: List[Any] = []
    if has_cuda_driver():
        if "TensorrtExecutionProvider" in have and importlib.util.find_spec("tensorrt") is not None:
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gandapt" / "ort-tensorrt"
            out.append(("TensorrtExecutionProvider", {"trt_engine_cache_enable": True,
                                                      "trt_engine_cache_path": str(cache),
                                                      "trt_timing_cache_enable": True}))
        if "CUDAExecutionProvider" in have:
            out.append("CUDAExecutionProvider")
    out.append("CPUExecutionProvider")
    return out


def session_options(threads: Optional[int]) -> Any:
    """SessionOptions: all graph optimizations, ``threads`` intra-op threads (None: ORT's default)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = int(threads or 0)  # 0 = one per physical core
    opts.log_severity_level = 3  # fp16 graphs log the Casts the CPU EP inserts; not news to the user
    return opts


def _plugin_options(opts: Any) -> Any:
    """Add the CPU reference of ``gandapt::ModulatedConv2d`` (onnxruntime-extensions; needs torch).

    A plugin-form bundle is meant for TensorRT; on onnxruntime its nodes run through the PyTorch
    reference, which is correct but slow (for checking a bundle, not for live use).
    """
    try:
        from gandapt.plugins_trt.modulated_conv.ort_op import register
        from onnxruntime_extensions import get_library_path
    except ImportError:
        raise GandaptError("this bundle was exported with --modconv plugin (for TensorRT); onnxruntime runs it only "
                           "with pip install 'gandapt[kernels]' and torch; or re-export with --modconv decomposed")
    register()
    opts.register_custom_ops_library(get_library_path())
    return opts


class _Slot:
    """Everything bound for one batch size: an IOBinding, host buffers, tiled copies of bound rows."""

    def __init__(self, session: Any, batch: int):
        self.batch = batch
        self.binding = session.io_binding()
        self.fed: Dict[str, Tuple[np.ndarray, Any]] = {}     # name → (host buffer [B, ...], its OrtValue)
        self.tiled: Dict[str, Tuple[np.ndarray, Any]] = {}   # name → (host [B, ...], OrtValue): 1 bound row × B
        self.outputs: Dict[str, np.ndarray] = {}              # name → host buffer ORT writes into
        self.source: Dict[str, int] = {}                      # name → id() of the OrtValue bound now


class OrtBackend(Backend):
    """One bundle graph in an onnxruntime InferenceSession (see the module docstring).

    Args:
        bundle: an opened :class:`~gandapt.runtime.bundle.Bundle`.
        graph: ``'mapping'``, ``'synthesis'`` or ``'encoder'``.
        threads: intra-op threads (None: onnxruntime's default).
        providers: execution providers (None: :func:`default_providers`).

    Attributes:
        providers: the providers the session actually uses, best first.
        device: ``'cuda'`` or ``'cpu'``, where bound inputs live.
    """

    name = "onnxruntime"

    def __init__(self, bundle: Any, graph: str, threads: Optional[int] = None,
                 providers: Optional[Sequence[Any]] = None):
        import onnxruntime as ort

        super().__init__(graph, bundle.manifest.io_spec(graph))
        path = bundle.graph_file(graph)
        opts = session_options(threads)
        if graph == "synthesis" and bundle.manifest.modconv == "plugin":
            opts = _plugin_options(opts)
        try:
            self._session = ort.InferenceSession(str(path), opts,
                                                 providers=list(providers or default_providers()))
        except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
            raise GandaptError(f"onnxruntime cannot load {path}: {one_line(e, 300)}") from None
        self._ort = ort
        self.providers = self._session.get_providers()
        self.device = "cuda" if self.providers[0] in GPU_PROVIDERS else "cpu"
        self._bound: Dict[str, Tuple[np.ndarray, Any]] = {}  # name → (host staging [r, ...], OrtValue)
        self._slots: "OrderedDict[int, _Slot]" = OrderedDict()
        self._outputs = [(t.name, t.dtype, t.shape) for t in self.io.outputs]

    @property
    def instance_id(self) -> int:
        return id(self._session)

    # ---- bound inputs --------------------------------------------------------------------------
    def _bind(self, name: str, value: np.ndarray) -> None:
        # A private copy on the device; host staging keeps the value for tiling and updates.
        host = value.copy()
        self._bound[name] = (host, self._ort.OrtValue.ortvalue_from_numpy(host.copy(), self.device, 0))
        for slot in self._slots.values():  # new shape or value: tiled copies and bindings are stale
            slot.tiled.pop(name, None)
            slot.source.pop(name, None)

    def _update(self, name: str, value: np.ndarray) -> None:
        host, ov = self._bound[name]
        np.copyto(host, value, casting="same_kind")  # casts to the graph dtype, no allocation
        ov.update_inplace(host)
        for slot in self._slots.values():
            tiled = slot.tiled.get(name)
            if tiled is not None:
                np.copyto(tiled[0], host)  # broadcast the row over the batch
                tiled[1].update_inplace(tiled[0])

    def _bound_value(self, slot: _Slot, name: str) -> Any:
        """The OrtValue holding bound ``name`` at ``slot``'s batch (tiled when 1 row serves B)."""
        host, ov = self._bound[name]
        if host.shape[0] == slot.batch:
            return ov
        if name not in slot.tiled:
            rows = np.ascontiguousarray(np.broadcast_to(host, (slot.batch,) + host.shape[1:]))
            slot.tiled[name] = (rows, self._ort.OrtValue.ortvalue_from_numpy(rows.copy(), self.device, 0))
        return slot.tiled[name][1]

    # ---- inference -----------------------------------------------------------------------------
    def _slot(self, batch: int) -> _Slot:
        slot = self._slots.get(batch)
        if slot is None:
            slot = self._slots[batch] = _Slot(self._session, batch)
            for name, dtype, shape in self._outputs:
                dims = tuple(batch if d == "N" else d for d in shape)
                if all(isinstance(d, int) and d >= 0 for d in dims):
                    buf = np.empty(dims, dtype)  # ORT writes here (CPU memory; copied back from a GPU)
                    slot.outputs[name] = buf
                    slot.binding.bind_ortvalue_output(name, self._ort.OrtValue.ortvalue_from_numpy(buf))
                else:  # a symbolic non-batch dim: let ORT allocate per call
                    slot.binding.bind_output(name, "cpu")
            while len(self._slots) > MAX_SLOTS:
                self._slots.popitem(last=False)
        self._slots.move_to_end(batch)
        return slot

    def _infer(self, feed: Feed, batch: int) -> Dict[str, np.ndarray]:
        slot = self._slot(batch)
        for spec in self.io.inputs:
            name = spec.name
            if name in feed:
                if name not in slot.fed:
                    buf = np.empty(spec.concrete(batch), spec.dtype)
                    slot.fed[name] = (buf, self._ort.OrtValue.ortvalue_from_numpy(buf))  # CPU; aliases buf
                buf, ov = slot.fed[name]
                np.copyto(buf, feed[name], casting="same_kind")
            else:
                ov = self._bound_value(slot, name)
            if slot.source.get(name) != id(ov):
                slot.binding.bind_ortvalue_input(name, ov)
                slot.source[name] = id(ov)
        try:
            self._session.run_with_iobinding(slot.binding)
        except Exception as e:  # noqa: BLE001 - ORT's runtime errors have no common public base
            raise GandaptError(f"onnxruntime failed to run {self.graph} at batch {batch}: {one_line(e, 300)}") from None
        if len(slot.outputs) == len(self._outputs):
            return {name: slot.outputs[name].astype(np.float32) for name, _, _ in self._outputs}  # astype copies
        got = slot.binding.copy_outputs_to_cpu()
        return {name: np.asarray(v, dtype=np.float32) for (name, _, _), v in zip(self._outputs, got)}

    def _close(self) -> None:
        self._slots.clear()
        self._bound.clear()
        self._session = None
