"""A plugin-form bundle (gandapt::ModulatedConv2d nodes) opens in the runtime and matches the decomposed one."""

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime_extensions")


def test_plugin_bundle_runs_on_onnxruntime_and_matches_decomposed(tmp_path, tiny_bundle):
    from gandapt.export.bundle import export_bundle
    from gandapt.export.spec import ExportSpec
    from gandapt.runtime.backends import open_backend
    from gandapt.runtime.bundle import open_bundle
    from gandapt.samples import data_path

    out = export_bundle(data_path("tiny_g32.pt"), tmp_path / "plugin", domains=tiny_bundle / "domains.safetensors",
                        spec=ExportSpec(modconv="plugin"), progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["modconv"] == "plugin"
    assert manifest["plugin"] == {"name": "gandapt::ModulatedConv2d", "version": "1", "aot": True}

    ref, plug = open_bundle(tiny_bundle), open_bundle(out)
    num_ws = ref.manifest.io_spec("synthesis").input("ws").shape[1]
    ws = np.random.default_rng(3).standard_normal((2, num_ws, ref.manifest.config["w_dim"])).astype(np.float32)
    for name in ("warm", "bold"):
        images = []
        for bundle in (ref, plug):
            with open_backend("onnxruntime", bundle, "synthesis", threads=1) as backend:
                backend.bind("domain", bundle.vector(name))
                images.append(backend.infer({"ws": ws})["img"])
        scale = max(1.0, float(np.abs(images[0]).max()))  # the exporter's fp32 tolerance: 1e-4 of the image scale
        assert np.abs(images[0] - images[1]).max() < 1e-4 * scale, name
        assert np.abs(images[0]).max() > 0.1
