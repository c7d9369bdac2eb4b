"""The TensorRT plugin on a GPU machine with TensorRT >= 10.9 (skipped elsewhere; never run in this repo's CI).

Builds a plugin-form synthesis graph into an engine twice (the JIT ``impl`` and the ahead-of-time
``aot_impl``) and compares both with torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.trt, pytest.mark.gpu]


def test_plugin_registers() -> None:
    import tensorrt.plugin as trtp  # noqa: F401

    from gandapt.plugins_trt import register_plugins

    register_plugins()
    register_plugins()  # idempotent


@pytest.mark.parametrize("aot", [True, False])
def test_engine_with_plugin_matches_torch(tmp_path: Path, aot: bool) -> None:
    import onnx

    from gandapt.config import GeneratorConfig
    from gandapt.export.engine import build_engine
    from gandapt.export.onnx_graphs import export_graph, prepared_generator
    from gandapt.export.spec import ExportSpec
    from gandapt.export.validate import reference_model, reference_outputs, validation_inputs
    from gandapt.generator import Generator

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=(32, 16, 16), mapping_layers=2)).eval()
    spec = ExportSpec(modconv="plugin")
    prepared, layout = prepared_generator(G, spec, ("in", "out", "rank1"))
    path = tmp_path / "synthesis.onnx"
    model = export_graph(prepared, "synthesis", layout, spec, path)
    if not aot:
        for node in model.graph.node:
            for a in node.attribute:
                if a.name == "aot":
                    a.i = 0
        onnx.save(model, str(path))
    plan = build_engine(tmp_path, max_batch=4, force=True)
    import tensorrt as trt

    from gandapt.export.engine import _logger

    rng = np.random.default_rng(0)
    domains = (layout.identity(2) + 0.1 * rng.standard_normal((2, layout.size))).astype(np.float32)
    feeds = validation_inputs(G, "synthesis", layout, domains, 3, seed=1)
    want = reference_outputs(reference_model(G), "synthesis", feeds, layout, None)["img"]
    engine = trt.Runtime(_logger(trt)).deserialize_cuda_engine(plan.read_bytes())
    ctx = engine.create_execution_context()
    inputs = {k: torch.from_numpy(v).cuda() for k, v in feeds.items()}
    for name, t in inputs.items():
        ctx.set_input_shape(name, tuple(t.shape))
        ctx.set_tensor_address(name, t.data_ptr())
    got = torch.empty(want.shape, device="cuda")
    ctx.set_tensor_address("img", got.data_ptr())
    assert ctx.execute_async_v3(torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    assert np.abs(got.cpu().numpy() - want).max() <= 1e-3 * max(1.0, np.abs(want).max())
