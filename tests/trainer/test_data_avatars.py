"""The avatar dataset builder: determinism, manifest, resume, refusals, colours, CLI."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("python_avatars")
pytest.importorskip("cairosvg")

from gandapt.errors import GandaptError  # noqa: E402
from gandapt.trainer.data import avatars as A  # noqa: E402
from gandapt.trainer.data.cli import data  # noqa: E402

N, SIZE, SEED = 8, 32, 3


def _pngs(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("avatars") / "ds"
    result = A.build_avatars(out, N, size=SIZE, seed=SEED, workers=1, progress=False)
    assert (result.rendered, result.kept) == (N, 0)
    return out


def test_files_manifest_and_recipe(built: Path) -> None:
    names = sorted(p.name for p in built.iterdir())
    assert names == [f"{i:08d}.png" for i in range(N)] + [A.DATASET_JSON, A.MANIFEST]
    for i in range(N):
        with Image.open(built / f"{i:08d}.png") as im:
            assert (im.size, im.mode) == ((SIZE, SIZE), "RGB")
    records = A.read_manifest(built)
    assert [r["index"] for r in records] == list(range(N))
    for r in records:
        assert set(A.ATTRIBUTES) <= set(r) and r["file"] == f"{r['index']:08d}.png"
        assert r["seed"] == A.image_seed(SEED, r["index"])
        assert all(isinstance(r[a], str) for a in A.ATTRIBUTES)
        assert (r["hat"] == "NONE") != (r["hat_color"] != "NONE")  # hat colour only with a hat
    info = A.read_dataset_info(built)
    assert info["complete"] and info["kind"] == "avatars" and info["format_version"] == A.FORMAT_VERSION
    assert (info["n"], info["size"], info["seed"], info["render_size"]) == (N, SIZE, SEED, 256)
    assert info["versions"]["python-avatars"] == "1.4.1" and info["versions"]["cairosvg"]


def test_same_bytes_with_two_workers_and_new_bytes_with_another_seed(built: Path, tmp_path: Path) -> None:
    A.build_avatars(tmp_path / "w2", N, size=SIZE, seed=SEED, workers=2, progress=False)
    assert _pngs(tmp_path / "w2") == _pngs(built)
    assert (tmp_path / "w2" / A.MANIFEST).read_bytes() == (built / A.MANIFEST).read_bytes()
    A.build_avatars(tmp_path / "s4", 2, size=SIZE, seed=SEED + 1, workers=1, progress=False)
    assert _pngs(tmp_path / "s4")["00000000.png"] != _pngs(built)["00000000.png"]


def test_skin_colour_survives_rendering() -> None:
    """cairosvg drops masked fills when rendering small (skin stays #D0C6AC); we must not."""
    import python_avatars as pa

    default = np.array([0xD0, 0xC6, 0xAC])
    for index in range(4):
        state = random.getstate()
        image, record = A.render_avatar(SEED, index, size=64)
        assert random.getstate() == state  # the caller's global RNG is borrowed, not consumed
        pixels = np.asarray(image, np.int32).reshape(-1, 3)
        skin = np.array(Image.new("RGB", (1, 1), pa.SkinColor[record["skin_color"]].value).getpixel((0, 0)))
        # the face carries a light shading overlay, so allow some distance from the pure colour
        assert (np.abs(pixels - skin).max(axis=1) <= 40).mean() > 0.04, record["skin_color"]
        assert (np.abs(pixels - default).max(axis=1) <= 12).mean() < 0.01, record["skin_color"]


def test_resume_rebuilds_only_missing_or_broken(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    shutil.copytree(built, out)
    (out / "00000002.png").unlink()
    (out / "00000005.png").unlink()
    (out / "00000006.png").write_bytes((built / "00000006.png").read_bytes()[:50])  # truncated
    (out / ".00000007.png.abc.tmp").write_bytes(b"half")  # left by an interrupted write
    (out / A.MANIFEST).unlink()  # interrupted before the manifest: records are recomputed
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    result = A.build_avatars(out, N, size=SIZE, seed=SEED, workers=1, resume=True, progress=False)
    assert (result.rendered, result.kept) == (3, N - 3)
    assert _pngs(out) == _pngs(built)
    assert (out / A.MANIFEST).read_bytes() == (built / A.MANIFEST).read_bytes()
    assert not list(out.glob(".*.tmp"))
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert {k for k in before if before[k] != after[k]} == {"00000006.png"}


def test_resume_extends_to_a_larger_n(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    shutil.copytree(built, out)
    result = A.build_avatars(out, N + 2, size=SIZE, seed=SEED, workers=1, resume=True, progress=False)
    assert (result.rendered, result.kept) == (2, N)
    assert len(A.read_manifest(out)) == N + 2 and A.read_dataset_info(out)["n"] == N + 2


def test_refusals(built: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    (other / ".00000000.png.x.tmp").write_text("another run's write in progress")
    with pytest.raises(GandaptError, match="not empty; pass --resume .* or --force"):
        A.build_avatars(other, 2, size=SIZE, progress=False)
    assert (other / ".00000000.png.x.tmp").exists()  # refusing changes nothing
    with pytest.raises(GandaptError, match="not a gandapt avatars dataset"):
        A.build_avatars(other, 2, size=SIZE, resume=True, progress=False)
    with pytest.raises(GandaptError, match="size=32, not 64"):
        A.build_avatars(built, N, size=64, seed=SEED, resume=True, progress=False)
    with pytest.raises(GandaptError, match="render_size must be >= 256"):
        A.build_avatars(tmp_path / "x", 2, render_size=128, progress=False)
    with pytest.raises(GandaptError, match="not both"):
        A.build_avatars(built, 2, resume=True, force=True, progress=False)
    A.build_avatars(other, 1, size=SIZE, force=True, progress=False)  # keeps what is not ours
    assert (other / "notes.txt").read_text() == "mine" and (other / "00000000.png").is_file()


def test_cli_builds_and_reports_one_line_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["avatars", "--n", "2", "--size", "32", "--out", str(out), "--workers", "1", "--no-progress"]
    result = runner.invoke(data, args)
    assert result.exit_code == 0, result.output
    assert "rendered 2, kept 0 of 2" in result.output
    assert json.loads((out / A.DATASET_JSON).read_text())["n"] == 2
    again = runner.invoke(data, args)
    assert again.exit_code == 1
    lines = again.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "--resume" in lines[0]
    assert runner.invoke(data, args + ["--resume"]).exit_code == 0
