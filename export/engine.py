"""TensorRT engines from a bundle's ONNX graphs, and an ahead-of-time TensorRT-RTX parse/compile check.

:func:`build_engine` needs the full ``tensorrt`` package (10.9 – 11.x) and an NVIDIA GPU with its
driver; it cannot run on a machine without them and refuses with one line. It follows the documented
Python API: ``Builder.create_network(flags)``, ``OnnxParser.parse_from_file``,
``Builder.create_optimization_profile`` / ``IOptimizationProfile.set_shape``,
``IBuilderConfig.create_timing_cache`` / ``set_timing_cache`` / ``ITimingCache.serialize`` and
``Builder.build_serialized_network`` (docs.nvidia.com/deeplearning/tensorrt, Python API "Builder",
"Network", "ONNX Parser", "Optimizing Builder Performance: Timing Cache"). TensorRT 11 removed
``BuilderFlag.FP16`` and always builds strongly typed ("Migrating from TensorRT 10.x to 11.x: Removed
Python APIs"), so fp16 comes from an fp16-typed graph (``gandapt-export --precision fp16``); only on
TensorRT 10 may an fp32 graph be built weakly typed with the FP16 flag.

:func:`check_with_tensorrt_rtx` runs the same parse + profile + build with ``tensorrt_rtx`` (the
``tensorrt-rtx-cu13`` wheel), which compiles for a chosen compute capability without a GPU. It has no
SM90 target and no plugins, so it proves "parses and compiles in a TensorRT-family builder", not that
the production H100 engine builds.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from gandapt.errors import GandaptError, one_line
from gandapt.export.manifest import sha256_file, update_manifest
from gandapt.io import atomic_write_bytes

NO_TRT = "TensorRT is not installed: pip install 'gandapt[trt]' on a machine with an NVIDIA GPU and driver"
NO_RTX = "TensorRT-RTX is not installed: pip install tensorrt-rtx-cu13 (builds ahead of time, no GPU needed)"
GRAPH_FILES = {"mapping": "mapping.onnx", "synthesis": "synthesis.onnx", "encoder": "encoder.onnx"}
_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
_LOGGERS: Dict[str, Any] = {}  # one logger per TensorRT module: the first one registered wins process-wide


def has_cuda_driver() -> bool:
    """True when the NVIDIA driver library loads (cheap, import-free; ORT's provider list lies)."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def require_tensorrt() -> None:
    """Refuse in one line when TensorRT or an NVIDIA driver is missing (checked before any import).

    Raises:
        GandaptError: no ``tensorrt`` package, or no ``libcuda.so.1``.
    """
    if importlib.util.find_spec("tensorrt") is None:
        raise GandaptError(NO_TRT)
    if not has_cuda_driver():  # before importing TensorRT: its runtimes crash without a driver
        raise GandaptError("no NVIDIA GPU driver (libcuda.so.1) on this machine: build engines on the GPU "
                           "machine that will run them (a plan is tied to its GPU and TensorRT version)")


def read_manifest(bundle_dir: os.PathLike) -> Optional[Dict[str, Any]]:
    """The bundle's ``manifest.json`` as a dict, or None when the bundle has none."""
    path = Path(bundle_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise GandaptError(f"cannot read {path}: {one_line(e)}; re-export the bundle") from e


def onnx_io_spec(onnx_path: os.PathLike) -> Dict[str, Any]:
    """IO spec of an ONNX file in the manifest's form, read from the graph itself.

    Returns:
        ``{file, inputs: [{name, dtype, shape}], outputs: [...], batch}``; a symbolic leading dim is
        ``"N"`` (batch None), other symbolic dims are -1, a fixed leading dim sets ``batch``.
    """
    import onnx
    from onnx import helper

    path = Path(onnx_path)
    model = onnx.load(str(path), load_external_data=False)  # IO only: skip the weights
    inits = {i.name for i in model.graph.initializer}

    def tensor(v):
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else ("N" if i == 0 else -1)
                for i, d in enumerate(t.shape.dim)]
        return {"name": v.name, "dtype": helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims}

    inputs = [tensor(v) for v in model.graph.input if v.name not in inits]
    outputs = [tensor(v) for v in model.graph.output]
    lead = [t["shape"][0] for t in inputs if t["shape"]]
    batch = None if not lead or "N" in lead else int(lead[0])
    return {"file": path.name, "inputs": inputs, "outputs": outputs, "batch": batch}


def graph_spec(bundle_dir: os.PathLike, graph: str, manifest: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """IO spec of one bundle graph: the manifest's entry, else read from ``<graph>.onnx``.

    Raises:
        GandaptError: the bundle has no such graph.
    """
    bundle = Path(bundle_dir)
    manifest = read_manifest(bundle) if manifest is None else manifest
    entry = (manifest or {}).get("graphs", {}).get(graph)
    if entry is not None:
        if not (bundle / entry["file"]).is_file():
            raise GandaptError(f"bundle {bundle} lists {entry['file']} but the file is missing; re-export it")
        return entry
    path = bundle / GRAPH_FILES.get(graph, f"{graph}.onnx")
    if not path.is_file():
        raise GandaptError(f"bundle {bundle} has no {graph} graph ({path.name}); export it with gandapt-export")
    return onnx_io_spec(path)


def plugin_ops(onnx_path: os.PathLike) -> List[str]:
    """``domain::op_type`` of every node outside the standard ONNX domains (TensorRT plugin nodes)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf decode errors have no common base
        raise GandaptError(f"cannot read ONNX graph {onnx_path}: {one_line(e, 200)}") from e
    return sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in _STANDARD_DOMAINS})


def _logger(trt) -> Any:
    # TensorRT keeps the first logger a process registers, so keep one per module and reset its record.
    if trt.__name__ not in _LOGGERS:
        class _Recording(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)
                self.errors: List[str] = []

            def log(self, severity, msg):
                if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                    self.errors.append(msg)
                elif severity == trt.ILogger.Severity.WARNING:
                    print(f"[{trt.__name__}] {msg}", file=sys.stderr)

        _LOGGERS[trt.__name__] = _Recording()
    _LOGGERS[trt.__name__].errors.clear()
    return _LOGGERS[trt.__name__]


def _parse(trt, builder, logger, onnx_path: Path, strongly_typed: bool):
    flags = 0
    if strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)  # TRT ≥ 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # resolves external data next to the file
        errs = []
        for i in range(parser.num_errors):
            e = parser.get_error(i)
            where = f"node {e.node()} ({e.node_operator()} {e.node_name()!r}): " if e.node() >= 0 else ""
            errs.append(f"{where}{getattr(e.code(), 'name', e.code())}: {e.desc()}")
        raise GandaptError(one_line(f"{trt.__name__} cannot parse {onnx_path.name}: " + "; ".join(errs), 600))
    return network, parser


def _add_profile(trt, builder, network, config, min_batch: int, opt_batch: int, max_batch: int) -> Dict[str, Any]:
    """One optimization profile over the dynamic batch axis; returns ``{input: {min, opt, max}}``."""
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise GandaptError(f"batch range must satisfy 1 <= min <= opt <= max, got {min_batch}/{opt_batch}/{max_batch}")
    profile, shapes = builder.create_optimization_profile(), {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        dims = list(t.shape)
        if -1 not in dims:
            continue
        if -1 in dims[1:]:
            raise GandaptError(f"input {t.name} has dynamic non-batch dims {dims}; only the batch axis may vary")
        rng = {k: [b] + dims[1:] for k, b in (("min", min_batch), ("opt", opt_batch), ("max", max_batch))}
        profile.set_shape(t.name, rng["min"], rng["opt"], rng["max"])
        shapes[t.name] = rng
    if shapes:
        config.add_optimization_profile(profile)
    return shapes


def _io(trt, network) -> Dict[str, List[Dict[str, Any]]]:
    import numpy as np

    def desc(t):
        shape = ["N" if d == -1 and i == 0 else int(d) for i, d in enumerate(t.shape)]
        return {"name": t.name, "dtype": np.dtype(trt.nptype(t.dtype)).name, "shape": shape}

    return {"inputs": [desc(network.get_input(i)) for i in range(network.num_inputs)],
            "outputs": [desc(network.get_output(i)) for i in range(network.num_outputs)]}


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data, force=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_sha(manifest: Optional[Dict[str, Any]]) -> Optional[str]:
    """sha256 of the manifest without its ``engine`` entry (stable when an engine is added)."""
    if manifest is None:
        return None
    rest = {k: v for k, v in manifest.items() if k != "engine"}
    return _sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())


def _graph_precision(spec: Dict[str, Any], manifest: Optional[Dict[str, Any]]) -> str:
    # The manifest knows (fp16 bundles keep fp32 IO, cast inside); a bare graph: judge by its inputs.
    if manifest and manifest.get("precision"):
        return manifest["precision"]
    return "fp16" if any(t["dtype"] == "float16" for t in spec["inputs"]) else "fp32"


def _device() -> Dict[str, Any]:
    # The builder targets the current CUDA device; name it through whichever CUDA binding is present.
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return {"name": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}"}
    except Exception:  # noqa: BLE001 - a CPU torch or a broken CUDA runtime: try cuda-python
        pass
    try:
        from cuda.bindings import runtime

        err, prop = runtime.cudaGetDeviceProperties(0)
        if err == runtime.cudaError_t.cudaSuccess:
            return {"name": prop.name.decode(errors="replace").rstrip("\0"),
                    "compute_capability": f"{prop.major}.{prop.minor}"}
    except Exception:  # noqa: BLE001 - cuda-python absent: the plan still builds
        pass
    return {"name": "unknown", "compute_capability": "unknown"}


def plugin_versions(onnx_path: os.PathLike) -> List[str]:
    """``domain::op@version`` of every plugin node (``plugin_version`` attribute, "1" when absent)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path), load_external_data=False)
    found = set()
    for n in model.graph.node:
        if n.domain in _STANDARD_DOMAINS:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        version = attrs.get("plugin_version", b"1")
        found.add(f"{n.domain}::{n.op_type}@{version.decode() if isinstance(version, bytes) else version}")
    return sorted(found)


def _register_plugins(trt, logger, plugins: Sequence[str]) -> None:
    """Register TensorRT's own plugin library and, when ``plugins`` is not empty, gandapt's plugins.

    ``plugins`` are ``domain::op`` or ``domain::op@version`` entries (an engine's metadata records the
    versions, so an engine built for another plugin version is refused before it is deserialized).
    """
    if hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")  # TensorRT's own plugin library
    if not plugins:
        return
    try:
        mod = importlib.import_module("gandapt.plugins_trt")
    except ImportError:
        mod = None
    register = getattr(mod, "register_plugins", None)
    if register is None:
        raise GandaptError(f"the graph has plugin nodes ({', '.join(plugins)}) but gandapt.plugins_trt registers no "
                           "TensorRT plugins; export with --modconv decomposed")
    register(plugins)  # checks names and versions, then registers with TensorRT's global plugin registry


def _write_manifest_engine(bundle: Path, manifest: Optional[Dict[str, Any]], graph: str, entry: Dict[str, Any]) -> None:
    # A bundle without a manifest (graphs only) keeps just the plan's own .plan.json.
    if manifest is not None:
        update_manifest(bundle, engine={**(manifest.get("engine") or {}), graph: entry})


def build_engine(
    bundle_dir: os.PathLike,
    graph: str = "synthesis",
    precision: Optional[str] = None,
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = 8,
    timing_cache: Optional[os.PathLike] = None,
    workspace_gb: float = 4.0,
    force: bool = False,
) -> Path:
    """Build ``<graph>.plan`` (+ ``<graph>.plan.json``) in the bundle with TensorRT and record it in the manifest.

    Args:
        bundle_dir: a bundle written by ``gandapt-export``.
        graph: which graph to build ('synthesis', 'mapping' or 'encoder').
        precision: 'fp32' or 'fp16'; None = the graph's own precision. fp16 from an fp32 graph needs
            TensorRT 10 (weakly typed + FP16 flag); TensorRT 11 needs an fp16-exported bundle.
        min_batch, opt_batch, max_batch: the optimization profile over the dynamic batch axis.
        timing_cache: timing cache file, read if present and rewritten after the build; None =
            ``~/.cache/gandapt/tensorrt-<version>.timing`` (shared across bundles: faster rebuilds).
        workspace_gb: builder workspace memory pool limit.
        force: overwrite an existing plan.

    Returns:
        The plan's path.

    Raises:
        GandaptError: TensorRT or a GPU missing, plan exists, parse/build failure, unsupported precision,
            plugin nodes without registered plugins.
    """
    bundle = Path(bundle_dir)
    manifest = read_manifest(bundle)
    spec = graph_spec(bundle, graph, manifest)
    onnx_path = bundle / spec["file"]
    out = bundle / f"{graph}.plan"
    if out.exists() and not force:
        raise GandaptError(f"{out} exists; pass force=True (--force) to rebuild it")
    have = _graph_precision(spec, manifest)
    want = precision or have
    if want not in ("fp32", "fp16"):
        raise GandaptError(f"unknown precision {want!r}; use fp32 or fp16")
    if want == "fp32" and have == "fp16":
        raise GandaptError("the bundle's graph is fp16-typed; export an fp32 bundle for an fp32 engine")
    plugins = plugin_versions(onnx_path)
    if plugins:  # unknown plugins or another plugin version: refuse before TensorRT loads
        from gandapt.plugins_trt import check_plugins

        check_plugins(plugins)

    require_tensorrt()
    import tensorrt as trt

    weak_fp16 = want == "fp16" and have == "fp32"
    if weak_fp16 and not hasattr(trt.BuilderFlag, "FP16"):
        raise GandaptError(f"TensorRT {trt.__version__} has no fp16 builder flag (strong typing only); "
                           "export with --precision fp16 and build that bundle")
    logger = _logger(trt)
    _register_plugins(trt, logger, plugins)
    builder = trt.Builder(logger)
    # Keep the parser alive until the build: it owns the weights the network refers to.
    network, _parser = _parse(trt, builder, logger, onnx_path, strongly_typed=not weak_fp16)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if weak_fp16:
        config.set_flag(trt.BuilderFlag.FP16)  # TRT 10 only: lets the builder pick fp16 kernels
    profile = _add_profile(trt, builder, network, config, min_batch, opt_batch, max_batch)

    cache_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gandapt"
    cache_path = Path(timing_cache) if timing_cache else cache_dir / f"tensorrt-{trt.__version__}.timing"
    blob = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(blob)
    if not config.set_timing_cache(cache, False):  # False: refuse a cache from another device/version
        config.set_timing_cache(config.create_timing_cache(b""), False)

    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise GandaptError(one_line(f"TensorRT {trt.__version__} failed to build {onnx_path.name}: "
                                    + ("; ".join(logger.errors[-3:]) or "see the log above"), 600))
    build_s = time.perf_counter() - t0
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(cache_path, bytes(config.get_timing_cache().serialize()))
    _atomic_write(out, bytes(plan))

    meta = {
        "graph": graph, "onnx": spec["file"], "onnx_sha256": sha256_file(onnx_path),
        "bundle_manifest_sha256": manifest_sha(manifest), "tensorrt_version": trt.__version__,
        "device": _device(), "precision": want, "strongly_typed": not weak_fp16,
        "plugins": plugins, "profile": profile, "build_seconds": round(build_s, 2),
        "plan_bytes": out.stat().st_size, "timing_cache": str(cache_path), **_io(trt, network),
    }
    meta_path = bundle / f"{graph}.plan.json"
    _atomic_write(meta_path, (json.dumps(meta, indent=2) + "\n").encode())
    _write_manifest_engine(bundle, manifest, graph, {
        "file": out.name, "metadata": meta_path.name, "precision": want, "tensorrt_version": trt.__version__,
        "compute_capability": meta["device"]["compute_capability"],
        "batch": {"min": min_batch, "opt": opt_batch, "max": max_batch} if profile else None,
    })
    return out


def check_with_tensorrt_rtx(
    onnx_path: os.PathLike,
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = 8,
    compute_capability: str = "SM89",
) -> Dict[str, Any]:
    """Parse and compile an ONNX graph ahead of time with TensorRT-RTX (no GPU needed).

    Args:
        onnx_path: the graph, e.g. a bundle's ``synthesis.onnx`` (decomposed or grouped modconv).
        min_batch, opt_batch, max_batch: profile over the dynamic batch axis.
        compute_capability: a ``tensorrt_rtx.ComputeCapability`` name (SM75/80/86/89/120/121; no SM90).

    Returns:
        ``{version, compute_capability, layers, parse_s, build_s, plan_bytes, profile, inputs, outputs}``.

    Raises:
        GandaptError: tensorrt_rtx missing, plugin nodes (RTX has no plugins), parse or build failure.
    """
    path = Path(onnx_path)
    if importlib.util.find_spec("tensorrt_rtx") is None:
        raise GandaptError(NO_RTX)
    plugins = plugin_ops(path)
    if plugins:
        raise GandaptError(f"{path.name} has plugin nodes ({', '.join(plugins)}) and TensorRT-RTX has no plugins; "
                           "check the --modconv decomposed graph instead")
    import tensorrt_rtx as rtx

    cc = getattr(rtx.ComputeCapability, compute_capability, None)
    if cc is None:
        names = [n for n in rtx.ComputeCapability.__members__ if n.startswith("SM")]
        raise GandaptError(f"TensorRT-RTX {rtx.__version__} has no target {compute_capability}; "
                           f"use one of {', '.join(names)}")
    logger = _logger(rtx)
    builder = rtx.Builder(logger)
    t0 = time.perf_counter()
    network, _parser = _parse(rtx, builder, logger, path, strongly_typed=True)
    parse_s = time.perf_counter() - t0
    config = builder.create_builder_config()
    config.num_compute_capabilities = 1  # build for an explicit target instead of the (absent) current GPU
    config.set_compute_capability(cc, 0)
    profile = _add_profile(rtx, builder, network, config, min_batch, opt_batch, max_batch)
    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise GandaptError(one_line(f"TensorRT-RTX {rtx.__version__} failed to build {path.name}: "
                                    + ("; ".join(logger.errors[-3:]) or "no error logged"), 600))
    return {"version": rtx.__version__, "compute_capability": compute_capability, "layers": network.num_layers,
            "parse_s": round(parse_s, 3), "build_s": round(time.perf_counter() - t0, 3),
            "plan_bytes": plan.nbytes, "profile": profile, **_io(rtx, network)}
