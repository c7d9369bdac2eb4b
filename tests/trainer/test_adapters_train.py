"""domain-mod and stylespace end to end on the tiny model: the written domain reproduces training."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gandapt
from gandapt.errors import GandaptError
from gandapt.pack import load_pack
from gandapt.samples import data_path
from gandapt.trainer.adapters.loop import train_adapter
from gandapt.trainer.adapters.options import AdapterTrainOptions

MODEL = str(data_path("tiny_g32.pt"))
FAST = dict(model=MODEL, embedder="disc", batch=2, progress=False, steps=4)


@pytest.fixture(scope="module")
def target_dir(tmp_path_factory):
    """Two 'sketch' targets: the tiny model's own samples through the sketch transform."""
    import cv2

    from gandapt.trainer.data.transforms import apply_transform

    d = tmp_path_factory.mktemp("sketch")
    G = gandapt.load(MODEL).G
    with torch.no_grad():
        x = G(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)))
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i, a in enumerate(arr):
        cv2.imwrite(str(d / f"{i}.png"), apply_transform("sketch", a)[:, :, ::-1])
    return d


@pytest.mark.parametrize("method,variant,stage", [("domain-mod", None, "in"), ("stylespace", "conv", "s"),
                                                  ("stylespace", "all", "s")])
def test_written_domain_reproduces_the_trained_output(method, variant, stage, target_dir, tmp_path):
    from gandapt.trainer.adapters.param import LayoutParam
    from gandapt.trainer.adapters.methods import METHODS

    out = tmp_path / "run"
    path = train_adapter(AdapterTrainOptions(method=method, variant=variant, target=str(target_dir), out=str(out),
                                             name="sketch", **FAST))
    model = gandapt.load(path)
    adapter = model.extra["adapter"]
    # the trained module: the layout slice with the trained values
    G = gandapt.load(MODEL).G
    layout = G.synthesis.set_domain_stages(METHODS[method].stages)
    param = LayoutParam(layout, adapter["entries"])
    with torch.no_grad():
        param.values.copy_(adapter["values"])
        ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(9)), truncation_psi=0.7)
        trained = G.synthesis(ws, domain=param(), noise_mode="const")
    # the runtime path: the pack (in model.pt and on disk) → full-layout vector → synthesis
    pack = load_pack(out / "domains.safetensors")
    assert pack.names == ("sketch",) and pack.stages == (stage,) and pack.base_fingerprint == model.fingerprint
    G2 = model.G
    full = G2.synthesis.set_domain_stages()
    vec = torch.from_numpy(pack.vector("sketch", full))[None]
    with torch.no_grad():
        runtime = G2.synthesis(ws, domain=vec, noise_mode="const")
        base = G2.synthesis(ws, noise_mode="const")
    assert torch.allclose(runtime, trained, atol=1e-5)
    assert (runtime - base).abs().max() > 1e-4  # the domain does something
    if variant == "conv":
        assert not any(n.endswith(".torgb") for n in adapter["entries"])
    dom = pack["sketch"]
    assert dom.meta["method"] == method and dom.meta["steps"] == 4
    assert (out / "samples.png").is_file() and len((out / "log.jsonl").read_text().splitlines()) == 4


def test_sparse_keeps_the_top_fraction(target_dir, tmp_path):
    path = train_adapter(AdapterTrainOptions(method="stylespace", target=str(target_dir), out=str(tmp_path / "r"),
                                             sparse=0.2, **FAST))
    vals = gandapt.load(path).extra["adapter"]["values"].numpy()
    nonzero = np.count_nonzero(vals)
    assert 0 < nonzero <= int(np.ceil(0.2 * vals.size))


def test_resume_and_bad_input(target_dir, tmp_path):
    out = tmp_path / "run"
    opts = AdapterTrainOptions(method="domain-mod", target=str(target_dir), out=str(out), **{**FAST, "steps": 2})
    train_adapter(opts)
    with pytest.raises(GandaptError, match="already holds a run"):
        train_adapter(opts)
    train_adapter(AdapterTrainOptions(**{**opts.to_dict(), "steps": 3}), resume=True)
    assert len((out / "log.jsonl").read_text().splitlines()) == 3
    with pytest.raises(GandaptError, match="different lr"):
        train_adapter(AdapterTrainOptions(**{**opts.to_dict(), "steps": 4, "lr": 0.5}), resume=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GandaptError, match="no PNG or JPG"):
        train_adapter(AdapterTrainOptions(method="domain-mod", target=str(empty), out=str(tmp_path / "x"), **FAST))
    with pytest.raises(GandaptError, match="--clip PATH"):
        train_adapter(AdapterTrainOptions(method="domain-mod", text="sketch", out=str(tmp_path / "y"), **FAST))
    with pytest.raises(GandaptError, match="exactly one target"):
        AdapterTrainOptions(method="domain-mod", model=MODEL, out="z")


def test_nan_loss_stops_and_keeps_the_last_checkpoint(target_dir, tmp_path):
    out = tmp_path / "run"
    opts = AdapterTrainOptions(method="domain-mod", target=str(target_dir), out=str(out), **{**FAST, "steps": 2})
    train_adapter(opts)
    before = torch.load(out / "checkpoint.pt", weights_only=True)["trainable"][0]
    with pytest.raises(GandaptError, match="loss became nan"):
        _nan_run(opts, out)
    after = torch.load(out / "checkpoint.pt", weights_only=True)
    assert torch.equal(after["trainable"][0], before) and after["step"] == 2


def _nan_run(opts, out):
    """Resume with a hook that poisons the parameters after the first new step."""
    import gandapt.trainer.adapters.loop as loop

    real = loop.LayoutParam.forward

    def poisoned(self):
        return real(self) * float("nan")

    loop.LayoutParam.forward = poisoned
    try:
        train_adapter(AdapterTrainOptions(**{**opts.to_dict(), "steps": 6}), resume=True)
    finally:
        loop.LayoutParam.forward = real


def test_cli_one_line_errors(tmp_path):
    exe = Path(sys.executable).parent / "gandapt-train"
    proc = subprocess.run([str(exe), "domain-mod", "--model", MODEL, "--out", str(tmp_path / "r"), "--text", "sketch"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "--clip PATH" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("variant", ["per-row", "shared"])
def test_genda_trains_w_and_last_torgb_against_a_classifier(variant, target_dir, tmp_path):
    out = tmp_path / "run"
    path = train_adapter(AdapterTrainOptions(method="genda", variant=variant, target=str(target_dir), shots=1,
                                             out=str(out), model=MODEL, batch=4, steps=4, progress=False))
    model = gandapt.load(path)
    pack = load_pack(out / "domains.safetensors")
    dom = pack[pack.names[0]]
    assert set(dom.tensors) <= {"w_scale", "w_shift", "rgb_dW.b32.torgb", "rgb_db.b32.torgb"}
    assert "w_shift" in dom.tensors and dom.meta["embedder"] == "disc"
    if variant == "shared":  # one [w_dim] adaptor broadcast to every W+ row
        shift = dom.tensors["w_shift"]
        assert np.allclose(shift, shift[:1]) and dom.meta["trainable_params"] < model.config.num_ws * model.config.w_dim
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {"attribute", "classifier"} <= set(log[0])
    # the classifier's state is checkpointed for --resume
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert "phi" in state["aux"] and "phi_opt" in state["aux"]
    train_adapter(AdapterTrainOptions(method="genda", variant=variant, target=str(target_dir), shots=1, out=str(out),
                                      model=MODEL, batch=4, steps=5, progress=False), resume=True)
    assert len((out / "log.jsonl").read_text().splitlines()) == 5



def test_genda_runs_with_one_seed_are_identical(target_dir, tmp_path):
    """The classifier's initial weights follow --seed, so a rerun reproduces the domain exactly."""
    def domain(name, seed, draws):
        torch.rand(draws)  # earlier draws from torch's global RNG must not change the run
        train_adapter(AdapterTrainOptions(method="genda", target=str(target_dir), shots=1, out=str(tmp_path / name),
                                          model=MODEL, batch=4, steps=3, seed=seed, progress=False))
        pack = load_pack(tmp_path / name / "domains.safetensors")
        return pack[pack.names[0]].tensors

    a, b, c = domain("a", 0, 1), domain("b", 0, 7), domain("c", 1, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)

def test_finetune_writes_a_new_base_model(target_dir, tmp_path, capsys):
    out = tmp_path / "run"
    path = train_adapter(AdapterTrainOptions(method="finetune", target=str(target_dir), out=str(out), **FAST))
    tuned, base = gandapt.load(path), gandapt.load(MODEL)
    assert "domain_pack" not in tuned.extra and not (out / "domains.safetensors").exists()
    assert tuned.fingerprint != base.fingerprint and tuned.extra["base"]["fingerprint"] == base.fingerprint
    assert "not a domain pack" in capsys.readouterr().err
    # mapping untouched, synthesis changed
    sb, st = base.G.state_dict(), tuned.G.state_dict()
    assert all(torch.equal(sb[k], st[k]) for k in sb if k.startswith("mapping."))
    assert any(not torch.equal(sb[k], st[k]) for k in sb if k.startswith("synthesis."))


def test_encoder_inverted_sources_set_the_direction(target_dir, tmp_path, tiny_encoder_files):
    """--encoder: the direction's source is G(E(target)) per reference; a foreign encoder is refused."""
    from gandapt.trainer.adapters.loop import inverted_sources
    from gandapt.trainer.adapters.targets import load_targets

    ck = gandapt.load(MODEL)
    E, good, bad = tiny_encoder_files
    targets = load_targets(str(target_dir), ck.G.img_resolution)
    with torch.no_grad():
        src = inverted_sources(str(good), ck.G, ck.fingerprint, targets, "cpu")
        want = ck.G.synthesis(E(targets), noise_mode="const")
    assert src.shape == targets.shape and torch.allclose(src, want, atol=1e-6)
    with pytest.raises(GandaptError, match="not this base model"):
        inverted_sources(str(bad), ck.G, ck.fingerprint, targets, "cpu")
    with pytest.raises(GandaptError, match="does not exist"):
        inverted_sources(str(tmp_path / "none.pt"), ck.G, ck.fingerprint, targets, "cpu")
    with pytest.raises(GandaptError, match="does not apply to --text"):
        AdapterTrainOptions(method="domain-mod", text="sketch", encoder=str(good), out="z", **FAST)
    out = tmp_path / "run"
    train_adapter(AdapterTrainOptions(method="domain-mod", target=str(target_dir), out=str(out), encoder=str(good),
                                      **{**FAST, "steps": 2}))
    assert json.loads((out / "training_options.json").read_text())["encoder"] == str(good)
