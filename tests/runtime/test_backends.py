"""Backends: parity with the torch reference, in-place domain switching, torch-free onnxruntime, TensorRT refusals.

TensorRT cannot run on the CI machine (no GPU): besides the refusal messages, its buffer and binding
logic runs once against stand-ins for ``tensorrt`` and cuda-python that execute the bundle's ONNX
graph in onnxruntime on host memory (:class:`FakeEngine`, :class:`FakeCudart`).
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
import types

import numpy as np
import pytest

from gandapt.errors import GandaptError
from gandapt.export.manifest import update_manifest
from gandapt.runtime.backends import NAMES, available_backends, open_backend
from gandapt.runtime.bundle import open_bundle

BATCHES = (1, 3)
DOMAINS = ("warm", "bold", "base")


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return open_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def reference(bundle):
    """The torch backend of every graph of the bundle, opened once."""
    if "torch" not in available_backends(bundle):
        pytest.skip("the torch reference needs torch and the bundle's source model")
    refs = {g: open_backend("torch", bundle, g) for g in bundle.manifest.graphs}
    yield refs
    for r in refs.values():
        r.close()


def inputs(bundle, graph: str, batch: int, seed: int = 0) -> dict:
    """Float32 feeds for ``graph`` at ``batch`` (synthesis: ws only; the domain is bound)."""
    rng = np.random.default_rng(seed)
    cfg = bundle.manifest.config
    if graph == "mapping":
        return {"z": rng.standard_normal((batch, cfg["z_dim"])).astype(np.float32),
                "truncation_psi": np.linspace(0.5, 1.0, batch).astype(np.float32)}
    if graph == "synthesis":
        num_ws = bundle.manifest.io_spec("synthesis").input("ws").shape[1]
        return {"ws": rng.standard_normal((batch, num_ws, cfg["w_dim"])).astype(np.float32)}
    res = cfg["img_resolution"]
    return {"image": rng.uniform(-1, 1, (batch, 3, res, res)).astype(np.float32)}


def assert_close(got: dict, want: dict, rtol: float, what: str) -> None:
    assert got.keys() == want.keys(), what
    for name, ref in want.items():
        assert got[name].dtype == np.float32 and got[name].shape == ref.shape, f"{what}: {name}"
        limit = rtol * max(1.0, float(np.abs(ref).max()))  # relative to the output's scale
        diff = float(np.abs(got[name] - ref).max())
        assert diff <= limit, f"{what}: {name} max |diff| {diff:.3g} > {limit:.3g}"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("name", NAMES)
def test_every_available_backend_matches_torch(bundle, reference, name):
    if name not in available_backends(bundle):
        pytest.skip(f"{name} cannot run here")
    checked = 0
    for graph in bundle.manifest.graphs:
        if name == "tensorrt" and bundle.engine_file(graph) is None:
            continue  # engines are per graph; the bundle may have only synthesis
        fp16 = (bundle.manifest.engine or {}).get(graph, {}).get("precision") == "fp16" or \
            bundle.manifest.precision == "fp16"
        rtol = 3e-2 if fp16 else 1e-4
        with open_backend(name, bundle, graph, threads=1) as backend:
            assert (backend.name, backend.graph) == (name, graph)
            for batch in BATCHES:
                feed = inputs(bundle, graph, batch, seed=batch)
                if graph != "synthesis" or not bundle.domain_size:
                    assert_close(backend.infer(feed), reference[graph].infer(feed), rtol, f"{graph} batch {batch}")
                    checked += 1
                    continue
                for i, domain in enumerate(DOMAINS):  # one [1, D] row bound for the whole batch
                    vec = bundle.vector(domain)[None]
                    for b in (backend, reference[graph]):
                        b.bind("domain", vec) if i == 0 else b.update("domain", vec)
                    want = reference[graph].infer(feed)
                    assert_close(backend.infer(feed), want, rtol, f"{graph} {domain} batch {batch}")
                    checked += 1
    assert checked >= 2 * (len(DOMAINS) + 1)


@pytest.mark.parametrize("name", NAMES)
def test_update_switches_domain_in_place(bundle, name):
    if name not in available_backends(bundle) or (name == "tensorrt" and not bundle.engine_file("synthesis")):
        pytest.skip(f"{name} cannot run synthesis here")
    ws = inputs(bundle, "synthesis", 2)
    with open_backend(name, bundle, "synthesis", threads=1) as backend:
        backend.bind("domain", bundle.vector("warm"))  # [D] is taken as one row
        session = backend.instance_id
        warm = backend.infer(ws)["img"]
        backend.update("domain", bundle.vector("bold")[None])
        bold = backend.infer(ws)["img"]
        assert backend.instance_id == session
        assert np.abs(bold - warm).max() > 1e-2, "update() did not reach the graph"
        assert backend.bound == ("domain",) and backend.last_latency_ms > 0
        # A fed domain overrides the bound one for that call only.
        fed = backend.infer({**ws, "domain": np.repeat(bundle.vector("warm")[None], 2, axis=0)})["img"]
        np.testing.assert_allclose(fed, warm, rtol=0, atol=1e-5)
        np.testing.assert_allclose(backend.infer(ws)["img"], bold, rtol=0, atol=1e-5)
        for bad in (np.zeros([1, bundle.domain_size + 1], np.float32), np.zeros([2, bundle.domain_size], np.float32)):
            with pytest.raises(GandaptError) as e:
                backend.update("domain", bad)
            assert "\n" not in str(e.value) and "update('domain')" in str(e.value)
        with pytest.raises(GandaptError, match="not bound"):
            backend.update("ws", ws["ws"])
        assert backend.instance_id == session


def test_bad_calls_are_one_line_errors(bundle):
    def fails(call, text):
        with pytest.raises(GandaptError) as e:
            call()
        assert text in str(e.value) and "\n" not in str(e.value)

    with open_backend("onnxruntime", bundle, "synthesis") as backend:
        fails(lambda: backend.infer(inputs(bundle, "synthesis", 1)), "no value for input 'domain'")
        fails(lambda: backend.bind("dommain", bundle.vector("warm")), "its inputs are ws, domain")
        fails(lambda: backend.bind("domain", np.zeros([3, 7], np.float32)), "takes [N, ")
        fails(lambda: backend.infer({"ws": np.zeros([2, 8], np.float32)}), "has shape [2, 8]")
        backend.bind("domain", np.zeros([2, bundle.domain_size], np.float32))  # one row per sample
        fails(lambda: backend.infer(inputs(bundle, "synthesis", 3)), "has 2 rows but this call's batch is 3")
        assert backend.infer(inputs(bundle, "synthesis", 2))["img"].shape[0] == 2
    with pytest.raises(GandaptError, match="closed"):
        backend.infer(inputs(bundle, "synthesis", 2))
    with pytest.raises(GandaptError, match="unknown backend 'tensorflow'; use auto, onnxruntime"):
        open_backend("tensorflow", bundle, "synthesis")
    with open_backend("onnxruntime", bundle, "mapping") as backend:
        with pytest.raises(GandaptError, match="no value for input 'truncation_psi'"):
            backend.infer({"z": inputs(bundle, "mapping", 1)["z"]})


def test_bound_inference_allocates_nothing_and_never_rebuilds(bundle):
    """A micro-check, not a benchmark: 200 calls with a domain switch each, memory and session fixed."""
    vectors = [bundle.vector(d)[None] for d in DOMAINS]
    ws = inputs(bundle, "synthesis", 1)
    with open_backend("onnxruntime", bundle, "synthesis", threads=1) as backend:
        backend.bind("domain", vectors[0])
        session = backend.instance_id
        for i in range(20):  # warm up: arena, slot, output buffers
            backend.update("domain", vectors[i % 3])
            backend.infer(ws)
        rss = rss_bytes()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(200):
            backend.update("domain", vectors[i % 3])
            backend.infer(ws)
            assert backend.instance_id == session
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    assert grown < 64 * 1024, f"Python-side memory grew {grown} B over 200 calls"
    assert rss_bytes() - rss < 32 << 20, "process memory grew over 32 MiB over 200 calls"


def test_onnxruntime_path_imports_no_torch(tiny_bundle):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        from gandapt.runtime.backends import available_backends, open_backend
        from gandapt.runtime.bundle import open_bundle
        bundle = open_bundle({str(tiny_bundle)!r})
        assert available_backends(bundle) == ["onnxruntime"], available_backends(bundle)
        with open_backend("auto", {str(tiny_bundle)!r}, "synthesis", threads=1) as backend:
            backend.bind("domain", bundle.vector("warm"))
            img = backend.infer({{"ws": np.zeros([2, 8, 32], np.float32)}})["img"]
        assert backend.name == "onnxruntime" and img.shape == (2, 3, 32, 32)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorrt"))
        assert loaded == ["torch"], loaded  # only our None placeholder
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_tensorrt_unavailable_is_one_line(bundle):
    if "tensorrt" in available_backends(bundle):
        pytest.skip("TensorRT can run here")
    with pytest.raises(GandaptError) as e:
        open_backend("tensorrt", bundle, "synthesis")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("the tensorrt backend needs ") and "--backend onnxruntime" in msg
    assert "export with --engine on a GPU machine" in msg  # the tiny bundle has no engine
    assert "tensorrt" not in available_backends(bundle)


def test_auto_picks_onnxruntime_without_tensorrt(bundle):
    if "tensorrt" in available_backends(bundle):
        pytest.skip("TensorRT can run here")
    with open_backend("auto", bundle, "mapping") as backend:
        assert backend.name == "onnxruntime"


def test_torch_backend_without_source_model(tiny_bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    update_manifest(copy, source={**manifest["source"], "path": str(tmp_path / "gone.pt")})
    assert "torch" not in available_backends(copy)
    with pytest.raises(GandaptError) as e:
        open_backend("torch", copy, "synthesis")
    assert str(e.value) == f"the torch backend needs the source model {tmp_path / 'gone.pt'}; use --backend onnxruntime"


@pytest.mark.parametrize("entry, meta, message", [
    ({"tensorrt_version": "10.8.0"}, {}, "built with TensorRT 10.8.0 but this machine has TensorRT 10.9.0"),
    ({"compute_capability": "8.9"}, {"device": {"name": "NVIDIA L4"}}, "built for NVIDIA L4 (compute capability 8.9)"),
    ({}, {"onnx_sha256": "0" * 64, "onnx": "synthesis.onnx"}, "built from another synthesis.onnx"),
])
def test_engine_for_another_machine_is_refused(entry, meta, message):
    from gandapt.runtime.backends.trt import check_engine

    with pytest.raises(GandaptError) as e:
        check_engine({"file": "synthesis.plan", **entry}, meta, "f" * 64, "10.9.0", "9.0")
    assert message in str(e.value) and "gandapt-export --engine" in str(e.value) and "\n" not in str(e.value)
    check_engine({"file": "synthesis.plan", "tensorrt_version": "10.9.0", "compute_capability": "9.0"},
                 {"onnx_sha256": "f" * 64}, "f" * 64, "10.9.0", "9.0")  # a matching engine passes


# ---- TensorRT stand-ins: the engine is the ONNX graph, device memory is host memory --------------
class FakeCudart:
    """The slice of ``cuda.bindings.runtime`` the backend uses, on host memory."""

    cudaError_t = types.SimpleNamespace(cudaSuccess=0)
    cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)

    def __init__(self):
        self.blocks = {}
        self.uploads = 0

    def cudaMalloc(self, n):
        buf = ctypes.create_string_buffer(n)
        self.blocks[ctypes.addressof(buf)] = buf
        return 0, ctypes.addressof(buf)

    cudaMallocHost = cudaMalloc

    def cudaFree(self, ptr):
        self.blocks.pop(ptr)
        return (0,)

    cudaFreeHost = cudaFree

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        assert dst in self.blocks and src in self.blocks
        self.uploads += kind == 1
        ctypes.memmove(dst, src, n)
        return (0,)

    def cudaStreamCreate(self):
        return 0, 0

    def cudaStreamSynchronize(self, stream):
        return (0,)

    cudaStreamDestroy = cudaStreamSynchronize

    def cudaGetDevice(self):
        return 0, 0

    def cudaGetDeviceProperties(self, device):
        return 0, types.SimpleNamespace(major=9, minor=0, name=b"Fake H100")


class FakeEngine:
    """An ``ICudaEngine`` 'deserialized' from ONNX bytes: build-time shapes (-1 for the batch), profile 1..4."""

    MAX_BATCH = 4

    def __init__(self, blob):
        import onnxruntime as ort

        self.session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        inputs = {v.name for v in self.session.get_inputs()}
        self.shapes = {v.name: tuple(-1 if isinstance(d, str) else d for d in v.shape)
                       for v in [*self.session.get_inputs(), *self.session.get_outputs()]}
        self.modes = {n: "INPUT" if n in inputs else "OUTPUT" for n in self.shapes}
        self.names = list(self.shapes)
        self.num_io_tensors = len(self.names)

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return self.modes[name]

    def get_tensor_dtype(self, name):
        return np.float32

    def get_tensor_shape(self, name):
        return self.shapes[name]

    def get_tensor_profile_shape(self, name, profile):
        dims = self.shapes[name][1:]
        return [(1, *dims), (1, *dims), (self.MAX_BATCH, *dims)]

    def create_execution_context(self):
        return FakeContext(self)


class FakeContext:
    """An ``IExecutionContext``: current input shapes, tensor addresses, and a run that reads and
    writes those addresses."""

    def __init__(self, engine):
        self.engine, self.inputs, self.addresses = engine, {}, {}

    def set_input_shape(self, name, shape):
        assert self.engine.modes[name] == "INPUT" and shape[0] <= FakeEngine.MAX_BATCH
        self.inputs[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        if name in self.inputs:
            return self.inputs[name]
        return (next(iter(self.inputs.values()))[0],) + self.engine.shapes[name][1:]

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def execute_async_v3(self, stream):
        def view(name, shape):
            n = int(np.prod(shape)) * 4
            return np.frombuffer((ctypes.c_char * n).from_address(self.addresses[name]), np.float32).reshape(shape)

        feeds = {n: view(n, shape).copy() for n, shape in self.inputs.items()}
        names = [o.name for o in self.engine.session.get_outputs()]
        for name, value in zip(names, self.engine.session.run(None, feeds)):
            view(name, value.shape)[...] = value
        return True


def fake_tensorrt():
    class Logger:
        Severity = types.SimpleNamespace(ERROR=0, INTERNAL_ERROR=1, WARNING=2)

        def __init__(self):
            pass

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            return FakeEngine(bytes(blob))

    return types.SimpleNamespace(__name__="tensorrt", __version__="10.9.0", ILogger=Logger, Runtime=Runtime,
                                 TensorIOMode=types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT"),
                                 nptype=lambda dtype: dtype)


@pytest.fixture
def fake_trt_bundle(tiny_bundle, tmp_path, monkeypatch):
    """A copy of the tiny bundle with a 'synthesis engine' (its ONNX bytes), run by the stand-ins."""
    import gandapt.export.engine as engine_mod
    import gandapt.runtime.backends.trt as trt_mod

    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    shutil.copy(copy / "synthesis.onnx", copy / "synthesis.plan")
    (copy / "synthesis.plan.json").write_text(json.dumps({
        "onnx": "synthesis.onnx", "onnx_sha256": manifest["graphs"]["synthesis"]["sha256"],
        "device": {"name": "Fake H100", "compute_capability": "9.0"}, "plugins": []}))
    update_manifest(copy, engine={"synthesis": {
        "file": "synthesis.plan", "metadata": "synthesis.plan.json", "precision": "fp32",
        "tensorrt_version": "10.9.0", "compute_capability": "9.0", "batch": {"min": 1, "opt": 1, "max": 4}}})
    cudart = FakeCudart()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    monkeypatch.setattr(engine_mod, "_LOGGERS", {})  # keep the stand-in logger out of the real cache
    monkeypatch.setattr(trt_mod, "tensorrt_missing", lambda bundle=None, graph=None: [])
    monkeypatch.setattr(trt_mod, "cudart_module", lambda: cudart)
    return open_bundle(copy), cudart


def test_tensorrt_buffers_and_bindings_with_stand_ins(fake_trt_bundle):
    bundle, cudart = fake_trt_bundle
    with open_backend("onnxruntime", bundle, "synthesis") as ref, open_backend("tensorrt", bundle, "synthesis") as trt:
        assert trt.name == "tensorrt"
        engine = trt.instance_id
        for i, domain in enumerate(DOMAINS):
            for b in (ref, trt):
                b.bind("domain", bundle.vector(domain)) if i == 0 else b.update("domain", bundle.vector(domain))
            for batch in (1, 3, 4):
                feed = inputs(bundle, "synthesis", batch, seed=batch)
                assert_close(trt.infer(feed), ref.infer(feed), 1e-5, f"{domain} batch {batch}")
        feed = inputs(bundle, "synthesis", 2)
        bound = trt.infer(feed)["img"]
        uploads = cudart.uploads
        trt.infer(feed)
        assert cudart.uploads == uploads + 1  # only ws: the bound domain stays on the device
        warm = np.repeat(bundle.vector("warm")[None], 2, axis=0)
        assert_close(trt.infer({**feed, "domain": warm}), ref.infer({**feed, "domain": warm}), 1e-5, "fed domain")
        np.testing.assert_array_equal(trt.infer(feed)["img"], bound)  # the bound domain is back
        with pytest.raises(GandaptError, match="runs batches 1 to 4, not 5"):
            trt.infer(inputs(bundle, "synthesis", 5))
        assert trt.instance_id == engine
    assert not cudart.blocks, "close() left device or pinned buffers allocated"
