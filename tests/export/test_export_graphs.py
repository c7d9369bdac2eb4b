"""ONNX graphs of each modconv form and precision against torch in onnxruntime, at two batch sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gandapt.config import GeneratorConfig
from gandapt.errors import GandaptError
from gandapt.export.onnx_graphs import computed_conv_weights, export_graph, graph_io, prepared_generator
from gandapt.export.spec import ExportSpec
from gandapt.export.validate import reference_model, reference_outputs, session, validate_graph, validation_inputs
from gandapt.generator import Generator
from gandapt.layout import DomainLayout

CFG = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=8, channels=(16, 8), mapping_layers=2)
ALL = ("w", "s", "in", "out", "rank1", "rgb")
# What each (form, precision) graph bakes in: every stage once (fp32), cheaper subsets elsewhere
# (rank-1 terms are the slowest to export).
STAGES = {("decomposed", "fp32"): ALL, ("decomposed", "fp16"): ("w", "in", "out", "rgb"),
          ("grouped", "fp32"): ("s", "in"), ("grouped", "fp16"): ("in", "rank1")}


@pytest.fixture(scope="module")
def G() -> Generator:
    torch.manual_seed(0)
    G = Generator(CFG).eval()
    with torch.no_grad():  # non-zero noise strengths so the const noise buffers matter
        for layer in G.synthesis.layers:
            if hasattr(layer, "noise_strength"):
                layer.noise_strength.fill_(0.1)
    return G


@pytest.fixture(scope="module")
def exported(G, tmp_path_factory):
    """Export on first use, cached per (form, precision, graph, batch): ``(path, model, spec, layout, prepared)``."""
    cache = {}

    def get(form: str, precision: str, graph: str = "synthesis", batch: int = 2):
        key = (form, precision, graph, batch)
        if key not in cache:
            spec = ExportSpec(modconv=form, precision=precision, batch=batch)
            prepared, layout = prepared_generator(G, spec, STAGES[form, precision])
            path = tmp_path_factory.mktemp("g") / f"{graph}.onnx"
            cache[key] = (path, export_graph(prepared, graph, layout, spec, path), spec, layout, prepared)
        return cache[key]

    return get


def random_domains(layout: DomainLayout, k: int, seed: int = 0) -> np.ndarray:
    """``k`` non-identity vectors of ``layout`` (identity + noise on every entry)."""
    rng = np.random.default_rng(seed)
    return (layout.identity(k) + 0.1 * rng.standard_normal((k, layout.size))).astype(np.float32)


def run_both(path: Path, graph: str, G, layout, domains, batch: int, seed: int):
    feeds = validation_inputs(G, graph, layout, domains, batch, seed)
    got = session(path).run(None, feeds)[0]
    ref = reference_outputs(reference_model(G), graph, feeds, layout, None)
    return got, next(iter(ref.values())), feeds


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("graph", ["mapping", "synthesis"])
def test_decomposed_dynamic_batch(G, exported, graph: str, precision: str) -> None:
    path, model, spec, layout, _ = exported("decomposed", precision, graph)
    inputs, _ = graph_io(model)
    assert all(t["shape"][0] == "N" for t in inputs)
    if graph == "synthesis":
        assert computed_conv_weights(model) == []  # conv weights stay initializers / constants
        assert {t["name"]: t["shape"] for t in inputs}["domain"] == ["N", layout.size]
    domains = random_domains(layout, 3)
    for batch in (1, 4):  # neither is the trace batch (2)
        got, ref, feeds = run_both(path, graph, G, layout, domains, batch, seed=batch)
        assert got.dtype == np.float32  # IO stays float32 in both precisions
        assert np.abs(got - ref).max() <= spec.atol * max(1.0, np.abs(ref).max())
        if graph == "synthesis" and batch == 4:
            assert len(np.unique(feeds["domain"], axis=0)) == 4  # 3 domains + identity in one batch


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("batch", [1, 3])
def test_grouped_fixed_batch(G, exported, precision: str, batch: int) -> None:
    path, model, spec, layout, _ = exported("grouped", precision, "synthesis", batch)
    assert graph_io(model)[0][0]["shape"][0] == batch
    assert computed_conv_weights(model)  # per-sample kernels: that is the grouped form
    result = validate_graph(path, "synthesis", G, layout, random_domains(layout, 2), spec)
    assert result["batch"] == batch and result["domains"] == batch  # rows: a, b, identity
    got, ref, _ = run_both(path, "synthesis", G, layout, random_domains(layout, 2, 1), batch, seed=7)
    assert np.abs(got - ref).max() <= spec.atol * max(1.0, np.abs(ref).max())


def test_fp16_graph_is_typed_float16(exported) -> None:
    import onnx

    _, model, _, _, _ = exported("decomposed", "fp16")
    weights = [i for i in model.graph.initializer if i.name.endswith(".weight")]
    assert weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    assert any(n.op_type == "Conv" for n in model.graph.node)


def test_no_stages_means_no_domain_input(G, tmp_path: Path) -> None:
    spec = ExportSpec()
    prepared, layout = prepared_generator(G, spec, ())
    model = export_graph(prepared, "synthesis", layout, spec, tmp_path / "s.onnx")
    assert [t["name"] for t in graph_io(model)[0]] == ["ws"]
    result = validate_graph(tmp_path / "s.onnx", "synthesis", G, layout, np.zeros((0, 0), np.float32), spec)
    assert result["domains"] == 0 and result["max_abs_diff"]["img"] < 1e-4


def test_validation_failure_names_outputs(G, exported) -> None:
    path, _, spec, layout, _ = exported("decomposed", "fp32")
    strict = ExportSpec(tolerances={"fp32": 0.0})  # float reassociation alone exceeds 0
    with pytest.raises(GandaptError, match=r"^synthesis.onnx \(decomposed, fp32\) does not match torch at batch 3: "
                                           r"img max \|diff\| \S+ > 0 "):
        validate_graph(path, "synthesis", G, layout, random_domains(layout, 1), strict)


@pytest.mark.parametrize("graph,first", [("synthesis", "synthesis.b4.conv1"), ("mapping", "mapping.fc0")])
def test_fp16_failure_names_first_divergent_layer(G, exported, tmp_path: Path, graph: str, first: str) -> None:
    path, _, _, layout, prepared = exported("decomposed", "fp16", graph)
    spec = ExportSpec(precision="fp16", tolerances={"fp16": 0.0})  # nothing fp16 can meet

    def diagnose() -> Path:
        export_graph(prepared, graph, layout, spec, tmp_path / "probe.onnx", probe=True)
        return tmp_path / "probe.onnx"

    with pytest.raises(GandaptError) as err:
        validate_graph(path, graph, G, layout, random_domains(layout, 2), spec, diagnose=diagnose)
    message = str(err.value)
    assert "\n" not in message and "fp16" in message
    assert f"first divergent layer: {first} (max |diff|" in message  # the first layer already rounds
