"""The plugin-form ONNX graph: gandapt::ModulatedConv2d nodes, run on CPU through onnxruntime-extensions,
against the decomposed graph and torch; the node's contract (attributes, versions, input order)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from gandapt.config import GeneratorConfig
from gandapt.errors import GandaptError
from gandapt.export.engine import plugin_versions
from gandapt.export.onnx_graphs import export_graph, prepared_generator
from gandapt.export.spec import ExportSpec
from gandapt.export.validate import reference_model, reference_outputs, session, validate_graph, validation_inputs
from gandapt.generator import Generator
from gandapt.plugins_trt.modulated_conv.spec import INPUT_NAMES, Attributes, check_shapes, check_version

pytest.importorskip("onnxruntime_extensions")
CFG = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=8, channels=(16, 8), mapping_layers=2, conv_clamp=2.0)
STAGES = ("s", "in", "out", "rank1")  # every stage the node takes (W and ToRGB stages stay outside it)


@pytest.fixture(scope="module")
def G() -> Generator:
    torch.manual_seed(0)
    G = Generator(CFG).eval()
    with torch.no_grad():
        for layer in G.synthesis.layers:
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.1)
    return G


@pytest.fixture(scope="module")
def graphs(G, tmp_path_factory):
    """Plugin and decomposed synthesis graphs with every stage: ``{form: (path, model, layout)}``."""
    out = {}
    for form in ("plugin", "decomposed"):
        spec = ExportSpec(modconv=form)
        prepared, layout = prepared_generator(G, spec, STAGES)
        path = tmp_path_factory.mktemp(form) / "synthesis.onnx"
        out[form] = (path, export_graph(prepared, "synthesis", layout, spec, path), layout)
    return out


def test_plugin_graph_has_one_node_per_conv(graphs, G) -> None:
    _, model, _ = graphs["plugin"]
    nodes = [n for n in model.graph.node if n.domain == "gandapt"]
    convs = [s for s in CFG.layers() if not s.is_torgb]
    assert [n.op_type for n in nodes] == ["ModulatedConv2d"] * len(convs)
    assert {(o.domain, o.version) for o in model.opset_import} >= {("gandapt", 1)}
    from onnx import helper

    for node, spec in zip(nodes, convs):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert len(node.input) == len(INPUT_NAMES)
        assert attrs["up"] == int(spec.up) and attrs["demodulate"] == 1 and attrs["rank1"] == 1
        assert attrs["activation"] == b"lrelu" and attrs["clamp"] == 2.0 and abs(attrs["gain"] - 2**0.5) < 1e-6
        assert attrs["plugin_namespace"] == b"gandapt" and attrs["plugin_version"] == b"1" and attrs["aot"] == 1
        inits = {i.name: list(i.dims) for i in model.graph.initializer}
        assert node.input[1] == f"synthesis.{spec.name}.weight"  # a constant, the conv weight of this layer
        assert inits[node.input[9]] == [spec.out_channels]  # the bias (equal zero biases may share one initializer)
    assert plugin_versions(graphs["plugin"][0]) == ["gandapt::ModulatedConv2d@1"]
    assert not any(n.op_type in ("Conv", "ConvTranspose") and "conv" in n.name for n in nodes)


def test_plugin_graph_matches_decomposed_and_torch(graphs, G) -> None:
    path, _, layout = graphs["plugin"]
    rng = np.random.default_rng(0)
    domains = (layout.identity(2) + 0.1 * rng.standard_normal((2, layout.size))).astype(np.float32)
    report = validate_graph(path, "synthesis", G, layout, domains, ExportSpec(modconv="plugin"))  # batch 3 ≠ trace 2
    assert report["batch"] == 3 and report["max_abs_diff"]["img"] < 1e-4
    feeds = validation_inputs(G, "synthesis", layout, domains, 5, seed=7)
    plug = session(path).run(None, feeds)[0]
    dec = session(graphs["decomposed"][0]).run(None, feeds)[0]
    ref = reference_outputs(reference_model(G), "synthesis", feeds, layout, None)["img"]
    assert plug.shape == dec.shape == ref.shape == (5, 3, 8, 8)
    assert np.abs(plug - dec).max() < 1e-4 and np.abs(plug - ref).max() < 1e-4


def test_wrong_input_order_is_caught(graphs, G, tmp_path) -> None:
    """Swapping two same-shaped inputs of one node (in_scale, r1_in) changes the output: the CPU
    reference really reads the inputs in the documented order."""
    import onnx

    path, model, layout = graphs["plugin"]
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    node = next(n for n in bad.graph.node if n.domain == "gandapt")
    node.input[3], node.input[6] = node.input[6], node.input[3]
    onnx.save(bad, str(tmp_path / "bad.onnx"))
    rng = np.random.default_rng(1)
    domains = (layout.identity(1) + 0.1 * rng.standard_normal((1, layout.size))).astype(np.float32)
    feeds = validation_inputs(G, "synthesis", layout, domains, 2, seed=3)
    good = session(path).run(None, feeds)[0]
    assert np.abs(session(tmp_path / "bad.onnx").run(None, feeds)[0] - good).max() > 1e-3


@pytest.mark.parametrize("attrs,message", [
    ({"up": 2}, "up must be 0 or 1"),
    ({"activation": "relu"}, "activation must be one of lrelu, linear"),
    ({"gain": float("nan")}, "gain must be a finite number"),
    ({"plugin_version": "2"}, "version '2' but this gandapt provides version '1'"),
    ({"plugin_namespace": "other"}, "plugin_namespace 'other'"),
    ({"alpha": 0.1}, "has no attribute 'alpha'"),
])
def test_bad_attributes(attrs, message) -> None:
    with pytest.raises(GandaptError, match=message):
        Attributes.from_mapping(attrs)


def test_shape_range() -> None:
    shapes = {"x": (2, 4, 8, 8), "weight": (6, 4, 3, 3), "styles": (2, 4), "in_scale": (1, 4), "out_scale": (2, 6),
              "r1_out": (1, 6), "r1_in": (1, 4), "r1_k": (1, 3, 3), "noise": (1, 1, 16, 16), "bias": (6,)}
    assert check_shapes(shapes, Attributes(up=1)) == (2, 6, 16, 16)
    with pytest.raises(GandaptError, match=r"noise has shape \[1, 1, 16, 16\]"):
        check_shapes(shapes, Attributes(up=0))
    with pytest.raises(GandaptError, match="3x3 kernels only"):
        check_shapes({**shapes, "weight": (6, 4, 5, 5)}, Attributes(up=1))
    with pytest.raises(GandaptError, match="int32 indexing"):
        check_shapes({**shapes, "x": (70000, 4, 128, 128), "styles": (70000, 4), "out_scale": (1, 6),
                      "noise": (1, 1, 256, 256)},
                     Attributes(up=1))
    assert check_version(b"1") == "1"


def test_plugin_form_cannot_be_fp16() -> None:
    with pytest.raises(GandaptError, match="plugin form is exported in fp32 only"):
        ExportSpec(modconv="plugin", precision="fp16")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_registration_without_tensorrt_is_one_line() -> None:
    from gandapt.plugins_trt import register_plugins

    with pytest.raises(GandaptError, match=r"TensorRT is not installed: pip install 'gandapt\[trt\]'"):
        register_plugins(["gandapt::ModulatedConv2d@1"])
    with pytest.raises(GandaptError, match="provides version '1'"):
        register_plugins(["gandapt::ModulatedConv2d@7"])  # checked before TensorRT is needed


def test_benchmark_is_import_safe_and_refuses_without_cuda(tmp_path) -> None:
    from gandapt.plugins_trt.modulated_conv.bench_gpu import layer_shapes, run_kernel_benchmark

    assert layer_shapes(256)[:3] == [(4, 512, 512, 0), (8, 512, 512, 1), (8, 512, 512, 0)]
    assert layer_shapes(1024)[-1] == (1024, 32, 32, 0) and len(layer_shapes(1024)) == 17
    if not torch.cuda.is_available():
        with pytest.raises(GandaptError, match="needs a CUDA GPU"):
            run_kernel_benchmark(out=tmp_path / "x.json")
        assert not (tmp_path / "x.json").exists()
