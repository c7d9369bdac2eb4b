"""gandapt.samples.render_clip: the webcam-like avatar MP4 (frame count, size, motion, no clobbering)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("python_avatars", reason="needs the [train] extra (python-avatars, cairosvg)")
pytest.importorskip("cairosvg", reason="needs the [train] extra (python-avatars, cairosvg)")

from gandapt.errors import GandaptError  # noqa: E402
from gandapt.runtime.frames import read_video  # noqa: E402
from gandapt.samples.render_clip import avatar_clip_frames, build_avatar_clip  # noqa: E402

FPS = 15


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "avatar_clip.mp4"
    build_avatar_clip(path, seconds=1.0, fps=FPS)
    return path


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


def test_clip_reads_back(clip) -> None:
    frames = read_video(clip)
    assert len(frames) == FPS
    assert all(f.shape == (144, 192, 3) for f in frames)
    assert clip.stat().st_size < 200_000
    assert not [p.name for p in clip.parent.iterdir() if p != clip]  # no temporary file left behind


def test_clip_moves_smoothly_and_changes_avatar(clip) -> None:
    frames = read_video(clip)
    diffs = [_diff(a, b) for a, b in zip(frames, frames[1:])]
    cuts = {FPS // 3 - 1, 2 * FPS // 3 - 1}  # a new avatar comes on at each third
    assert all(d > 20 for i, d in enumerate(diffs) if i in cuts), diffs
    steady = [d for i, d in enumerate(diffs) if i not in cuts]
    assert all(0.1 < d < 5 for d in steady), diffs  # it moves, a little at a time


def test_clip_is_framed_like_the_avatars(clip) -> None:
    for frame in read_video(clip)[:: FPS // 3]:
        background = frame[0, 0].astype(int)
        assert _diff(frame[2:6, :8], background) < 4  # a flat backdrop around the person
        assert _diff(frame[-3:, 90:102], background) > 30  # shoulders reach the bottom edge
        assert _diff(frame[:, 88:104], background) > 15  # the person is in the middle
        assert _diff(frame[:, 88:104], background) > 3 * _diff(frame[:, :16], background)


def test_clip_is_deterministic(clip) -> None:
    made = avatar_clip_frames(seconds=1.0, fps=FPS)
    assert all(np.array_equal(a, b) for a, b in zip(made, avatar_clip_frames(seconds=1.0, fps=FPS)))
    decoded = read_video(clip)
    # the file holds those frames, up to mp4v's loss (~3 levels on average), and in RGB order
    assert all(_diff(a, b) < 5 for a, b in zip(made, decoded))
    assert all(_diff(a[..., ::-1], b) > 2 * _diff(a, b) for a, b in zip(made, decoded))


def test_overwrite_needs_force(clip) -> None:
    before = clip.read_bytes()
    with pytest.raises(GandaptError, match="already exists"):
        build_avatar_clip(clip, seconds=1.0, fps=FPS)
    assert clip.read_bytes() == before
    build_avatar_clip(clip, seconds=0.4, fps=FPS, force=True)
    assert len(read_video(clip)) == 6


def test_bad_arguments_are_refused(tmp_path) -> None:
    with pytest.raises(GandaptError, match="fps"):
        build_avatar_clip(tmp_path / "x.mp4", seconds=0.0)
    assert not (tmp_path / "x.mp4").exists()
