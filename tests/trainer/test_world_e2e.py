"""Offline world end to end through the CLI: avatars → transform → base training → a loadable model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import gandapt

BIN = Path(sys.executable).parent


def cli(*args, cwd):
    proc = subprocess.run([str(BIN / "gandapt-train"), *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_avatars_transform_train(tmp_path):
    pytest.importorskip("python_avatars")
    pytest.importorskip("cairosvg")
    cli("data", "avatars", "--n", "8", "--size", "32", "--out", "avatars", "--workers", "1", cwd=tmp_path)
    cli("data", "transform", "sketch", "--src", "avatars", "--out", "sketch", cwd=tmp_path)
    info = json.loads((tmp_path / "sketch" / "dataset.json").read_text())
    assert (info["transform"], info["transform_version"], info["n"]) == ("sketch", 1, 8)
    assert len(list((tmp_path / "sketch").glob("*.png"))) == 8
    out = cli("base", "--data", "avatars", "--out", "run", "--steps", "2", "--batch", "4", "--channels", "16,16,8,8",
              "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2", "--sample-every", "0", "--no-progress",
              cwd=tmp_path)
    assert "wrote" in out.stdout
    ck = gandapt.load(tmp_path / "run" / "model.pt")
    assert ck.config.img_resolution == 32 and ck.D is not None
    assert (tmp_path / "run" / "samples" / "fakes0000002.png").exists()
