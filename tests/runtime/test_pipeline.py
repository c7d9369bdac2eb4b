"""gandapt-run end to end on the tiny bundle: recording, domain switching, stats, errors, no torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gandapt.errors import GandaptError
from gandapt.runtime.frames import read_video
from gandapt.runtime.pipeline import RunOptions, run


def test_sample_clip_with_a_switch_every_frame(tiny_bundle, tmp_path):
    frames = []
    summary = run(RunOptions(bundle=str(tiny_bundle), source="sample", output=str(tmp_path / "out.mp4"),
                             frames=12, switch_every=1, size=64, window=False, overlay=False,
                             stats=str(tmp_path / "stats.json")), on_frame=frames.append)
    video = read_video(tmp_path / "out.mp4")
    assert len(video) == len(frames) == 12 and video[0].shape == (64, 128, 3)  # [input crop | output]
    assert summary["frames_out"] == 12 and summary["instance_ids_constant"] and summary["switches"] >= 10
    # consecutive outputs use different domains (warm, bold, warm, ...): the right halves differ
    outs = [f[:, 64:].astype(float) for f in frames]
    assert all(np.abs(a - b).mean() > 1.0 for a, b in zip(outs, outs[1:]))
    stats = json.loads((tmp_path / "stats.json").read_text())
    for stage in ("capture", "crop", "encode", "synthesize", "output"):
        assert stats["stages_ms"][stage]["n"] == 12 or stage == "capture"
    assert stats["fps"] > 0 and stats["instance_ids_constant"]
    assert stats["rss_mb"]["first_frame"] > 0 and stats["rss_mb"]["end"] > 0


def test_same_frame_differs_per_domain(tiny_bundle, tmp_path):
    def first(domain):
        out = []
        run(RunOptions(bundle=str(tiny_bundle), source="latent", frames=1, domain=domain, window=False,
                       output=str(tmp_path / f"{domain}.mp4"), overlay=False, size=32), on_frame=out.append)
        return out[0].astype(float)

    warm, bold, base = first("warm"), first("bold"), first("base")
    assert np.abs(warm - bold).mean() > 1 and np.abs(warm - base).mean() > 1 and np.abs(bold - base).mean() > 1


def test_latent_walk_to_png_folder_with_a_blend(tiny_bundle, tmp_path):
    summary = run(RunOptions(bundle=str(tiny_bundle), source="latent", frames=5, blend="warm:0.5,bold:0.5",
                             output=str(tmp_path / "walk"), window=False, size=32))
    assert len(list((tmp_path / "walk").glob("*.png"))) == 5 and summary["frames_out"] == 5
    with pytest.raises(GandaptError, match="walk already exists and is not empty; pass --force"):
        run(RunOptions(bundle=str(tiny_bundle), source="latent", frames=2, output=str(tmp_path / "walk"),
                       window=False, size=32))
    run(RunOptions(bundle=str(tiny_bundle), source="latent", frames=2, output=str(tmp_path / "walk"), window=False,
                   size=32, force=True))  # the help's "folder of PNGs" can be rewritten with --force
    assert len(list((tmp_path / "walk").glob("*.png"))) == 2
    assert summary["stages_ms"]["map"]["n"] == 5 and "encode" not in summary["stages_ms"]


def test_bad_input_is_refused_before_work(tiny_bundle, tmp_path):
    with pytest.raises(GandaptError, match="unknown domain 'nope'"):
        run(RunOptions(bundle=str(tiny_bundle), source="latent", domain="nope", output=str(tmp_path / "a.mp4"),
                       window=False))
    (tmp_path / "exists.mp4").write_bytes(b"x")
    with pytest.raises(GandaptError, match="--force"):
        run(RunOptions(bundle=str(tiny_bundle), source="latent", output=str(tmp_path / "exists.mp4"), window=False))
    assert (tmp_path / "exists.mp4").read_bytes() == b"x"
    with pytest.raises(GandaptError, match="not a folder"):
        run(RunOptions(bundle=str(tmp_path / "nope"), source="latent", window=False, output=str(tmp_path / "b.mp4")))
    (tmp_path / "stats.json").write_text("{}")  # --stats is an output too: kept unless --force, checked first
    with pytest.raises(GandaptError, match="stats.json already exists; pass --force"):
        run(RunOptions(bundle=str(tiny_bundle), source="latent", frames=1, output=str(tmp_path / "c.mp4"),
                       stats=str(tmp_path / "stats.json"), window=False))
    assert (tmp_path / "stats.json").read_text() == "{}" and not (tmp_path / "c.mp4").exists()


def test_a_source_without_one_readable_frame_is_an_error(tiny_bundle, tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "a.png").write_text("not an image")
    with pytest.raises(GandaptError, match="no frame came out of --source .*frames.*nothing was written"):
        run(RunOptions(bundle=str(tiny_bundle), source=str(tmp_path / "frames"), frames=2,
                       output=str(tmp_path / "d.mp4"), window=False))
    assert not (tmp_path / "d.mp4").exists()


def test_no_display_and_no_output_says_what_to_pass(tiny_bundle, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(GandaptError, match="--output"):
        run(RunOptions(bundle=str(tiny_bundle), source="latent", frames=1))


def test_cli_runs_without_torch(tiny_bundle, tmp_path):
    """The onnxruntime path of gandapt-run with torch made unimportable."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from gandapt.runtime.cli import main\n"
            f"main([{str(tiny_bundle)!r}, '--source', 'sample', '--frames', '4', '--output', 'o.mp4', '--json'])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frames_out"] == 4 and len(read_video(tmp_path / "o.mp4")) == 4


def test_cli_errors_are_one_line(tiny_bundle, tmp_path):
    exe = Path(sys.executable).parent / "gandapt-run"
    proc = subprocess.run([str(exe), str(tiny_bundle), "--source", "latent", "--domain", "nope", "--output", "x.mp4"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and "unknown domain 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([str(exe), str(tiny_bundle), "--source", str(tmp_path / "missing.mp4"), "--output", "y.mp4"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
