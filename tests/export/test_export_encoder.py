"""encoder.onnx in the bundle: export, manifest entry, ORT vs torch, the model-extra source, refusals.

The encoder has random weights and BatchNorm running statistics moved away from (0, 1) by forward
passes in train mode, so a graph exported with batch statistics (train mode) would not match.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gandapt
from gandapt.checkpoint import load_encoder, save_encoder, save_native
from gandapt.config import GeneratorConfig
from gandapt.encoder import Encoder, EncoderConfig
from gandapt.errors import GandaptError
from gandapt.export.bundle import export_bundle
from gandapt.export.encoder_graph import encoder_from_extra, resolve_encoder
from gandapt.export.manifest import Manifest
from gandapt.export.onnx_graphs import prepared_encoder
from gandapt.export.spec import ExportSpec
from gandapt.export.validate import encoder_inputs, session
from gandapt.generator import Generator
from gandapt.runtime.crop import FACE_SCALE, FACE_SHIFT
from gandapt.samples import data_path

SCRIPT = str(Path(sys.executable).with_name("gandapt-export"))
WRONG = "g2:" + "0" * 24


@pytest.fixture(scope="module")
def ckpt():
    return gandapt.load(data_path("tiny_g32.pt"))


@pytest.fixture(scope="module")
def files(ckpt, tmp_path_factory) -> Path:
    """enc.pt (for tiny_g32), wrong.pt (same weights, another base fingerprint), extra.pt (the model
    with the encoder in ``extra['encoder']``)."""
    tmp = tmp_path_factory.mktemp("enc")
    torch.manual_seed(0)
    E = Encoder(EncoderConfig.for_generator(ckpt.config, head_dim=32, head_channels=8)).train()
    for m in E.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: the running stats become the stats of these batches
    with torch.no_grad():
        for _ in range(4):
            E(torch.rand(4, 3, 32, 32) * 1.5 - 0.5)  # skewed to positive: running means move off 0
    E.eval()
    save_encoder(tmp / "enc.pt", E, ckpt.fingerprint)
    save_encoder(tmp / "wrong.pt", E, WRONG)
    stored = {"config": E.config.to_dict(), "state_dict": E.state_dict(), "base_fingerprint": ckpt.fingerprint}
    save_native(tmp / "extra.pt", ckpt.G, extra={"encoder": stored})
    return tmp


@pytest.fixture(scope="module")
def bundle(files: Path, tmp_path_factory) -> Path:
    return export_bundle(data_path("tiny_g32.pt"), tmp_path_factory.mktemp("b") / "bundle",
                         encoder=files / "enc.pt", progress=False)


def test_bundle_has_encoder_graph_and_manifest_entry(bundle: Path, ckpt) -> None:
    m = Manifest.read(bundle)  # verifies encoder.onnx's sha256 too
    assert sorted(p.name for p in bundle.iterdir()) == ["domains.safetensors", "encoder.onnx", "manifest.json",
                                                         "mapping.onnx", "synthesis.onnx"]
    cfg, e = ckpt.config, m.graphs["encoder"]
    assert e["inputs"] == [{"name": "image", "dtype": "float32", "shape": ["N", 3, 32, 32]}]
    assert e["outputs"] == [{"name": "ws", "dtype": "float32", "shape": ["N", cfg.num_ws, cfg.w_dim]}]
    assert m.io_spec("encoder").input("image").dynamic_batch and e["batch"] is None
    assert e["resolution"] == 32 and e["input_convention"] == "RGB in [-1, 1]"
    assert e["crop"] == {"mode": "face", "module": "gandapt.runtime.crop", "face_scale": FACE_SCALE,
                         "face_shift": FACE_SHIFT}
    assert e["base_fingerprint"] == m.source["fingerprint"] == ckpt.fingerprint
    assert e["fingerprint"].startswith("e1:") and e["source"].endswith("enc.pt")
    v = e["validation"]
    assert v["batch"] == ExportSpec().validation_batch != ExportSpec().trace_batch
    assert 0 <= v["max_abs_diff"]["ws"] <= v["tolerance"]["limit"]["ws"]


def test_encoder_graph_matches_torch_in_eval_mode(bundle: Path, files: Path, ckpt) -> None:
    E = load_encoder(files / "enc.pt").E
    bn = E.stem[1]
    assert bn.running_mean.abs().max() > 0.05 and (bn.running_var - 1).abs().max() > 0.05  # non-trivial stats
    images = encoder_inputs(ckpt.G, 5, seed=7)  # batch 5: neither the trace's (2) nor validation's (3)
    got = session(bundle / "encoder.onnx").run(None, {"image": images})[0]  # [5, num_ws, w_dim]
    x = torch.from_numpy(images)
    with torch.no_grad():
        want = E.eval()(x).numpy()
        batch_stats = E.train()(x).numpy()
    assert got.shape == (5, ckpt.config.num_ws, ckpt.config.w_dim)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert np.abs(batch_stats - want).max() > 1e-2  # the check above would catch a train-mode export


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_prepared_encoder_is_in_eval_mode(files: Path, precision: str) -> None:
    E = load_encoder(files / "enc.pt").E.train()  # e.g. an EncoderFile handed over mid-training
    prepared = prepared_encoder(E, ExportSpec(precision=precision))
    assert not any(m.training for m in prepared.modules()) and E.training  # a copy: E itself untouched
    assert {p.dtype for p in prepared.parameters()} == {torch.float16 if precision == "fp16" else torch.float32}


def test_wrong_fingerprint_is_refused_in_one_line(files: Path, ckpt, tmp_path: Path) -> None:
    proc = subprocess.run([SCRIPT, str(data_path("tiny_g32.pt")), "--out", str(tmp_path / "b"),
                           "--encoder", str(files / "wrong.pt")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: encoder "), proc.stderr
    assert WRONG in lines[0] and ckpt.fingerprint in lines[0] and "export without --encoder" in lines[0]
    with pytest.raises(GandaptError, match=f"trained for base model {WRONG} but .* is {ckpt.fingerprint}"):
        export_bundle(ckpt, tmp_path / "b", encoder=files / "wrong.pt", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_encoder_from_model_extra(files: Path, bundle: Path, tmp_path: Path) -> None:
    out = export_bundle(files / "extra.pt", tmp_path / "b", progress=False)
    m = Manifest.read(out)
    assert m.graphs["encoder"]["source"].endswith("extra.pt (extra['encoder'])")
    same = Manifest.read(bundle).graphs["encoder"]
    assert m.graphs["encoder"]["fingerprint"] == same["fingerprint"]  # the same weights, stored inline
    images = np.random.default_rng(0).uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(session(out / "encoder.onnx").run(None, {"image": images})[0],
                               session(bundle / "encoder.onnx").run(None, {"image": images})[0], atol=1e-6)
    # An explicit encoder wins over the stored one (here: and is refused for its fingerprint).
    with pytest.raises(GandaptError, match=f"trained for base model {WRONG}"):
        resolve_encoder(gandapt.load(files / "extra.pt"), files / "wrong.pt")


def test_bad_extra_encoder_is_one_line(files: Path) -> None:
    with pytest.raises(GandaptError, match=r"^m.pt \(extra\['encoder'\]\) is list; expected"):
        encoder_from_extra([1, 2], "m.pt (extra['encoder'])")
    enc = load_encoder(files / "enc.pt")
    stored = {"config": {**enc.config.to_dict(), "head_dim": 16}, "state_dict": enc.E.state_dict(),
              "base_fingerprint": enc.base_fingerprint}
    with pytest.raises(GandaptError, match="does not match its stored config") as err:
        encoder_from_extra(stored, "m.pt (extra['encoder'])")
    assert "\n" not in str(err.value)


def test_no_encoder_no_encoder_graph(tmp_path: Path) -> None:
    cfg = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channels=(8, 8), mapping_layers=2)
    torch.manual_seed(0)
    model = save_native(tmp_path / "model.pt", Generator(cfg).eval())
    out = export_bundle(model, tmp_path / "b", progress=False)
    assert not (out / "encoder.onnx").exists() and "encoder" not in Manifest.read(out).graphs


def test_triton_repo_serves_the_encoder(bundle: Path, tmp_path: Path) -> None:
    pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    from google.protobuf import text_format

    from gandapt.export.triton_repo import ENCODER, ENSEMBLE, write_triton_repo

    repo = write_triton_repo(bundle, tmp_path / "repo", max_batch=4)
    cfg = text_format.Parse((repo / ENCODER / "config.pbtxt").read_text(), pb2.ModelConfig())
    assert cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 4 and cfg.HasField("dynamic_batching")
    assert [(t.name, list(t.dims)) for t in cfg.input] == [("image", [3, 32, 32])]
    assert [(t.name, list(t.dims)) for t in cfg.output] == [("ws", [8, 32])]
    assert (repo / ENCODER / "1" / "model.onnx").read_bytes() == (bundle / "encoder.onnx").read_bytes()
    ens = text_format.Parse((repo / ENSEMBLE / "config.pbtxt").read_text(), pb2.ModelConfig())
    assert [t.name for t in ens.input] == ["z", "truncation_psi"]  # the encoder stays out of the ensemble
    assert ENCODER in (repo / "README.md").read_text()
    # Rewritten from a bundle without an encoder: the old encoder model goes too.
    plain = shutil.copytree(bundle, tmp_path / "plain")
    (plain / "encoder.onnx").unlink()
    manifest = json.loads((plain / "manifest.json").read_text())
    del manifest["graphs"]["encoder"]
    (plain / "manifest.json").write_text(json.dumps(manifest))
    write_triton_repo(plain, repo, force=True)
    assert not (repo / ENCODER).exists() and (repo / ENSEMBLE / "config.pbtxt").is_file()
