"""gandapt-generate: seeded PNG grids from a model, optionally in a domain of a pack."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

import gandapt
import gandapt.samples
from gandapt.cli.generate import generate_grid, main
from gandapt.errors import DomainError, GandaptError
from gandapt.pack import Domain, DomainPack, save_pack

RES = 32  # tiny_g32.pt renders 32x32 images


@pytest.fixture(scope="module")
def model() -> Path:
    return gandapt.samples.data_path("tiny_g32.pt")


@pytest.fixture(scope="module")
def pack(model: Path, tmp_path_factory) -> Path:
    """A pack for the tiny model: 'sketch' scales the first layer's input, 'plain' is the identity."""
    ckpt = gandapt.load(model)
    first = ckpt.config.layers()[0]
    domains = [Domain("sketch", {f"in_scale.{first.name}": np.full(first.in_channels, 1.5, np.float32)}),
               Domain("plain")]
    return save_pack(DomainPack(domains, ckpt.config, ckpt.fingerprint),
                     tmp_path_factory.mktemp("pack") / "pack.safetensors")


def pixels(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # [H, W, 3] uint8 (BGR)
    assert img is not None and img.dtype == np.uint8
    return img


def invoke(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(res: Result, *needles: str) -> None:
    assert res.exit_code == 1, res.output
    assert not res.exception or isinstance(res.exception, SystemExit), res.exception  # no traceback
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for needle in needles:
        assert needle in lines[0], res.output


@pytest.mark.parametrize("n, cols, shape", [(6, 4, (2 * RES, 4 * RES)), (5, None, (2 * RES, 3 * RES)),
                                            (3, 8, (RES, 3 * RES))])
def test_grid_size(model: Path, tmp_path: Path, n: int, cols, shape) -> None:
    s = generate_grid(model, tmp_path / "g.png", n=n, cols=cols)
    assert pixels(tmp_path / "g.png").shape == (*shape, 3)
    assert (s["n"], s["resolution"], s["model"], s["domain"]) == (n, RES, str(model), None)


def test_deterministic_per_seed(model: Path, tmp_path: Path) -> None:
    for name, seed in [("a.png", 1), ("b.png", 1), ("c.png", 2)]:
        generate_grid(model, tmp_path / name, n=4, seed=seed)
    a, b, c = (pixels(tmp_path / f) for f in ("a.png", "b.png", "c.png"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_refuses_overwrite_without_force(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    out.write_bytes(b"keep me")
    assert_one_line_error(invoke(model, "--out", out, "--n", 2), "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    res = invoke(model, "--out", out, "--n", 2, "--force")
    assert res.exit_code == 0, res.output
    assert pixels(out).shape == (RES, 2 * RES, 3)



@pytest.mark.parametrize("psi", ["nan", "inf", "-1", "1.5"])
def test_truncation_outside_0_1_is_a_usage_error(model: Path, tmp_path: Path, psi: str) -> None:
    res = invoke(model, "--out", tmp_path / "g.png", "--truncation", psi)
    assert res.exit_code == 2 and "Invalid value for '--truncation'" in res.output, res.output
    assert not (tmp_path / "g.png").exists()


def test_an_out_below_a_file_is_one_line(model: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert_one_line_error(invoke(model, "--out", tmp_path / "notes.txt" / "g.png"), "notes.txt is a file")

def test_missing_model_is_one_line(tmp_path: Path, monkeypatch) -> None:
    assert_one_line_error(invoke(tmp_path / "nope.pt", "--out", tmp_path / "g.png"), "nope.pt")
    monkeypatch.setattr(gandapt.samples, "data_dir", lambda: tmp_path / "empty")  # no embedded model
    assert_one_line_error(invoke("--out", tmp_path / "g.png"), "embedded base model is missing",
                          gandapt.samples.BASE_MODEL)
    assert not (tmp_path / "g.png").exists()


def test_default_model_is_the_embedded_one(model: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(gandapt.samples, "base_model", lambda: model)
    assert generate_grid(out=tmp_path / "g.png", n=1)["model"] == str(model)


def test_domain_without_pack(model: Path, tmp_path: Path) -> None:
    assert_one_line_error(invoke(model, "--domain", "sketch", "--out", tmp_path / "g.png"),
                          "needs a domain pack", "--domains")
    with pytest.raises(GandaptError, match="--domains needs --domain"):
        generate_grid(model, tmp_path / "g.png", domains="pack.safetensors")


def test_domain_changes_image(model: Path, pack: Path, tmp_path: Path) -> None:
    for name, domain in [("base.png", None), ("sketch.png", "sketch"), ("plain.png", "plain")]:
        s = generate_grid(model, tmp_path / name, n=4, domain=domain, domains=pack if domain else None)
        assert s["domain"] == domain
    base, sketch, plain = (pixels(tmp_path / f) for f in ("base.png", "sketch.png", "plain.png"))
    assert not np.array_equal(base, sketch)
    assert np.array_equal(base, plain)  # the identity domain renders the base generator


def test_unknown_domain_lists_names(model: Path, pack: Path, tmp_path: Path) -> None:
    res = invoke(model, "--domains", pack, "--domain", "anime", "--out", tmp_path / "g.png")
    assert_one_line_error(res, "'anime'", "available: sketch, plain")
    with pytest.raises(DomainError):
        generate_grid(model, tmp_path / "g.png", domain="anime", domains=pack)


def test_model_own_pack(model: Path, pack: Path, tmp_path: Path) -> None:
    """A model.pt carrying extra['domain_pack'] (pack file bytes as uint8) needs no --domains."""
    import torch

    from gandapt.checkpoint import save_native

    own = save_native(tmp_path / "own.pt", gandapt.load(model).G,
                      extra={"domain_pack": torch.frombuffer(bytearray(pack.read_bytes()), dtype=torch.uint8)})
    generate_grid(own, tmp_path / "a.png", n=2, domain="sketch")
    generate_grid(model, tmp_path / "b.png", n=2, domain="sketch", domains=pack)
    assert np.array_equal(pixels(tmp_path / "a.png"), pixels(tmp_path / "b.png"))


def test_json_output(model: Path, tmp_path: Path) -> None:
    res = invoke(model, "--out", tmp_path / "g.png", "--n", 2, "--seed", 3, "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)  # JSON only on stdout
    assert (s["path"], s["n"], s["cols"], s["seed"], s["truncation"]) == (str(tmp_path / "g.png"), 2, 2, 3, 0.7)
    assert s["fingerprint"] == gandapt.load(model).fingerprint and s["seconds"] >= 0
    res = invoke(model, "--out", tmp_path / "h.png", "--n", 2)
    assert res.exit_code == 0 and res.output.startswith(f"wrote {tmp_path / 'h.png'}: 2 images of 32x32"), res.output
