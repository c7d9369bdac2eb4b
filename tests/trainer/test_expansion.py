"""Domain Expansion end to end on the tiny model: dormant directions, the expanded base, its pack."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import gandapt
from gandapt.errors import DomainError, GandaptError
from gandapt.pack import check_compatible, load_pack
from gandapt.samples import data_path
from gandapt.trainer.expansion.basis import latent_basis
from gandapt.trainer.expansion.loop import train_expansion
from gandapt.trainer.expansion.options import ExpansionOptions

MODEL = str(data_path("tiny_g32.pt"))
# tiny_g32's W spectrum (512 latents, seed 0): 3 directions have std < 0.123 of the largest (0.089, 0.115, 0.120;
# the next is 0.127)
FAST = dict(model=MODEL, embedder="disc", batch=4, steps=3, basis_samples=512, dormant_ratio=0.123,
            progress=False, threads=1)


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    """Two target folders: the tiny model's own samples through the sketch and painting transforms."""
    import cv2

    from gandapt.trainer.data.transforms import apply_transform

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("targets")
    G = gandapt.load(MODEL).G
    with torch.no_grad():
        x = G(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)))
    arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = {}
    for name in ("sketch", "painting"):
        d = root / name
        d.mkdir()
        for i, a in enumerate(arr):
            cv2.imwrite(str(d / f"{i}.png"), apply_transform(name, a)[:, :, ::-1])
        out[name] = str(d)
    return out


@pytest.fixture(scope="module")
def run(targets, tmp_path_factory):
    out = tmp_path_factory.mktemp("expansion") / "run"
    opts = ExpansionOptions(out=str(out), targets=(f"sk={targets['sketch']}", targets["painting"]), **FAST)
    return opts, train_expansion(opts)


def test_dormant_directions_are_the_low_variance_tail():
    G = gandapt.load(MODEL).G
    basis = latent_basis(G, n=512, ratio=0.123)
    assert basis.num_dormant == 3
    d = basis.directions
    assert torch.allclose(d.T @ d, torch.eye(G.w_dim), atol=1e-4)                 # orthonormal
    assert torch.all(basis.stds[:-1] <= basis.stds[1:])                           # most dormant first
    with torch.no_grad():  # the measured std along the first column is the smallest of all
        w = G.mapping(torch.randn(2048, G.z_dim, generator=torch.Generator().manual_seed(5)))[:, 0]
    proj = (w - basis.mean) @ d
    assert proj[:, 0].std() < 0.2 * proj[:, -1].std()


def test_expanded_base_and_pack_reproduce_the_trained_module(run):
    opts, path = run
    model = gandapt.load(path)
    parent = gandapt.load(MODEL)
    pack = load_pack(Path(opts.out) / "domains.safetensors")
    assert pack.names == ("sk", "painting") and pack.stages == ("w",)
    assert model.fingerprint != parent.fingerprint and pack.base_fingerprint == model.fingerprint
    assert pack.meta["requires_base"]["parent_fingerprint"] == parent.fingerprint
    check_compatible(pack, model.config, model.fingerprint)
    ex = model.extra["expansion"]
    shifts = ex["shifts"]                                                          # [2, w_dim]
    assert ex["parent_fingerprint"] == parent.fingerprint and shifts.shape == (2, model.config.w_dim)
    # mapping frozen, synthesis trained
    sp, se = parent.G.state_dict(), model.G.state_dict()
    assert all(torch.equal(sp[k], se[k]) for k in sp if k.startswith("mapping."))
    assert any(not torch.equal(sp[k], se[k]) for k in sp if k.startswith("synthesis."))
    G = model.G
    with torch.no_grad():
        ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(9)), truncation_psi=0.7)
        base = G.synthesis(ws, noise_mode="const")
        layout = G.synthesis.set_domain_stages()
        for d, name in enumerate(pack.names):
            trained = G.synthesis(ws + shifts[d][None, None], noise_mode="const")   # the trained module: w + s·v_d
            vec = torch.from_numpy(pack.vector(name, layout))[None]
            runtime = G.synthesis(ws, domain=vec, noise_mode="const")
            assert torch.allclose(runtime, trained, atol=1e-5)
            assert (runtime - base).abs().max() > 1e-3                            # the domain does something
            assert np.allclose(pack[name].tensors["w_shift"], shifts[d].numpy()[None].repeat(G.num_ws, 0))
        # the two domains sit on different, orthogonal dormant directions
        assert abs(float(shifts[0] @ shifts[1])) < 1e-3 * float(shifts[0].norm() * shifts[1].norm())
    # the pack inside model.pt is the same pack
    assert model.extra["domain_pack"].numel() == (Path(opts.out) / "domains.safetensors").stat().st_size
    log = [json.loads(line) for line in (Path(opts.out) / "log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and {"expand", "recon", "recon_feat", "indomain"} <= set(log[0])
    assert (Path(opts.out) / "samples.png").is_file()


def test_pack_is_refused_on_the_original_base(run):
    opts, _ = run
    parent = gandapt.load(MODEL)
    pack = load_pack(Path(opts.out) / "domains.safetensors")
    with pytest.raises(DomainError, match="only work on the expanded base model .* original it was expanded from"):
        check_compatible(pack, parent.config, parent.fingerprint)
    with pytest.raises(DomainError, match="expanded base model"):
        check_compatible(pack, parent.config, None)  # an unknown model cannot be shown to be the expanded one


def test_resume_refusal_and_bad_input(run, targets, tmp_path):
    opts, _ = run
    with pytest.raises(GandaptError, match="already holds a run"):
        train_expansion(opts)
    train_expansion(ExpansionOptions(**{**opts.to_dict(), "steps": 4}), resume=True)
    out = Path(opts.out)
    assert len((out / "log.jsonl").read_text().splitlines()) == 4
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 4
    with pytest.raises(GandaptError, match="different lr"):
        train_expansion(ExpansionOptions(**{**opts.to_dict(), "steps": 5, "lr": 0.5}), resume=True)
    # more domains than dormant directions (3 at this ratio)
    four = tuple(f"d{i}={targets['sketch']}" for i in range(4))
    with pytest.raises(GandaptError, match="target.* given twice"):
        ExpansionOptions(out=str(tmp_path / "x"), targets=four, **FAST)
    with pytest.raises(GandaptError, match="only 3 dormant latent direction"):
        train_expansion(ExpansionOptions(out=str(tmp_path / "x"), targets=(targets["sketch"],), texts=("a", "b", "c"),
                                         **{**FAST, "embedder": "clip", "clip": "/nonexistent.pt"}))
    assert not (tmp_path / "x").exists()  # refused before anything was written
    with pytest.raises(GandaptError, match="duplicate domain name"):
        ExpansionOptions(out="y", targets=(f"a={targets['sketch']}", f"a={targets['painting']}"), **FAST)
    with pytest.raises(GandaptError, match="at least one new domain"):
        ExpansionOptions(out="y", **FAST)


def test_nan_loss_stops_and_keeps_the_last_checkpoint(targets, tmp_path):
    import gandapt.trainer.expansion.loop as loop

    out = tmp_path / "run"
    opts = ExpansionOptions(out=str(out), targets=(targets["sketch"],), **{**FAST, "steps": 1})
    train_expansion(opts)
    before = torch.load(out / "checkpoint.pt", weights_only=True)
    real = loop.expansion_losses

    def poisoned(*args, **kwargs):
        losses = real(*args, **kwargs)
        return {k: v * float("nan") for k, v in losses.items()}

    loop.expansion_losses = poisoned
    try:
        with pytest.raises(GandaptError, match="loss became nan"):
            train_expansion(ExpansionOptions(**{**opts.to_dict(), "steps": 3}), resume=True)
    finally:
        loop.expansion_losses = real
    after = torch.load(out / "checkpoint.pt", weights_only=True)
    assert after["step"] == 1
    assert all(torch.equal(after["synthesis"][k], v) for k, v in before["synthesis"].items())


def test_cli_one_line_error(tmp_path):
    from click.testing import CliRunner

    from gandapt.trainer.expansion.cli import expansion

    res = CliRunner().invoke(expansion, ["--model", MODEL, "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and "at least one new domain" in res.output and "Traceback" not in res.output
