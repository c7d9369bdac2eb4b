"""The callables the latency benchmark times: torch eager / compiled, onnxruntime sessions, TensorRT.

Each ``*_runner`` function returns a zero-argument callable that renders one batch and returns the
images as a float32 numpy array (so every path pays for getting its result to the host), or raises
:class:`Unavailable` with one line saying why that path cannot run here.

A :class:`Workspace` holds what several measurements share: the generators (loaded or built once per
model), their inputs, and the ONNX files exported into a temporary folder (one per model, form,
precision and, for fixed-batch forms, batch).
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from gandapt.errors import GandaptError, one_line

# The domain stages every benchmarked graph carries: those of the shipped domain pack, so the graphs
# are the ones gandapt deploys (domain-modulation and StyleSpace terms included), at identity values.
STAGES = ("s", "in")

Runner = Callable[[], np.ndarray]


class Unavailable(Exception):
    """This path cannot run on this machine; the message says why (one line)."""


class Workspace:
    """Generators, inputs and exported graphs shared by the benchmark sections.

    Args:
        threads: CPU threads for torch and onnxruntime.
        seed: seed of the random weights and inputs.
        root: folder for exported graphs (default: a new temporary folder, removed by :meth:`close`).
    """

    def __init__(self, threads: int, seed: int = 0, root: Optional[Path] = None):
        import torch

        self.threads, self.seed = int(threads), int(seed)
        torch.set_num_threads(self.threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._own = root is None
        self.root = Path(tempfile.mkdtemp(prefix="gandapt-bench-")) if root is None else Path(root)
        self._models: Dict[str, Any] = {}
        self._onnx: Dict[Tuple, Tuple[Path, float]] = {}

    def close(self) -> None:
        if self._own:
            shutil.rmtree(self.root, ignore_errors=True)

    # ---- models and inputs ---------------------------------------------------------------------
    def generator(self, spec) -> Any:
        """The fp32 CPU generator of a :class:`~gandapt.benchmarks.flops.ModelSpec` (cached), with
        :data:`STAGES` set and the decomposed form selected."""
        if spec.name not in self._models:
            import torch

            import gandapt
            from gandapt.generator import Generator

            if spec.path is not None:
                G = gandapt.load(spec.path).G
            else:
                torch.manual_seed(self.seed)
                G = Generator(spec.config)
            G = G.eval().float().requires_grad_(False)
            G.synthesis.set_domain_stages(STAGES)
            G.synthesis.set_modconv_form("decomposed")
            self._models[spec.name] = G
        return self._models[spec.name]

    def drop(self, spec) -> None:
        """Forget a model (frees a large generator before the next one is built)."""
        self._models.pop(spec.name, None)

    def inputs(self, spec, batch: int) -> Dict[str, np.ndarray]:
        """``{'ws': [B, num_ws, w_dim], 'domain': [B, D]}`` float32: mapped seeded latents (ψ 0.7) and the
        identity domain. The first rows are the same whatever ``batch``."""
        import torch

        G = self.generator(spec)
        g = torch.Generator().manual_seed(self.seed)
        z = torch.randn(batch, G.z_dim, generator=g)
        with torch.inference_mode():
            ws = G.mapping(z, truncation_psi=0.7).numpy()
        return {"ws": np.ascontiguousarray(ws, np.float32), "domain": G.layout.identity(batch)}

    def onnx(self, spec, form: str, precision: str, batch: int) -> Tuple[Path, float]:
        """The synthesis graph exported with ``form``/``precision`` (cached): ``(path, export seconds)``.

        Raises:
            Unavailable: the exporter refuses this form here (e.g. the plugin form before it exists).
        """
        from gandapt.export.spec import ExportSpec

        fixed = form == "grouped"  # the fixed-batch form: one graph per batch
        key = (spec.name, form, precision, batch if fixed else None)
        if key not in self._onnx:
            from gandapt.export.onnx_graphs import export_graph, prepared_generator

            try:
                export = ExportSpec(modconv=form, precision=precision, batch=batch)
                path = self.root / f"{spec.name}-{form}-{precision}" / (f"b{batch}.onnx" if fixed else "synthesis.onnx")
                t = time.perf_counter()
                G, layout = prepared_generator(self.generator(spec), export, STAGES)
                export_graph(G, "synthesis", layout, export, path)
            except GandaptError as err:
                raise Unavailable(f"export refused: {one_line(err, 240)}") from None
            self._onnx[key] = (path, time.perf_counter() - t)
        return self._onnx[key]


# ---- torch ----------------------------------------------------------------------------------------
def torch_runner(G: Any, inputs: Dict[str, np.ndarray], device: str = "cpu", precision: str = "fp32",
                 form: str = "decomposed", compiled: bool = False) -> Runner:
    """Eager (or ``torch.compile``-d) synthesis of ``G`` in ``form`` on ``device``.

    Raises:
        Unavailable: fp16 on the CPU (not a deployment path there), or torch.compile missing a compiler.
    """
    import copy

    import torch

    if precision == "fp16" and device == "cpu":
        raise Unavailable("fp16 eager on the CPU is not a deployment path (no fast half kernels); see onnxruntime fp16")
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = G
    if form != "decomposed" or device != "cpu" or dtype != torch.float32:  # the shared G stays as it is
        model = copy.deepcopy(G).to(device=device, dtype=dtype)
        model.synthesis.set_modconv_form(form)
    ws = torch.from_numpy(inputs["ws"]).to(device=device, dtype=dtype)
    domain = torch.from_numpy(inputs["domain"]).to(device=device, dtype=dtype)
    fn = model.synthesis
    if compiled:
        fn = torch.compile(model.synthesis, dynamic=False)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run() -> np.ndarray:
        with torch.inference_mode():
            img = fn(ws, domain=domain)
            sync()
            return img.float().cpu().numpy()

    if compiled:
        try:
            run()  # compile now, so a failure is reported as such and not timed
        except Exception as err:  # noqa: BLE001 - inductor raises many types (no compiler, unsupported op)
            raise Unavailable(f"torch.compile failed: {one_line(err, 200)}") from None
    return run


# ---- onnxruntime ---------------------------------------------------------------------------------
PROVIDERS = {"onnxruntime-cpu": "CPUExecutionProvider", "onnxruntime-cuda": "CUDAExecutionProvider",
             "onnxruntime-tensorrt": "TensorrtExecutionProvider"}


def ort_runner(path: Path, inputs: Dict[str, np.ndarray], backend: str, threads: int) -> Runner:
    """An onnxruntime session of ``path`` on the execution provider of ``backend``.

    Raises:
        Unavailable: onnxruntime or the provider is missing, the session falls back to another
            provider, or onnxruntime cannot load the graph (e.g. a plugin node).
    """
    if importlib.util.find_spec("onnxruntime") is None:
        raise Unavailable("onnxruntime is not installed")
    import onnxruntime as ort

    from gandapt.export.engine import has_cuda_driver
    from gandapt.runtime.backends.ort import session_options

    provider = PROVIDERS[backend]
    if provider != "CPUExecutionProvider":
        if provider not in ort.get_available_providers():
            raise Unavailable(f"{provider} is not in this onnxruntime build (install onnxruntime-gpu)")
        if not has_cuda_driver():
            raise Unavailable("no NVIDIA GPU driver (libcuda.so.1)")
    options: Any = provider
    if provider == "TensorrtExecutionProvider":
        options = (provider, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(path.parent / "trt-cache")})
    try:
        sess = ort.InferenceSession(str(path), session_options(threads), providers=[options] + (["CPUExecutionProvider"] if provider != "CPUExecutionProvider" else []))
    except Exception as err:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
        raise Unavailable(f"onnxruntime cannot load the graph: {one_line(err, 200)}") from None
    if sess.get_providers()[0] != provider:
        raise Unavailable(f"{provider} did not initialise (session fell back to {sess.get_providers()[0]})")
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in inputs.items() if k in names}

    def run() -> np.ndarray:
        return sess.run(["img"], feed)[0]

    run.session = sess  # type: ignore[attr-defined]
    return run


# ---- TensorRT (native, through the runtime) -----------------------------------------------------------
def tensorrt_runner(spec, G: Any, inputs: Dict[str, np.ndarray], precision: str, root: Path,
                    max_batch: int, form: str = "decomposed") -> Runner:
    """The runtime's TensorRT backend on an engine built from a bundle of ``G`` in ``form`` (GPU machines only).

    The bundle carries one marker domain touching :data:`STAGES`, so its synthesis graph takes the
    same ``domain`` input as the other paths.

    Raises:
        Unavailable: TensorRT, cuda-python or a GPU missing; an export or build failure.
    """
    from gandapt.runtime.backends.trt import tensorrt_missing

    missing = tensorrt_missing()
    if missing:
        raise Unavailable("needs " + "; ".join(missing))
    from gandapt.checkpoint import save_native
    from gandapt.export.bundle import export_bundle
    from gandapt.export.engine import build_engine
    from gandapt.export.spec import ExportSpec
    from gandapt.pack import Domain, DomainPack
    from gandapt.runtime.backends import open_backend

    out = root / f"{spec.name}-trt-{form}-{precision}"
    try:
        model = save_native(root / f"{spec.name}.pt", G, force=True)
        first = G.config.layers()[0]
        marker = Domain("bench", {f"s_shift.{first.name}": np.full(first.in_channels, 1e-3, np.float32),
                                  f"in_scale.{first.name}": np.full(first.in_channels, 1.001, np.float32)})
        pack = DomainPack([marker], G.config)
        export_bundle(model, out, domains=pack, spec=ExportSpec(modconv=form, precision=precision), force=True, progress=False)
        build_engine(out, precision=precision, max_batch=max_batch, opt_batch=1, force=True)
        backend = open_backend("tensorrt", out, "synthesis")
    except GandaptError as err:
        raise Unavailable(f"TensorRT path failed: {one_line(err, 240)}") from None
    backend.bind("domain", inputs["domain"][:1])
    ws = inputs["ws"]

    def run() -> np.ndarray:
        return backend.infer({"ws": ws})["img"]

    run.backend = backend  # type: ignore[attr-defined]
    return run
