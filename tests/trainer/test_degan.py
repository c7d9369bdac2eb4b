"""DEGAN's domain encoder on the tiny model: training, its file, domains from images, ONNX export."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import gandapt
from gandapt.errors import CheckpointError, GandaptError
from gandapt.layout import DomainLayout
from gandapt.pack import check_compatible, load_pack
from gandapt.samples import data_path
from gandapt.trainer.degan.file import load_domain_encoder
from gandapt.trainer.degan.infer import domain_from_image, read_reference
from gandapt.trainer.degan.loop import train_degan
from gandapt.trainer.degan.model import DomainVector
from gandapt.trainer.degan.options import DeganOptions

MODEL = str(data_path("tiny_g32.pt"))
FAST = dict(model=MODEL, embedder="disc", steps=3, domains_per_step=3, latents_per_domain=2, fade_steps=2,
            channels=(8, 16), hidden=16, progress=False, threads=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three domain folders (sketch, painting, ink) of transformed tiny-model samples, and a held-out image."""
    import cv2

    from gandapt.trainer.data.transforms import apply_transform

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("domains")
    G = gandapt.load(MODEL).G
    with torch.no_grad():
        x = G(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(4)))
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for name in ("sketch", "painting", "ink"):
        (root / name).mkdir()
        for i, a in enumerate(arr[:2]):
            cv2.imwrite(str(root / name / f"{i}.png"), apply_transform(name, a)[:, :, ::-1])
    held = tmp_path_factory.mktemp("held") / "pixel.png"
    cv2.imwrite(str(held), apply_transform("pixel", arr[2])[:, :, ::-1])
    return root, held


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    root, held = data
    out = tmp_path_factory.mktemp("degan") / "run"
    opts = DeganOptions(out=str(out), data=str(root), references=(f"pixel={held}",), **FAST)
    return opts, train_degan(opts)


def test_domain_from_image_reproduces_the_trained_module(run, data):
    opts, path = run
    _, held = data
    enc = load_domain_encoder(path)
    assert enc.base_fingerprint == gandapt.load(MODEL).fingerprint
    raw = torch.load(path, weights_only=True)                      # the file is plain data
    assert raw["gandapt_format"] == "gandapt.domain-encoder"
    # the trained module: encoder → Δs → s' = s + Δs inside synthesis (the loop's own path)
    G = gandapt.load(MODEL).G
    s_layout = G.synthesis.set_domain_stages(("s",))
    x = read_reference(str(held), enc.config.img_resolution)
    with torch.no_grad():
        delta = enc.E(x)                                            # [1, ΣC_in]
        ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(9)), truncation_psi=0.7)
        trained = G.synthesis(ws, domain=DomainVector(s_layout, enc.config)(delta), noise_mode="const")
        base = G.synthesis(ws, noise_mode="const")
    assert delta.abs().max() > 0                                    # heads left their zero init
    # the runtime path: the domain vector in the full layout, and the pack written by the run
    full = G.synthesis.set_domain_stages()
    vec = domain_from_image(enc, str(held), layout=full)
    tensors = full.from_vector(vec)
    assert set(tensors) == {f"s_shift.{s.name}" for s in G.config.layers()}  # every layer, ToRGB included
    pack = load_pack(Path(opts.out) / "domains.safetensors")
    check_compatible(pack, G.config, enc.base_fingerprint)
    with torch.no_grad():
        runtime = G.synthesis(ws, domain=torch.from_numpy(vec)[None], noise_mode="const")
        from_pack = G.synthesis(ws, domain=torch.from_numpy(pack.vector("pixel", full))[None], noise_mode="const")
    assert torch.allclose(runtime, trained, atol=1e-5) and torch.allclose(from_pack, trained, atol=1e-5)
    assert (runtime - base).abs().max() > 1e-4
    # model.pt carries the base G and that pack, for eval/export
    model = gandapt.load(Path(opts.out) / "model.pt")
    assert model.fingerprint == enc.base_fingerprint and model.extra["adapter"]["method"] == "degan"
    # an array input gives the same domain as the file
    import PIL.Image

    arr = np.asarray(PIL.Image.open(held).convert("RGB"))
    assert np.allclose(domain_from_image(enc, arr), domain_from_image(enc, str(held)), atol=1e-6)
    log = [json.loads(line) for line in (Path(opts.out) / "log.jsonl").read_text().splitlines()]
    assert [round(r["fade"], 2) for r in log] == [0.1, 0.55, 1.0] and {"direction", "tt", "indomain"} <= set(log[0])


def test_onnx_export_matches_torch(run, tmp_path):
    import onnxruntime as ort

    from gandapt.trainer.degan.export import export_domain_encoder

    _, path = run
    enc = load_domain_encoder(path)
    info = export_domain_encoder(enc, tmp_path / "domain_encoder.onnx")
    assert info["max_abs_diff"] < 1e-4
    layout = DomainLayout(enc.base_config, ("s",))
    assert info["layout"] == layout.to_dict() and info["output"]["domain"] == ["N", layout.size]
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    sess = ort.InferenceSession(str(tmp_path / "domain_encoder.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(["domain"], {"image": x.numpy()})[0]
    with torch.no_grad():
        ref = np.stack([domain_from_image(enc, xi) for xi in x])
    assert got.shape == (5, layout.size) and np.abs(got - ref).max() < 1e-4


def test_bad_reference_images(run, tmp_path):
    _, path = run
    enc = load_domain_encoder(path)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(GandaptError, match="cannot read image"):
        domain_from_image(enc, str(bad))
    with pytest.raises(GandaptError, match="not found"):
        domain_from_image(enc, str(tmp_path / "missing.png"))
    with pytest.raises(GandaptError, match="uint8 RGB"):
        domain_from_image(enc, np.zeros((32, 32), np.float32))
    with pytest.raises(GandaptError, match="float \\[3, 32, 32\\]"):
        domain_from_image(enc, torch.zeros(3, 16, 16))
    with pytest.raises(CheckpointError, match="not a domain"):
        load_domain_encoder(MODEL)                                  # a model file is not an encoder


def test_resume_refusal_and_bad_input(run, data, tmp_path):
    opts, _ = run
    root, held = data
    with pytest.raises(GandaptError, match="already holds a run"):
        train_degan(opts)
    train_degan(DeganOptions(**{**opts.to_dict(), "steps": 4}), resume=True)
    out = Path(opts.out)
    assert len((out / "log.jsonl").read_text().splitlines()) == 4
    assert load_domain_encoder(out / "checkpoint.pt").extra["train"]["step"] == 4
    with pytest.raises(GandaptError, match="different lr"):
        train_degan(DeganOptions(**{**opts.to_dict(), "steps": 5, "lr": 0.5}), resume=True)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(GandaptError, match="cannot read image"):
        train_degan(DeganOptions(out=str(tmp_path / "x"), data=str(root), references=(str(bad),), **FAST))
    assert not (tmp_path / "x").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GandaptError, match="no PNG or JPG"):
        train_degan(DeganOptions(out=str(tmp_path / "y"), data=str(empty), **FAST))
    with pytest.raises(GandaptError, match="unique"):
        DeganOptions(out="z", data=str(root), references=(f"a={held}", f"a={held}"), **FAST)


def test_nan_loss_stops_and_keeps_the_last_checkpoint(data, tmp_path):
    import gandapt.trainer.degan.loop as loop

    root, _ = data
    out = tmp_path / "run"
    opts = DeganOptions(out=str(out), data=str(root), **{**FAST, "steps": 1})
    train_degan(opts)
    before = load_domain_encoder(out / "checkpoint.pt").E.state_dict()
    real = loop.degan_losses

    def poisoned(*args, **kwargs):
        return {k: v * float("nan") for k, v in real(*args, **kwargs).items()}

    loop.degan_losses = poisoned
    try:
        with pytest.raises(GandaptError, match="loss became nan"):
            train_degan(DeganOptions(**{**opts.to_dict(), "steps": 3}), resume=True)
    finally:
        loop.degan_losses = real
    after = load_domain_encoder(out / "checkpoint.pt")
    assert after.extra["train"]["step"] == 1
    assert all(torch.equal(after.E.state_dict()[k], v) for k, v in before.items())


def test_cli_one_line_error(tmp_path):
    from click.testing import CliRunner

    from gandapt.trainer.degan.cli import degan

    args = ["--model", MODEL, "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r"), "--no-progress"]
    res = CliRunner().invoke(degan, args)
    assert res.exit_code == 1 and "give a folder of PNG/JPG" in res.output and "Traceback" not in res.output
    (tmp_path / "enc.onnx").write_bytes(b"keep")  # an existing --onnx is refused before any training
    res = CliRunner().invoke(degan, args + ["--onnx", str(tmp_path / "enc.onnx")])
    assert res.exit_code == 1 and "enc.onnx already exists; pass --force" in res.output
    assert (tmp_path / "enc.onnx").read_bytes() == b"keep" and not (tmp_path / "r").exists()
    res = CliRunner().invoke(degan, args + ["--onnx", "/proc/gandapt-enc.onnx"])  # a folder that takes no files
    assert res.exit_code == 1 and "Traceback" not in res.output and "choose another output path" in res.output
    assert not (tmp_path / "r").exists()
