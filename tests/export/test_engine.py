"""TensorRT engine building: refusals without TensorRT/GPU, the build plumbing, and the TensorRT-RTX check.

What runs where:
- refusals, precision and plugin checks: everywhere (no TensorRT needed);
- ``check_with_tensorrt_rtx`` and the build plumbing with TensorRT-RTX standing in for ``tensorrt``:
  where the ``tensorrt-rtx-cu13`` wheel is installed (it compiles for SM89 without a GPU);
- a real ``tensorrt`` build and run: ``trt`` marker, only on a GPU machine with TensorRT.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import shutil
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from gandapt.checkpoint.native import save_native
from gandapt.config import GeneratorConfig
from gandapt.errors import GandaptError
from gandapt.export import engine as eng
from gandapt.export.bundle import export_bundle
from gandapt.export.engine import NO_TRT, build_engine, check_with_tensorrt_rtx, onnx_io_spec, plugin_ops
from gandapt.export.spec import ExportSpec
from gandapt.generator import Generator
from gandapt.layout import full_layout
from gandapt.pack import Domain, DomainPack

HAS_RTX = importlib.util.find_spec("tensorrt_rtx") is not None
needs_rtx = pytest.mark.skipif(not HAS_RTX, reason="needs the tensorrt-rtx-cu13 wheel (pip install tensorrt-rtx-cu13)")


def export_tiny_bundle(out: Path, **spec) -> Path:
    """A tiny generator with one two-stage domain, exported by ``export_bundle`` (decomposed: dynamic batch)."""
    torch.manual_seed(0)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=(16, 16, 16), mapping_layers=2)
    G = Generator(cfg).eval()
    save_native(out.parent / f"{out.name}.pt", G, force=True)
    rng = np.random.default_rng(0)
    entries = [next(e for e in full_layout(cfg).entries if e.stage == st) for st in ("w", "s")]
    domain = Domain("sketch", {e.name: (e.identity + 0.1 * rng.standard_normal(e.shape)).astype(np.float32)
                               for e in entries})
    pack = DomainPack([domain], cfg)
    return export_bundle(out.parent / f"{out.name}.pt", out, domains=pack, spec=ExportSpec(**spec), progress=False)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return export_tiny_bundle(tmp_path_factory.mktemp("engine") / "bundle")


def test_bundle_fixture_is_dynamic(bundle):
    spec = json.loads((bundle / "manifest.json").read_text())["graphs"]["synthesis"]
    assert spec["batch"] is None and [t["shape"][0] for t in spec["inputs"] + spec["outputs"]] == ["N"] * 3


def test_refuses_without_tensorrt(bundle, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(GandaptError) as e:
        build_engine(bundle)
    assert str(e.value) == NO_TRT and "\n" not in str(e.value)


def test_refuses_without_gpu_before_importing_tensorrt(bundle, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(eng, "has_cuda_driver", lambda: False)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # any import attempt would raise ImportError
    with pytest.raises(GandaptError, match="no NVIDIA GPU driver"):
        build_engine(bundle)


def test_bad_requests(bundle, tmp_path):
    with pytest.raises(GandaptError, match="unknown precision"):
        build_engine(bundle, precision="int8")
    with pytest.raises(GandaptError, match="no encoder graph"):
        build_engine(bundle, graph="encoder")
    (tmp_path / "synthesis.plan").write_bytes(b"old")
    shutil.copy(bundle / "synthesis.onnx", tmp_path / "synthesis.onnx")
    with pytest.raises(GandaptError, match="exists"):
        build_engine(tmp_path)
    half = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["ws"], ["img"])], "g",
        [helper.make_tensor_value_info("ws", TensorProto.FLOAT16, ["N", 4])],
        [helper.make_tensor_value_info("img", TensorProto.FLOAT16, ["N", 4])]))
    onnx.save(half, str(tmp_path / "synthesis.onnx"))
    with pytest.raises(GandaptError, match="fp16-typed"):
        build_engine(tmp_path, precision="fp32", force=True)


def test_plugin_nodes_need_registered_plugins(tmp_path):
    node = helper.make_node("ModulatedConv2d", ["x"], ["y"], domain="gandapt", plugin_namespace="gandapt")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("gandapt", 1)]),
              str(tmp_path / "p.onnx"))
    assert plugin_ops(tmp_path / "p.onnx") == ["gandapt::ModulatedConv2d"]
    assert eng.plugin_versions(tmp_path / "p.onnx") == ["gandapt::ModulatedConv2d@1"]  # the parser's default
    fake_trt = types.SimpleNamespace()  # no init_libnvinfer_plugins: only gandapt's own hook matters here
    eng._register_plugins(fake_trt, None, [])  # a plain graph builds without plugins (and without TensorRT)
    with pytest.raises(GandaptError, match="version '2' but this gandapt provides version '1'"):
        eng._register_plugins(fake_trt, None, ["gandapt::ModulatedConv2d@2"])  # an engine from another version
    with pytest.raises(GandaptError, match="gandapt does not provide"):
        eng._register_plugins(fake_trt, None, ["other::Op@1"])
    if importlib.util.find_spec("tensorrt") is None:
        with pytest.raises(GandaptError, match="TensorRT is not installed"):
            eng._register_plugins(fake_trt, None, ["gandapt::ModulatedConv2d@1"])
    if HAS_RTX:
        with pytest.raises(GandaptError, match="TensorRT-RTX has no plugins"):
            check_with_tensorrt_rtx(tmp_path / "p.onnx")


@needs_rtx
def test_tensorrt_rtx_parses_and_compiles_the_synthesis(bundle):
    report = check_with_tensorrt_rtx(bundle / "synthesis.onnx", max_batch=4)
    spec = onnx_io_spec(bundle / "synthesis.onnx")
    assert [(t["name"], t["dtype"], t["shape"]) for t in report["inputs"]] == \
        [(t["name"], t["dtype"], t["shape"]) for t in spec["inputs"]]
    assert report["outputs"][0]["shape"] == ["N", 3, 16, 16]
    assert report["profile"]["ws"]["max"][0] == 4 and report["plan_bytes"] > 0
    assert check_with_tensorrt_rtx(bundle / "mapping.onnx")["outputs"][0]["name"] == "ws"
    with pytest.raises(GandaptError, match="no target SM90"):
        check_with_tensorrt_rtx(bundle / "synthesis.onnx", compute_capability="SM90")


@needs_rtx
@pytest.mark.parametrize("spec", [{"precision": "fp16"}, {"modconv": "grouped", "batch": 2}], ids=["fp16", "grouped"])
def test_tensorrt_rtx_compiles_other_forms(tmp_path, spec):
    # fp16: the typed graph is what a strongly typed builder sees; grouped: computed conv weights, fixed batch.
    bundle = export_tiny_bundle(tmp_path / "bundle", **spec)
    report = check_with_tensorrt_rtx(bundle / "synthesis.onnx")
    assert report["plan_bytes"] > 0
    if "batch" in spec:
        assert report["profile"] == {} and report["inputs"][0]["shape"][0] == 2


@needs_rtx
def test_tensorrt_rtx_reports_parser_errors_on_one_line(tmp_path):
    g = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="det0")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "det.onnx"))
    with pytest.raises(GandaptError, match=r"cannot parse det.onnx: node 0 \(Det 'det0'\)") as e:
        check_with_tensorrt_rtx(tmp_path / "det.onnx")
    assert "\n" not in str(e.value)


def _rtx_as_tensorrt():
    """tensorrt_rtx dressed as ``tensorrt``: same Builder/OnnxParser API, configs pinned to SM89 (no GPU)."""
    import tensorrt_rtx as rtx

    class Builder:
        def __init__(self, logger):
            self._b = rtx.Builder(logger)

        def __getattr__(self, name):
            return getattr(self._b, name)

        def create_builder_config(self):
            config = self._b.create_builder_config()
            config.num_compute_capabilities = 1
            config.set_compute_capability(rtx.ComputeCapability.SM89, 0)
            return config

    fake = types.ModuleType("tensorrt")
    fake.__dict__.update({k: v for k, v in vars(rtx).items() if not k.startswith("__")})
    fake.__version__, fake.Builder = rtx.__version__, Builder
    fake.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # find_spec("tensorrt") sees it installed
    return fake


@needs_rtx
def test_build_plumbing_with_tensorrt_rtx_standing_in(bundle, tmp_path, monkeypatch):
    work = shutil.copytree(bundle, tmp_path / "b")
    monkeypatch.setitem(sys.modules, "tensorrt", _rtx_as_tensorrt())
    monkeypatch.setattr(eng, "has_cuda_driver", lambda: True)
    monkeypatch.setattr(eng, "_LOGGERS", {})
    cache = tmp_path / "cache" / "trt.timing"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # RTX: timing cache calls are no-ops
        plan = build_engine(work, min_batch=1, opt_batch=2, max_batch=4, timing_cache=cache)
    assert plan == work / "synthesis.plan" and plan.stat().st_size > 0 and cache.is_file()
    meta = json.loads((work / "synthesis.plan.json").read_text())
    assert meta["precision"] == "fp32" and meta["strongly_typed"] and meta["plugins"] == []
    assert meta["profile"]["domain"] == {"min": [1, meta["inputs"][1]["shape"][1]],
                                         "opt": [2, meta["inputs"][1]["shape"][1]],
                                         "max": [4, meta["inputs"][1]["shape"][1]]}
    assert [t["name"] for t in meta["inputs"]] == ["ws", "domain"] and meta["outputs"][0]["shape"][0] == "N"
    manifest = json.loads((work / "manifest.json").read_text())
    assert manifest["engine"]["synthesis"]["file"] == "synthesis.plan"
    assert manifest["engine"]["synthesis"]["batch"] == {"min": 1, "opt": 2, "max": 4}
    assert meta["bundle_manifest_sha256"] == eng.manifest_sha(manifest)  # the engine entry is not hashed
    assert manifest["graphs"] == json.loads((bundle / "manifest.json").read_text())["graphs"]
    with pytest.raises(GandaptError, match="no fp16 builder flag"):  # RTX, like TRT 11, is strongly typed only
        build_engine(work, precision="fp16", force=True)


@pytest.mark.trt
def test_real_tensorrt_engine_matches_onnxruntime(bundle, tmp_path):
    """On a GPU machine with TensorRT: build, rebuild with the timing cache, run and compare with ORT."""
    import onnxruntime as ort
    import tensorrt as trt

    work = shutil.copytree(bundle, tmp_path / "b")
    cache = tmp_path / "trt.timing"
    plan = build_engine(work, max_batch=4, timing_cache=cache)
    build_engine(work, max_batch=4, timing_cache=cache, force=True)  # second build reuses the cache
    meta = json.loads((work / "synthesis.plan.json").read_text())
    assert meta["tensorrt_version"] == trt.__version__ and meta["device"]["compute_capability"] != "unknown"
    engine = trt.Runtime(eng._logger(trt)).deserialize_cuda_engine(plan.read_bytes())
    ctx = engine.create_execution_context()
    feeds = {"ws": np.random.default_rng(0).standard_normal((3, *meta["inputs"][0]["shape"][1:])).astype(np.float32),
             "domain": np.ones((3, meta["inputs"][1]["shape"][1]), np.float32)}
    bufs = {k: torch.from_numpy(v).cuda() for k, v in feeds.items()}
    bufs["img"] = torch.empty((3, *meta["outputs"][0]["shape"][1:]), device="cuda")
    for name, t in bufs.items():
        if name in feeds:
            ctx.set_input_shape(name, tuple(t.shape))
        ctx.set_tensor_address(name, t.data_ptr())
    assert ctx.execute_async_v3(torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    ref = ort.InferenceSession(str(work / "synthesis.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    # TF32 convolutions are TensorRT's default on Ampere and newer: allow ~1e-2 at unit scale.
    assert np.abs(bufs["img"].cpu().numpy() - ref).max() < 1e-2 * max(1.0, float(np.abs(ref).max()))
