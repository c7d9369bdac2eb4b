"""gandapt.runtime.display and .overlay: hotkeys, display safety headless, a real window under Xvfb.

Anything that opens a window runs in a subprocess: if the display check were wrong, OpenCV's GUI
would abort that process, not pytest.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gandapt.errors import GandaptError
from gandapt.runtime import display as D
from gandapt.runtime.overlay import draw_overlay

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="display rules tested are Linux's")


@pytest.mark.parametrize("key, action", [
    ("n", "next"), ("N", "next"), ("p", "prev"), (" ", "pause"), ("1", "select:0"), ("9", "select:8"),
    ("b", "blend"), ("+", "blend+"), ("=", "blend+"), ("-", "blend-"), ("s", "save"), ("q", "quit"),
    ("Q", "quit"), ("x", None), ("0", None),
])
def test_keys(key, action) -> None:
    assert D.action_for_key(ord(key)) == action


def test_special_keys() -> None:
    assert D.action_for_key(-1) is None  # no key within the delay
    assert D.action_for_key(27) == "quit"  # Esc
    assert D.action_for_key(0x1000014) == "next" and D.action_for_key(0x1000012) == "prev"  # Qt arrows
    assert D.action_for_key(0xFF53) == "next" and D.action_for_key(0xFF51) == "prev"  # GTK arrows
    for word in ("next", "previous", "1-9", "blend", "save", "space pause", "quit"):
        assert word in D.KEYS_HELP


def _no_gui(monkeypatch) -> None:
    import cv2

    def refuse(*args, **kwargs):
        raise AssertionError("an OpenCV GUI function was called without a display")

    for name in ("namedWindow", "imshow", "waitKey", "waitKeyEx", "getWindowProperty"):
        monkeypatch.setattr(cv2, name, refuse)


@linux_only
def test_no_display(monkeypatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    _no_gui(monkeypatch)
    ok, reason = D.display_available()
    assert not ok and "DISPLAY" in reason
    with pytest.raises(GandaptError, match="--output FILE.mp4") as err:
        D.Window()
    assert "\n" not in str(err.value)


@linux_only
def test_display_without_server(monkeypatch) -> None:
    free = next(n for n in range(600, 700) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    monkeypatch.setenv("DISPLAY", f":{free}")
    _no_gui(monkeypatch)
    ok, reason = D.display_available()
    assert not ok and "no X server" in reason  # the Qt build would abort on this DISPLAY


def test_headless_build(monkeypatch) -> None:
    import cv2

    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:                           NONE\n")
    ok, reason = D.display_available()
    assert not ok and "headless" in reason


@pytest.mark.parametrize("h, w", [(64, 64), (128, 128), (256, 512)])
def test_overlay_changes_the_top_left_box_only(h, w) -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    before = img.copy()
    out = draw_overlay(img, ["sketch", "12.3 FPS   45.6 ms"])
    assert np.array_equal(img, before)  # the input is untouched
    assert out.shape == img.shape and out.dtype == np.uint8
    rows, cols = np.nonzero(np.any(out != img, axis=2))
    box_h, box_w = rows.max() + 1, cols.max() + 1
    assert rows.min() == 0 and cols.min() == 0  # the box starts at the corner
    assert box_h <= 0.6 * h and box_w <= w  # two short lines fit without covering the frame
    assert np.array_equal(out[box_h:], img[box_h:]) and np.array_equal(out[:, box_w:], img[:, box_w:])
    assert out[:box_h, :box_w].max() == 255  # white text on the darkened box
    assert np.array_equal(draw_overlay(img, []), img)


def _start_xvfb():
    """Start Xvfb on a free display (it picks one with -displayfd); skip when it cannot run."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb is not installed (Debian/Ubuntu: apt-get install -y xvfb)")
    read, write = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(write), "-screen", "0", "320x240x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip() if select.select([pipe], [], [], 30)[0] else ""
    if not number.isdigit():
        proc.kill()
        pytest.skip(f"Xvfb did not start: {proc.communicate()[1].decode(errors='replace').strip()[-200:]}")
    return proc, f":{number}"


# Runs under Xvfb: shows a red 48x64 frame at scale 2, finds it on screen through libX11, then
# destroys the window as a user closing it would. The opencv-python Qt wheels sometimes leave a new
# window black on an X server without a window manager (it never sees its MapNotify; ~1 in 5 here,
# opencv/opencv-python#356, #362); a fresh window paints, so up to 5 windows are tried.
_WINDOW_CHILD = textwrap.dedent("""
    import ctypes, ctypes.util, json
    import cv2, numpy as np
    from gandapt.runtime.display import Window, display_available

    class XImage(ctypes.Structure):
        _fields_ = [(n, ctypes.c_int) for n in ("width", "height", "xoffset", "format")] + [
            ("data", ctypes.c_void_p)] + [(n, ctypes.c_int) for n in (
            "byte_order", "bitmap_unit", "bitmap_bit_order", "bitmap_pad", "depth", "bytes_per_line",
            "bits_per_pixel")]

    def screen():
        lib = ctypes.util.find_library("X11")
        if lib is None:
            return None
        x11 = ctypes.CDLL(lib)
        x11.XOpenDisplay.restype, x11.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        x11.XDefaultRootWindow.restype, x11.XDefaultRootWindow.argtypes = ctypes.c_ulong, [ctypes.c_void_p]
        for f in (x11.XDisplayWidth, x11.XDisplayHeight):
            f.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XGetImage.restype = ctypes.POINTER(XImage)
        x11.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                                  ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
        dpy = x11.XOpenDisplay(None)
        w, h = x11.XDisplayWidth(dpy, 0), x11.XDisplayHeight(dpy, 0)
        ptr = x11.XGetImage(dpy, x11.XDefaultRootWindow(dpy), 0, 0, w, h, 0xFFFFFFFF, 2)  # ZPixmap
        img = ptr.contents
        bits, stride = img.bits_per_pixel, img.bytes_per_line
        raw = np.frombuffer(ctypes.string_at(img.data, stride * h), np.uint8)
        x11.XDestroyImage(ptr)
        x11.XCloseDisplay(ctypes.c_void_p(dpy))
        if bits != 32:
            return None
        return raw.reshape(h, stride)[:, : 4 * w].reshape(h, w, 4)[..., 2::-1]  # BGRX -> RGB

    ok, reason = display_available()
    report = {"ok": ok, "reason": reason, "windows": 0}
    frame = np.zeros((64, 48, 3), np.uint8)
    frame[..., 0] = 255
    while True:
        report["windows"] += 1
        win = Window("gandapt-test", scale=2)
        win.show(frame)
        for _ in range(20):  # Qt paints asynchronously
            report["action"] = win.poll(50)
            grab = screen()
            report["red_pixels"] = None if grab is None else int(np.all(grab == (255, 0, 0), axis=2).sum())
            if report["red_pixels"] in (None, 96 * 128):
                break
        if report["red_pixels"] in (None, 96 * 128) or report["windows"] == 5:
            break
        win.close()
    with win:
        report["visible"] = cv2.getWindowProperty("gandapt-test", cv2.WND_PROP_VISIBLE)
        report["rect"] = list(cv2.getWindowImageRect("gandapt-test"))
        cv2.destroyWindow("gandapt-test")  # as if the user closed it
        report["after_close"] = win.poll(10)
        win.show(frame)  # must not reopen it
        report["closed"] = win.closed
    print(json.dumps(report))
""")


@linux_only
def test_window_under_xvfb() -> None:
    if D._gui_backend() is None:
        pytest.skip("OpenCV has no GUI support (a headless build)")
    proc, display = _start_xvfb()
    try:
        env = {**os.environ, "DISPLAY": display}
        env.pop("WAYLAND_DISPLAY", None)
        done = subprocess.run([sys.executable, "-c", _WINDOW_CHILD], env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"], report["reason"]
    assert report["visible"] >= 1 and report["rect"][2:] == [96, 128]  # shown, scaled 2x
    assert report["red_pixels"] in (None, 96 * 128)  # None: no libX11 to read the screen with
    assert report["action"] is None and report["after_close"] == "quit" and report["closed"]
