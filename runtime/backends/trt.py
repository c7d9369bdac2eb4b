"""Native TensorRT backend: the bundle's engine (``manifest.engine[graph]``), cuda-python buffers. No torch.

Written against the name-based TensorRT 10/11 Python API (the one Polygraphy's TrtRunner and NVIDIA's
samples use): ``trt.Runtime.deserialize_cuda_engine``, ``ICudaEngine.get_tensor_name / _mode / _dtype
/ _shape / get_tensor_profile_shape``, ``IExecutionContext.set_input_shape / set_tensor_address /
execute_async_v3``. Buffers come from cuda-python (``cuda.bindings.runtime``, ≥ 12.6; the older
``cuda.cudart`` layout also works), which NVIDIA's samples use since TensorRT 10.13.

Memory plan (allocated once, at open): every IO tensor gets one device buffer and one pinned host
buffer sized for the engine profile's largest batch, and its device address is set on the context
once. A call copies fed rows host→device, runs, copies the output rows back and synchronizes the one
stream; input shapes are set again only when the batch changes. A bound input lives in its device
buffer: one bound row is tiled over the largest batch, so any batch reads it without a copy, and
``update`` rewrites it in place (one small host→device copy).

Nothing here imports ``tensorrt`` until a backend is opened; :func:`tensorrt_missing` says in words
what this machine or bundle lacks, and :func:`check_engine` refuses an engine built for another
TensorRT version, GPU or graph.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import json
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from gandapt.errors import GandaptError, one_line
from gandapt.export.engine import _logger, _register_plugins, has_cuda_driver
from gandapt.runtime.backends.base import Backend, Feed

REBUILD = "rebuild it on this machine (gandapt-export --engine), or use --backend onnxruntime"


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        return False


def cudart_module() -> Optional[Any]:
    """cuda-python's runtime API module, or None: ``cuda.bindings.runtime``, else ``cuda.cudart``."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def tensorrt_missing(bundle: Any = None, graph: Optional[str] = None) -> List[str]:
    """What the TensorRT backend lacks here, in words (empty: it can run).

    Args:
        bundle: an opened bundle, or None to check only the machine.
        graph: the graph to run; None with a bundle: any graph with an engine will do.
    """
    missing = []
    if not _has("tensorrt"):
        missing.append("the tensorrt package (pip install 'gandapt[trt]')")
    if not (_has("cuda.bindings") or _has("cuda.cudart")):
        missing.append("cuda-python (pip install 'gandapt[trt]')")
    if not has_cuda_driver():
        missing.append("an NVIDIA GPU with its driver (libcuda.so.1)")
    if bundle is not None:
        graphs = [graph] if graph else list(bundle.manifest.graphs)
        files = [bundle.engine_file(g) for g in graphs if bundle.engine_file(g) is not None]
        if not files:
            missing.append(f"a TensorRT engine for {graph or 'any graph'} in bundle {bundle.path} "
                           "(export with --engine on a GPU machine)")
        elif not any(f.is_file() for f in files):
            missing.append(f"the engine file {files[0]} the manifest lists (rebuild: gandapt-export --engine)")
    return missing


def check_engine(entry: Dict[str, Any], meta: Dict[str, Any], graph_sha256: Optional[str], trt_version: str,
                 compute_capability: Optional[str]) -> None:
    """Refuse an engine built for another TensorRT version, GPU or ONNX graph (one line each).

    Args:
        entry: ``manifest.engine[graph]`` (``file``, ``tensorrt_version``, ``compute_capability``, ...).
        meta: the engine's ``.plan.json`` (``onnx_sha256``, ``device``), or ``{}``.
        graph_sha256: the bundle graph's recorded sha256.
        trt_version: this machine's ``tensorrt.__version__``.
        compute_capability: this GPU's ``"major.minor"``, or None when unknown.

    Raises:
        GandaptError: a recorded value that differs from this machine or bundle.
    """
    name = entry.get("file", "the engine")
    built = entry.get("tensorrt_version")
    if built and built != trt_version:
        raise GandaptError(f"engine {name} was built with TensorRT {built} but this machine has TensorRT "
                           f"{trt_version} (a plan runs only on the version that built it); {REBUILD}")
    cc = entry.get("compute_capability")
    if cc not in (None, "unknown") and compute_capability is not None and cc != compute_capability:
        gpu = (meta.get("device") or {}).get("name", "another GPU")
        raise GandaptError(f"engine {name} was built for {gpu} (compute capability {cc}) but this GPU has "
                           f"compute capability {compute_capability}; {REBUILD}")
    onnx_sha = meta.get("onnx_sha256")
    if onnx_sha and graph_sha256 and onnx_sha != graph_sha256:
        raise GandaptError(f"engine {name} was built from another {meta.get('onnx', 'ONNX graph')} than this "
                           f"bundle's; {REBUILD}")


def _ok(cudart: Any, result: Any) -> Any:
    """Unpack a cuda-python ``(err, *values)`` result; raise on an error code."""
    err, *rest = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        raise GandaptError(f"CUDA call failed: {getattr(err, 'name', err)}")
    return rest[0] if len(rest) == 1 else None


class _Tensor:
    """One engine IO tensor: a device buffer and a pinned host buffer, both for the largest batch."""

    def __init__(self, cudart: Any, name: str, dtype: np.dtype, max_shape: Tuple[int, ...], is_input: bool):
        self.name, self.dtype, self.max_shape, self.is_input = name, dtype, max_shape, is_input
        self.nbytes = int(np.prod(max_shape)) * dtype.itemsize
        self.row_bytes = self.nbytes // max_shape[0]
        self.dptr = int(_ok(cudart, cudart.cudaMalloc(self.nbytes)))
        self.hptr = int(_ok(cudart, cudart.cudaMallocHost(self.nbytes)))  # pinned: async copies
        raw = (ctypes.c_char * self.nbytes).from_address(self.hptr)
        self.host = np.frombuffer(raw, dtype=dtype).reshape(max_shape)  # [max_batch, ...] view

    def free(self, cudart: Any) -> None:
        cudart.cudaFree(self.dptr)
        cudart.cudaFreeHost(self.hptr)


class TrtBackend(Backend):
    """One bundle graph as a TensorRT engine (see the module docstring).

    Args:
        bundle: an opened :class:`~gandapt.runtime.bundle.Bundle` with ``manifest.engine[graph]``.
        graph: ``'mapping'``, ``'synthesis'`` or ``'encoder'``.
        threads: unused (TensorRT runs on the GPU).

    Raises:
        GandaptError: TensorRT, cuda-python, a GPU or the engine missing; an engine built for another
            TensorRT version, GPU or graph; an engine TensorRT cannot load.
    """

    name = "tensorrt"

    def __init__(self, bundle: Any, graph: str, threads: Optional[int] = None):
        missing = tensorrt_missing(bundle, graph)
        if missing:
            raise GandaptError("the tensorrt backend needs " + "; ".join(missing) + "; or use --backend onnxruntime")
        import tensorrt as trt

        super().__init__(graph, bundle.manifest.io_spec(graph))
        self._trt, self._cudart = trt, cudart_module()
        self._tensors: Dict[str, _Tensor] = {}
        self._stream = None
        path = bundle.engine_file(graph)
        entry = bundle.manifest.engine[graph]
        meta_file = bundle.path / entry["metadata"] if entry.get("metadata") else None
        try:
            meta = json.loads(meta_file.read_text()) if meta_file is not None and meta_file.is_file() else {}
        except (OSError, ValueError) as e:
            raise GandaptError(f"cannot read {meta_file}: {one_line(e, 160)}; {REBUILD}") from None
        check_engine(entry, meta, bundle.manifest.graphs[graph].get("sha256"), trt.__version__,
                     self._compute_capability())

        logger = _logger(trt)  # TensorRT keeps one logger per process: share the builder's
        if hasattr(trt, "init_libnvinfer_plugins"):
            trt.init_libnvinfer_plugins(logger, "")
        if meta.get("plugins"):
            _register_plugins(trt, logger, meta["plugins"])
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self._engine is None:
            raise GandaptError(one_line(f"TensorRT {trt.__version__} cannot load {path.name}: "
                                        + ("; ".join(logger.errors[-2:]) or "no error logged") + f"; {REBUILD}", 400))
        self._context = self._engine.create_execution_context()
        self._stream = _ok(self._cudart, self._cudart.cudaStreamCreate())
        try:
            self._allocate(path.name)
        except BaseException:
            self.close()  # free what was allocated before the failure
            raise
        self._values: Dict[str, np.ndarray] = {}  # bound values [r, ...], kept to re-upload
        self._resident: set = set()                # bound inputs whose device buffer holds the value
        self._batch = 0                            # batch the context's input shapes are set for

    @property
    def instance_id(self) -> int:
        return id(self._engine)

    def _compute_capability(self) -> Optional[str]:
        cudart = self._cudart
        try:
            device = _ok(cudart, cudart.cudaGetDevice())
            prop = _ok(cudart, cudart.cudaGetDeviceProperties(device))
        except GandaptError:
            return None
        return f"{prop.major}.{prop.minor}"

    # ---- buffers -------------------------------------------------------------------------------
    def _allocate(self, plan: str) -> None:
        """Profile 0's largest shapes → one device + pinned host buffer per IO tensor, addresses set."""
        trt, engine, ctx = self._trt, self._engine, self._context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        want = {t.name for t in self.io.inputs}
        if set(inputs) != want:
            raise GandaptError(f"engine {plan} takes {', '.join(inputs)} but the {self.graph} graph takes "
                               f"{', '.join(sorted(want))}; {REBUILD}")
        self._dynamic: List[str] = []
        self._min_batch, self._max_batch = 1, None
        for n in inputs:
            shape = tuple(engine.get_tensor_shape(n))
            if -1 in shape:
                lo, _, hi = engine.get_tensor_profile_shape(n, 0)
                self._dynamic.append(n)
                self._min_batch, self._max_batch = max(self._min_batch, lo[0]), min(self._max_batch or hi[0], hi[0])
                shape = tuple(hi)
                ctx.set_input_shape(n, shape)
            self._max_batch = self._max_batch or shape[0]
            self._tensors[n] = _Tensor(self._cudart, n, np.dtype(trt.nptype(engine.get_tensor_dtype(n))), shape, True)
        if not self._dynamic:  # a fixed-shape engine runs exactly its batch
            self._min_batch = self._max_batch
        for n in names:
            if n not in self._tensors:  # outputs: shapes follow from the max-batch input shapes
                shape = tuple(ctx.get_tensor_shape(n))
                self._tensors[n] = _Tensor(self._cudart, n, np.dtype(trt.nptype(engine.get_tensor_dtype(n))), shape,
                                           False)
        for n, t in self._tensors.items():
            ctx.set_tensor_address(n, t.dptr)
        self._outputs = [n for n in names if n not in inputs]

    def _copy(self, t: _Tensor, rows: int, to_device: bool) -> None:
        kind = self._cudart.cudaMemcpyKind
        if to_device:
            args = (t.dptr, t.hptr, rows * t.row_bytes, kind.cudaMemcpyHostToDevice, self._stream)
        else:
            args = (t.hptr, t.dptr, rows * t.row_bytes, kind.cudaMemcpyDeviceToHost, self._stream)
        _ok(self._cudart, self._cudart.cudaMemcpyAsync(*args))

    def _sync(self) -> None:
        _ok(self._cudart, self._cudart.cudaStreamSynchronize(self._stream))

    def _upload_bound(self, name: str) -> None:
        """Write bound ``name`` into its device buffer: one row tiled over the largest batch, or N rows."""
        t, value = self._tensors[name], self._values[name]
        rows = t.max_shape[0] if value.shape[0] == 1 else value.shape[0]
        if rows > t.max_shape[0]:
            raise GandaptError(f"bound {name!r} has {rows} rows but engine batches run to {t.max_shape[0]}; "
                               "bind one row or rebuild the engine with a larger --max-batch")
        np.copyto(t.host[:rows], value, casting="same_kind")  # broadcasts one row; no allocation
        self._copy(t, rows, to_device=True)
        self._sync()
        self._resident.add(name)

    # ---- Backend -------------------------------------------------------------------------------
    def _bind(self, name: str, value: np.ndarray) -> None:
        self._values[name] = value.copy()
        self._upload_bound(name)

    def _update(self, name: str, value: np.ndarray) -> None:
        np.copyto(self._values[name], value, casting="same_kind")
        self._upload_bound(name)

    def _infer(self, feed: Feed, batch: int) -> Dict[str, np.ndarray]:
        if not self._min_batch <= batch <= self._max_batch:
            raise GandaptError(f"the {self.graph} engine runs batches {self._min_batch} to {self._max_batch}, not "
                               f"{batch}; rebuild it with another batch range (gandapt-export --engine)")
        if batch != self._batch:
            for n in self._dynamic:
                self._context.set_input_shape(n, (batch,) + self._tensors[n].max_shape[1:])
            self._batch = batch
        for spec in self.io.inputs:
            name = spec.name
            if name in feed:
                t = self._tensors[name]
                np.copyto(t.host[:batch], feed[name], casting="same_kind")
                self._copy(t, batch, to_device=True)
                self._resident.discard(name)  # a fed value overwrote a bound one: re-upload next time
            elif name not in self._resident:
                self._upload_bound(name)
        if not self._context.execute_async_v3(int(self._stream)):
            raise GandaptError(f"TensorRT failed to run the {self.graph} engine at batch {batch}; see the log above")
        for n in self._outputs:
            self._copy(self._tensors[n], batch, to_device=False)
        self._sync()
        return {n: self._tensors[n].host[:batch].astype(np.float32) for n in self._outputs}  # astype copies

    def _close(self) -> None:
        if self._stream is not None:
            self._sync()
        self._context = self._engine = self._runtime = None  # before the buffers the context points at
        for t in self._tensors.values():
            t.free(self._cudart)
        self._tensors.clear()
        if self._stream is not None:
            self._cudart.cudaStreamDestroy(self._stream)
            self._stream = None
