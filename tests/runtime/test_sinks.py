"""gandapt.runtime.sinks: video and PNG-folder recording, no silent overwrite, playable after Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gandapt.errors import GandaptError
from gandapt.runtime.sinks import open_sink

W, H = 48, 32


def _frame(i: int) -> np.ndarray:
    """Flat frame whose red level encodes i (RGB order), so order and channels can be read back."""
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = 20 * i
    img[..., 2] = 60
    return img


def _read_back(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), path
    fps, frames = cap.get(cv2.CAP_PROP_FPS), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return fps, frames


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_video_round_trip(tmp_path, name) -> None:
    with open_sink(str(tmp_path / name), fps=12, size=(W, H)) as sink:
        for i in range(7):
            sink.write(_frame(i))
        assert not (tmp_path / name).exists()  # still under its temporary name
    assert sink.frames_written == 7 and sink.path == tmp_path / name
    fps, frames = _read_back(sink.path)
    assert fps == pytest.approx(12) and len(frames) == 7
    assert all(f.shape == (H, W, 3) for f in frames)
    reds = [float(f[..., 0].mean()) for f in frames]
    assert all(abs(r - 20 * i) < 8 for i, r in enumerate(reds)), reds
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


def test_png_folder(tmp_path) -> None:
    import cv2

    with open_sink(str(tmp_path / "frames"), fps=0, size=(W, H)) as sink:
        for i in range(3):
            sink.write(_frame(i))
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    back = cv2.imread(str(tmp_path / "frames" / names[2]))[:, :, ::-1]
    assert np.array_equal(back, _frame(2))  # lossless, RGB order kept


def test_a_folder_name_with_a_dot_needs_a_trailing_slash(tmp_path) -> None:
    open_sink(str(tmp_path / "take.v2") + "/", fps=0, size=(W, H)).close()
    assert (tmp_path / "take.v2").is_dir()
    open_sink(str(tmp_path / "take.v2"), fps=0, size=(W, H)).close()  # an existing folder is a folder


def test_no_output_is_no_sink() -> None:
    assert open_sink(None, fps=15, size=(W, H)) is None


def test_refuse_existing_without_force(tmp_path) -> None:
    video = tmp_path / "out.mp4"
    video.write_bytes(b"old")
    with pytest.raises(GandaptError, match="--force") as err:
        open_sink(str(video), fps=10, size=(W, H))
    assert "\n" not in str(err.value) and video.read_bytes() == b"old"
    with open_sink(str(video), fps=10, size=(W, H), force=True) as sink:
        sink.write(_frame(1))
        assert video.read_bytes() == b"old"  # the old file stays until the new one is complete
    assert len(_read_back(video)[1]) == 1

    folder = tmp_path / "frames"
    folder.mkdir()
    open_sink(str(folder), fps=10, size=(W, H)).close()  # an empty folder overwrites nothing
    for i in range(3):
        (folder / f"frame_{i:06d}.png").write_bytes(b"stale")
    (folder / "keep.txt").write_text("mine\n")
    with pytest.raises(GandaptError, match="--force"):
        open_sink(str(folder), fps=10, size=(W, H))
    with open_sink(str(folder), fps=10, size=(W, H), force=True) as sink:
        sink.write(_frame(0))
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000000.png", "keep.txt"]


def test_bad_requests(tmp_path) -> None:
    with pytest.raises(GandaptError, match=r"\.mp4 or \.avi"):
        open_sink(str(tmp_path / "out.mkv"), fps=10, size=(W, H))
    with pytest.raises(GandaptError, match=r"cannot record to \.txt files"):  # a typo, not a folder name
        open_sink(str(tmp_path / "out.txt"), fps=10, size=(W, H))
    with pytest.raises(GandaptError, match="frame rate"):
        open_sink(str(tmp_path / "out.mp4"), fps=0, size=(W, H))
    with open_sink(str(tmp_path / "out.mp4"), fps=10, size=(W, H)) as sink:
        with pytest.raises(GandaptError, match=r"\[32, 48, 3\]"):
            sink.write(np.zeros((W, H, 3), np.uint8))  # transposed: VideoWriter would drop it silently
    assert not any(tmp_path.iterdir())  # nothing written, so no empty unplayable file


def test_exception_mid_write_keeps_a_playable_file(tmp_path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with open_sink(str(path), fps=10, size=(W, H)) as sink:
            for i in range(5):
                sink.write(_frame(i))
            raise KeyboardInterrupt
    assert len(_read_back(path)[1]) == 5


def _default_sigint() -> None:
    """In the child before exec: SIGINT unblocked and at its default, whatever the test process set
    (Python only installs its KeyboardInterrupt handler when it starts with SIGINT at SIG_DFL)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_state(pid: int) -> str:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "unknown"
    return ", ".join(line for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt", "State")))


def test_ctrl_c_keeps_a_playable_file(tmp_path) -> None:
    """A real SIGINT to a process that is recording: the part written so far plays."""
    path = tmp_path / "out.mp4"
    code = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from gandapt.runtime.sinks import open_sink
        sink = open_sink(sys.argv[1], fps=10, size=({W}, {H}))
        try:
            with sink:
                for i in range(100000):
                    sink.write(np.full(({H}, {W}, 3), i % 200, np.uint8))
                    if i == 4:
                        print("ready", flush=True)
                    time.sleep(0.005)
        finally:
            print("written", sink.frames_written, flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the child ignored SIGINT for 60 s; its signal state: {_signal_state(child.pid)}")
    finally:
        child.kill()
    written = int(out.split()[-1])
    assert written >= 5 and "KeyboardInterrupt" in err
    assert len(_read_back(path)[1]) == written
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
