"""gandapt.runtime.sources: camera, video, image folder, shipped clip and latent-walk frame sources."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from gandapt.errors import GandaptError
from gandapt.runtime import sources as S


def _write_clip(path, n: int = 6, size=(40, 32), fps: float = 10) -> None:
    """n flat frames; frame i is red (in RGB terms) of level 40 * i, so order and channels show."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        bgr = np.zeros((size[1], size[0], 3), np.uint8)
        bgr[..., 2] = 40 * i  # red, in OpenCV's BGR order
        writer.write(bgr)
    writer.release()


def _reds(frames) -> list:
    return [round(float(f.image[..., 0].mean()) / 40) for f in frames]


def test_video_every_frame_in_order(tmp_path) -> None:
    path = tmp_path / "clip.mp4"
    _write_clip(path)
    with S.open_source(str(path)) as src:
        assert not src.live and src.fps == pytest.approx(10)
        assert src.description == f"video {path} (40x32, 10 fps, 6 frames)"
        frames = list(src)
    assert [f.index for f in frames] == list(range(6))
    assert _reds(frames) == list(range(6))  # RGB: red is channel 0
    assert all(f.image.shape == (32, 40, 3) and f.image.dtype == np.uint8 and f.z is None for f in frames)
    assert all(a.t_capture <= b.t_capture for a, b in zip(frames, frames[1:]))


def test_video_loop_and_max_frames(tmp_path) -> None:
    path = tmp_path / "clip.mp4"
    _write_clip(path, n=4)
    with S.open_source(str(path), loop=True, max_frames=10) as src:
        frames = list(src)
    assert _reds(frames) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert [f.index for f in frames] == list(range(10))  # the index keeps counting across loops
    with S.open_source(str(path), max_frames=2) as src:
        assert len(list(src)) == 2
    with S.open_source(str(path), max_frames=0) as src:
        assert list(src) == []
    with S.open_source(str(path)) as src:
        assert _reds(src) == _reds(src) == [0, 1, 2, 3]  # a second iteration starts over


def test_image_folder_natural_order(tmp_path, capsys) -> None:
    import cv2

    for name, level in [("f10.png", 3), ("f2.jpg", 2), ("f1.PNG", 1)]:
        img = np.zeros((20, 30, 3), np.uint8)
        img[..., 2] = 40 * level  # BGR red
        assert cv2.imwrite(str(tmp_path / name), img)
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "f5.png").write_bytes(b"corrupt")
    with S.open_source(str(tmp_path)) as src:
        assert src.fps is None and not src.live and "4 files" in src.description
        frames = list(src)
    assert _reds(frames) == [1, 2, 3]  # f1, f2, (f5 unreadable), f10
    err = capsys.readouterr().err
    assert "f5.png" in err and err.count("\n") == 1
    with S.open_source(str(tmp_path), loop=True, max_frames=5) as src:
        assert _reds(src) == [1, 2, 3, 1, 2]


def test_single_image(tmp_path) -> None:
    import cv2

    assert cv2.imwrite(str(tmp_path / "face.jpg"), np.full((16, 16, 3), 128, np.uint8))
    with S.open_source(str(tmp_path / "face.jpg")) as src:
        assert [f.image.shape for f in src] == [(16, 16, 3)]


def test_sample_clip() -> None:
    with S.open_source("sample") as src:
        assert src.fps == pytest.approx(15) and not src.live
        assert "192x144" in src.description
        frames = list(src)
    assert len(frames) == 90
    assert frames[0].image.shape == (144, 192, 3)


def test_latent_walk_smooth_and_seeded() -> None:
    with S.open_source("latent", z_dim=64, seed=3, walk_speed=0.05) as src:
        assert src.fps is None and not src.live and "every 20 frames" in src.description
        zs = np.stack([f.z for f in itertools.islice(src, 200)])  # unbounded: take a slice
    assert zs.dtype == np.float32 and zs.shape == (200, 64)
    steps = np.linalg.norm(np.diff(zs, axis=0), axis=1) / np.linalg.norm(zs[:-1], axis=1)
    assert steps.max() < 0.15  # ~pi/2 / 20 per frame between near-orthogonal keyframes
    assert len({tuple(z) for z in zs}) == 200  # it keeps moving
    # slerp keeps |z| near sqrt(z_dim); a straight line would dip to ~0.7x between keyframes.
    norms = np.linalg.norm(zs, axis=1) / np.sqrt(64)
    assert norms.min() > 0.7 and norms.max() < 1.4
    with S.open_source("latent", z_dim=64, seed=3, walk_speed=0.05, max_frames=200) as again:
        assert np.array_equal(np.stack([f.z for f in again]), zs)
    with S.open_source("latent", z_dim=64, seed=4, max_frames=1) as other:
        assert not np.allclose(next(iter(other)).z, zs[0])
    assert all(f.image is None for f in S.open_source("latent", max_frames=3))


class _FakeCamera:
    """A cv2.VideoCapture stand-in that delivers ``frames`` frames and then unplugs."""

    frames = 3

    def __init__(self, index, api=None):
        self.left = self.frames

    def isOpened(self) -> bool:
        return True

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        return True, np.zeros((48, 64, 3), np.uint8)

    def get(self, prop) -> float:
        return 30.0

    def set(self, prop, value) -> bool:
        return True

    def release(self) -> None:
        pass


def test_camera_disconnect_ends_cleanly(monkeypatch, capsys) -> None:
    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", _FakeCamera)
    with S.open_source("webcam") as src:
        assert src.live and src.fps == 30 and src.description == "camera 0 (64x48, 30 fps)"
        assert len(list(src)) == 3
    err = capsys.readouterr().err
    assert "camera 0 stopped sending frames after 3" in err and err.count("\n") == 1


def test_missing_camera_one_line() -> None:
    with pytest.raises(GandaptError) as err:
        S.open_source("63")
    assert str(err.value) == "no camera at index 63; use --source sample (the shipped clip) or --source latent"
    if not os.path.exists("/dev/video0"):  # only where no real camera would open
        with pytest.raises(GandaptError, match="no camera at index 0"):
            S.open_source("webcam")


@pytest.mark.parametrize("make, match", [
    (lambda d: (d / "empty").mkdir() or d / "empty", "no PNG or JPG images"),
    (lambda d: d / "nowhere.mp4", "unknown --source"),
    (lambda d: (d / "junk.mp4").write_text("not a video\n") and d / "junk.mp4", "cannot open|decoded no frames"),
])
def test_errors_are_one_line(tmp_path, make, match) -> None:
    with pytest.raises(GandaptError, match=match) as err:
        S.open_source(str(make(tmp_path)))
    assert "\n" not in str(err.value)


def test_bad_arguments() -> None:
    with pytest.raises(GandaptError, match="walk_speed"):
        S.open_source("latent", walk_speed=0)
    with pytest.raises(GandaptError, match="frames"):
        S.open_source("latent", max_frames=-1)


def test_runtime_io_modules_import_no_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np\n"
            "from gandapt.runtime import display, overlay, sinks, sources\n"
            "assert len(list(sources.open_source('latent', z_dim=8, max_frames=2))) == 2\n"
            "overlay.draw_overlay(np.zeros((64, 64, 3), np.uint8), ['x'])\n"
            "display.display_available()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
