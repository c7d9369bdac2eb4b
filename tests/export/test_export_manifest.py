"""manifest.json: round trip, IO spec helpers, the checks a reader makes, and no torch on import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gandapt.errors import GandaptError
from gandapt.export.manifest import Manifest, TensorSpec, graph_entry, io_spec, update_manifest


def make_bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "mapping.onnx").write_bytes(b"mapping graph bytes")
    (bundle / "synthesis.onnx").write_bytes(b"synthesis graph bytes")
    (bundle / "domains.safetensors").write_bytes(b"pack")
    validation = {"batch": 3, "domains": 2, "max_abs_diff": {"img": 2e-6},
                  "tolerance": {"atol": 1e-4, "relative_to": "max(1, max|torch|)", "limit": {"img": 3e-4}}}
    graphs = {
        "mapping": graph_entry(bundle / "mapping.onnx",
                               [{"name": "z", "dtype": "float32", "shape": ["N", 16]},
                                {"name": "truncation_psi", "dtype": "float32", "shape": ["N"]}],
                               [{"name": "ws", "dtype": "float32", "shape": ["N", 4, 16]}], None, validation),
        "synthesis": graph_entry(bundle / "synthesis.onnx",
                                 [{"name": "ws", "dtype": "float32", "shape": ["N", 4, 16]},
                                  {"name": "domain", "dtype": "float32", "shape": ["N", 24]}],
                                 [{"name": "img", "dtype": "float32", "shape": ["N", 3, 8, 8]}], None, validation),
    }
    Manifest(
        gandapt_version="0.1.0", created="2026-11-22T00:00:00Z",
        source={"path": "m.pt", "format": "gandapt", "fingerprint": "abc"},
        config={"z_dim": 16}, layout={"version": 1, "stages": ["in"], "size": 24}, stages=["in"],
        domains=[{"name": "b", "index": 1, "method": None, "stages": ["in"]},
                 {"name": "a", "index": 0, "method": "hyperdomainnet", "stages": ["in"]}],
        precision="fp32", modconv="decomposed", opset=18, noise_mode="const", truncation_cutoff=None,
        graphs=graphs,
    ).write(bundle)
    return bundle


def test_round_trip(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    m = Manifest.read(bundle)
    data = json.loads((bundle / "manifest.json").read_text())
    assert list(data)[0] == "gandapt_bundle" and data["gandapt_bundle"] == 1
    assert m.to_dict() == data
    assert Manifest.from_dict(m.to_dict()) == m
    assert m.graphs["synthesis"]["bytes"] == len(b"synthesis graph bytes")
    assert m.domain_names == ["a", "b"]
    assert m.plugin is None and m.engine is None


def test_io_spec(tmp_path: Path) -> None:
    m = Manifest.read(make_bundle(tmp_path))
    io = m.io_spec("synthesis")
    assert io.batch is None and io.file == "synthesis.onnx"
    assert io.input("domain") == TensorSpec("domain", "float32", ("N", 24))
    assert io.input("domain").concrete(5) == (5, 24) and io.input("domain").dynamic_batch
    assert io.outputs[0].concrete(2) == (2, 3, 8, 8)
    assert io_spec(m.to_dict(), "mapping").inputs[1].name == "truncation_psi"  # raw dicts work too
    with pytest.raises(GandaptError, match="no encoder graph"):
        m.io_spec("encoder")


def test_update_manifest_sets_engine(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    update_manifest(bundle, engine={"synthesis": {"file": "synthesis.plan"}})
    assert Manifest.read(bundle).engine == {"synthesis": {"file": "synthesis.plan"}}
    with pytest.raises(GandaptError, match="no field nope"):
        update_manifest(bundle, nope=1)


def _edit(bundle: Path, **changes) -> None:
    path = bundle / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("breakage,message", [
    (lambda b: _edit(b, gandapt_bundle=2), "bundle version 2 but this gandapt reads version 1"),
    (lambda b: (b / "synthesis.onnx").unlink(), "synthesis graph synthesis.onnx is missing"),
    (lambda b: (b / "mapping.onnx").write_bytes(b"changed"), "mapping.onnx has sha256 .* the file was changed"),
    (lambda b: (b / "domains.safetensors").unlink(), "domain pack domains.safetensors is missing"),
    (lambda b: (b / "manifest.json").write_text("{"), "is not valid JSON"),
    (lambda b: (b / "manifest.json").unlink(), "is not a gandapt bundle"),
    (lambda b: _edit(b, graphs={"mapping": {"file": "mapping.onnx"}}), "graph 'mapping' lacks inputs, outputs, sha256"),
])
def test_bad_bundles_are_one_line_errors(tmp_path: Path, breakage, message: str) -> None:
    bundle = make_bundle(tmp_path)
    breakage(bundle)
    with pytest.raises(GandaptError, match=message) as err:
        Manifest.read(bundle)
    assert "\n" not in str(err.value)


def test_manifest_module_imports_no_torch() -> None:
    code = ("import sys, gandapt.export, gandapt.export.manifest; "
            "assert 'torch' not in sys.modules and 'onnx' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)
