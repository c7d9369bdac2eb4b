"""Triton Inference Server repository: configs parse as ``inference.ModelConfig`` and match the ONNX graphs.

The bundles here are small hand-built ONNX graphs with the exporter's IO names (z, truncation_psi → ws;
ws, domain → img) and a manifest in the exporter's form, so the test needs no torch export; the
server itself is not run (it needs Docker and, for TensorRT, a GPU).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from gandapt.errors import GandaptError
from gandapt.export.engine import onnx_io_spec
from gandapt.export.triton_repo import ENSEMBLE, MAPPING, SYNTHESIS, write_triton_repo

pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                          reason="needs tritonclient (pip install 'tritonclient[grpc]')")
text_format = pytest.importorskip("google.protobuf.text_format")

Z, NUM_WS, D, RES = 8, 4, 5, 2
_ONNX_TO_TRITON = {TensorProto.FLOAT: "TYPE_FP32", TensorProto.FLOAT16: "TYPE_FP16"}


def _const(name, values):  # int64_data, not raw: stays inline (ORT shape inference reads the axes)
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def _mapping(psi_shape):
    nodes = [
        helper.make_node("Reshape", ["truncation_psi", "c_n1"], ["psi2"]),              # [N, 1]
        helper.make_node("Mul", ["z", "psi2"], ["zz"]),
        helper.make_node("Unsqueeze", ["zz", "c_ax1"], ["u"]),                          # [N, 1, Z]
        helper.make_node("Expand", ["u", "c_ws"], ["ws"]),                              # [N, NUM_WS, Z]
    ]
    g = helper.make_graph(
        nodes, "mapping",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", Z]),
         helper.make_tensor_value_info("truncation_psi", TensorProto.FLOAT, psi_shape)],
        [helper.make_tensor_value_info("ws", TensorProto.FLOAT, ["N", NUM_WS, Z])],
        [_const("c_n1", [-1, 1]), _const("c_ax1", [1]), _const("c_ws", [1, NUM_WS, Z])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _synthesis(batch="N", dtype=TensorProto.FLOAT):
    nodes = [
        helper.make_node("ReduceSum", ["ws", "c_ax12"], ["s"], keepdims=0),          # [N]
        helper.make_node("Mul", ["domain", "c_w"], ["dw"]),                           # a weight, stored externally
        helper.make_node("ReduceSum", ["dw", "c_ax1"], ["d"], keepdims=0),           # [N]
        helper.make_node("Add", ["s", "d"], ["sd"]),
        helper.make_node("Reshape", ["sd", "c_n111"], ["r"]),
        helper.make_node("Expand", ["r", "c_img"], ["img"]),                         # [N, 3, RES, RES]
    ]
    g = helper.make_graph(
        nodes, "synthesis",
        [helper.make_tensor_value_info("ws", dtype, [batch, NUM_WS, Z]),
         helper.make_tensor_value_info("domain", dtype, [batch, D])],
        [helper.make_tensor_value_info("img", dtype, [batch, 3, RES, RES])],
        [_const("c_ax12", [1, 2]), _const("c_ax1", [1]), _const("c_n111", [-1, 1, 1, 1]),
         _const("c_img", [1, 3, RES, RES]),
         helper.make_tensor("c_w", dtype, [D], np.full(D, 0.5, helper.tensor_dtype_to_np_dtype(dtype)).tobytes(),
                            raw=True)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _bundle(path: Path, psi_shape=("N",), synthesis_batch="N", manifest=True, synthesis=True) -> Path:
    path.mkdir(parents=True)
    onnx.save(_mapping(list(psi_shape)), str(path / "mapping.onnx"))
    if synthesis:  # weights in an external file, as torch.export writes them
        onnx.save(_synthesis(synthesis_batch), str(path / "synthesis.onnx"), save_as_external_data=True,
                  location="synthesis.onnx.data", size_threshold=0)
    if manifest:  # the exporter's manifest form: graphs → {file, inputs, outputs, batch}
        graphs = {g: onnx_io_spec(path / f"{g}.onnx") for g in ("mapping", "synthesis")
                  if (path / f"{g}.onnx").exists()}
        (path / "manifest.json").write_text(json.dumps({"graphs": graphs, "precision": "fp32"}))
    return path


def _config(repo: Path, name: str):
    return text_format.Parse((repo / name / "config.pbtxt").read_text(), pb2.ModelConfig())


def _check_against_onnx(cfg, onnx_path: Path, max_batch: int) -> None:
    """config.pbtxt vs the graph's own IO: names, dtypes, dims without the batch axis, and a run."""
    graph = onnx.load(str(onnx_path)).graph
    for cfg_io, onnx_io in ((cfg.input, graph.input), (cfg.output, graph.output)):
        assert [t.name for t in cfg_io] == [v.name for v in onnx_io]
        for t, v in zip(cfg_io, onnx_io):
            tt = v.type.tensor_type
            assert pb2.DataType.Name(t.data_type) == _ONNX_TO_TRITON[tt.elem_type]
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
            api = dims[1:] if cfg.max_batch_size else dims
            if t.HasField("reshape"):
                assert list(t.dims) == [1] and list(t.reshape.shape) == api == []
            else:
                assert list(t.dims) == api
    assert cfg.max_batch_size == max_batch
    # Run the graph at a batch the configs allow, with shapes taken from the config only.
    n = 3 if cfg.max_batch_size else None
    feeds = {}
    for t in cfg.input:
        shape = list(t.reshape.shape) if t.HasField("reshape") else list(t.dims)
        shape = [n] + shape if n else [abs(d) for d in shape]
        feeds[t.name] = np.ones(shape, np.float32)
    outs = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, feeds)
    for t, o in zip(cfg.output, outs):
        assert list(o.shape[1:] if n else o.shape)[-len(t.dims):] == [abs(d) for d in t.dims]


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "onnx-fallback"])
def test_repo_configs_match_graphs(tmp_path, manifest):
    bundle = _bundle(tmp_path / "bundle", manifest=manifest)
    repo = write_triton_repo(bundle, tmp_path / "repo", max_batch=8)
    assert sorted(p.name for p in repo.iterdir()) == ["README.md", ENSEMBLE, MAPPING, SYNTHESIS]
    for name, graph in ((MAPPING, "mapping"), (SYNTHESIS, "synthesis")):
        cfg = _config(repo, name)
        assert cfg.name == name and cfg.platform == "onnxruntime_onnx"
        assert cfg.HasField("dynamic_batching")
        assert (repo / name / "1" / "model.onnx").read_bytes() == (bundle / f"{graph}.onnx").read_bytes()
        _check_against_onnx(cfg, repo / name / "1" / "model.onnx", 8)
    assert (repo / SYNTHESIS / "1" / "synthesis.onnx.data").is_file()  # external weights travel along
    psi = [t for t in _config(repo, MAPPING).input if t.name == "truncation_psi"][0]
    assert list(psi.dims) == [1] and list(psi.reshape.shape) == []  # [N] served as [N, 1]


def test_ensemble_chains_mapping_to_synthesis(tmp_path):
    repo = write_triton_repo(_bundle(tmp_path / "bundle"), tmp_path / "repo", max_batch=4)
    ens = _config(repo, ENSEMBLE)
    assert ens.platform == "ensemble" and ens.max_batch_size == 4
    assert [t.name for t in ens.input] == ["z", "truncation_psi", "domain"]
    assert [(t.name, list(t.dims)) for t in ens.output] == [("img", [3, RES, RES])]
    assert [list(t.dims) for t in ens.input] == [[Z], [1], [D]]
    assert not any(t.HasField("reshape") for t in ens.input)  # the mapping model reshapes [N, 1] → [N]
    m, s = ens.ensemble_scheduling.step
    assert (m.model_name, m.model_version, s.model_name) == (MAPPING, -1, SYNTHESIS)
    assert dict(m.input_map) == {"z": "z", "truncation_psi": "truncation_psi"}
    assert dict(m.output_map) == {"ws": "ws"}
    assert dict(s.input_map) == {"ws": "ws", "domain": "domain"}
    assert dict(s.output_map) == {"img": "img"}
    assert (repo / ENSEMBLE / "1").is_dir()
    readme = (repo / "README.md").read_text()
    assert "tritonserver --model-repository=/models" in readme and f'client.infer("{ENSEMBLE}"' in readme
    # The client snippet up to the request runs offline (the gRPC channel connects lazily).
    code = readme.split("```python\n")[1].split("result = client.infer")[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert [(i.name(), i.shape(), i.datatype()) for i in scope["inputs"]] == \
        [("z", [2, Z], "FP32"), ("truncation_psi", [2, 1], "FP32"), ("domain", [2, D], "FP32")]


def test_unbatchable_graphs_get_max_batch_size_zero(tmp_path):
    # A scalar psi and a fixed-batch (grouped modconv) synthesis cannot use Triton's batching.
    bundle = _bundle(tmp_path / "bundle", psi_shape=(), synthesis_batch=2)
    repo = write_triton_repo(bundle, tmp_path / "repo")
    mapping, synthesis, ens = (_config(repo, n) for n in (MAPPING, SYNTHESIS, ENSEMBLE))
    assert mapping.max_batch_size == synthesis.max_batch_size == ens.max_batch_size == 0
    assert not synthesis.HasField("dynamic_batching")
    assert [list(t.dims) for t in synthesis.input] == [[2, NUM_WS, Z], [2, D]]
    assert [list(t.dims) for t in mapping.input] == [[-1, Z], [1]]
    _check_against_onnx(synthesis, repo / SYNTHESIS / "1" / "model.onnx", 0)


def test_tensorrt_platform_uses_the_bundle_engine(tmp_path):
    bundle = _bundle(tmp_path / "bundle")
    (bundle / "synthesis.plan").write_bytes(b"plan")  # the repo writer copies the plan, never opens it
    io = {"inputs": [{"name": "ws", "dtype": "float16", "shape": ["N", NUM_WS, Z]},
                     {"name": "domain", "dtype": "float16", "shape": ["N", D]}],
          "outputs": [{"name": "img", "dtype": "float16", "shape": ["N", 3, RES, RES]}]}
    (bundle / "synthesis.plan.json").write_text(json.dumps(io))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["engine"] = {"synthesis": {"file": "synthesis.plan", "metadata": "synthesis.plan.json",
                                        "batch": {"min": 1, "opt": 1, "max": 8}}}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    repo = write_triton_repo(bundle, tmp_path / "repo", platforms=("onnxruntime", "tensorrt"))
    trt = _config(repo, SYNTHESIS + "_trt")
    assert trt.platform == "tensorrt_plan" and trt.max_batch_size == 8
    assert [pb2.DataType.Name(t.data_type) for t in trt.input] == ["TYPE_FP16", "TYPE_FP16"]
    assert (repo / (SYNTHESIS + "_trt") / "1" / "model.plan").read_bytes() == b"plan"
    assert _config(repo, ENSEMBLE).ensemble_scheduling.step[1].model_name == SYNTHESIS + "_trt"
    assert (repo / SYNTHESIS / "config.pbtxt").is_file()  # onnxruntime copy kept alongside
    with pytest.raises(GandaptError, match="profile max 8"):
        write_triton_repo(bundle, tmp_path / "repo2", platforms=("tensorrt",), max_batch=16)


def test_bad_input(tmp_path):
    bundle = _bundle(tmp_path / "bundle")
    repo = write_triton_repo(bundle, tmp_path / "repo")
    with pytest.raises(GandaptError, match="exists"):
        write_triton_repo(bundle, repo)
    (repo / "other_model").mkdir()
    write_triton_repo(bundle, repo, force=True)  # replaces gandapt's models, keeps the others
    assert (repo / "other_model").is_dir() and (repo / MAPPING / "config.pbtxt").is_file()
    with pytest.raises(GandaptError, match="unknown Triton platform"):
        write_triton_repo(bundle, tmp_path / "r2", platforms=("tensorflow",))
    with pytest.raises(GandaptError, match="no TensorRT engine"):
        write_triton_repo(bundle, tmp_path / "r3", platforms=("tensorrt",))
    with pytest.raises(GandaptError, match="no synthesis graph"):
        write_triton_repo(_bundle(tmp_path / "b2", synthesis=False, manifest=False), tmp_path / "r4")
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_repo_from_an_exported_bundle(tmp_path):
    """The real exporter's bundle: every config matches its graph and the ensemble chains by name."""
    import torch

    from gandapt.checkpoint.native import save_native
    from gandapt.config import GeneratorConfig
    from gandapt.export.bundle import export_bundle
    from gandapt.generator import Generator
    from gandapt.layout import full_layout
    from gandapt.pack import Domain, DomainPack

    torch.manual_seed(0)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=(16, 16, 16), mapping_layers=2)
    save_native(tmp_path / "model.pt", Generator(cfg).eval())
    entry = next(e for e in full_layout(cfg).entries if e.stage == "s")
    pack = DomainPack([Domain("sketch", {entry.name: np.full(entry.shape, 1.1, np.float32)})], cfg)
    bundle = export_bundle(tmp_path / "model.pt", tmp_path / "bundle", domains=pack, progress=False)
    repo = write_triton_repo(bundle, tmp_path / "repo", max_batch=4)
    for name, graph in ((MAPPING, "mapping"), (SYNTHESIS, "synthesis")):
        _check_against_onnx(_config(repo, name), repo / name / "1" / "model.onnx", 4)
    ens = _config(repo, ENSEMBLE)
    manifest = json.loads((bundle / "manifest.json").read_text())
    ens_inputs = [t["name"] for t in manifest["graphs"]["mapping"]["inputs"]] + \
        [t["name"] for t in manifest["graphs"]["synthesis"]["inputs"][1:]]
    assert [t.name for t in ens.input] == ens_inputs
    m, s = ens.ensemble_scheduling.step
    assert list(m.output_map.values()) == [s.input_map[manifest["graphs"]["synthesis"]["inputs"][0]["name"]]]
