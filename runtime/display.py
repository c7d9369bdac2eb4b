"""The live window of ``gandapt-run``: show frames, map hotkeys to actions, and never crash headless.

OpenCV's GUI build does not fail politely without a display: Qt prints "could not connect to
display" and aborts the whole process (exit 134) on the first window call, so no try/except can
recover. :func:`display_available` therefore decides, without touching OpenCV's GUI, whether a
window can open: the build must have a GUI backend and, on Linux, a display server must answer on
``DISPLAY`` (or ``WAYLAND_DISPLAY`` for GTK builds; the opencv-python wheel's Qt speaks only X11).
:class:`Window` refuses to open otherwise. numpy and OpenCV only, no torch (DESIGN §1).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from typing import Optional, Tuple

import numpy as np

from gandapt.errors import GandaptError, one_line

KEYS_HELP = ("n/Right next  p/Left previous  1-9 select  b blend on/off  +/- blend weight  "
             "s save frame  space pause  q/Esc quit")

# waitKeyEx codes of the arrow keys differ per GUI backend: Qt, GTK, Win32, Cocoa.
RIGHT = (0x1000014, 0xFF53, 0x270000, 0xF703)
LEFT = (0x1000012, 0xFF51, 0x250000, 0xF702)
KEYS = {
    ord("n"): "next", ord(" "): "pause", ord("p"): "prev",
    ord("b"): "blend", ord("+"): "blend+", ord("="): "blend+", ord("-"): "blend-", ord("_"): "blend-",
    ord("s"): "save", ord("q"): "quit", 27: "quit",  # 27: Esc
    **{ord(str(k)): f"select:{k - 1}" for k in range(1, 10)},
    **{code: "next" for code in RIGHT}, **{code: "prev" for code in LEFT},
}


def action_for_key(code: int) -> Optional[str]:
    """The action of a ``cv2.waitKeyEx`` code: see :data:`KEYS_HELP`; None for no key or an unbound one."""
    if code < 0:
        return None
    if code < 0x100:  # letters ignore Shift and Caps Lock
        code = ord(chr(code).lower())
    return KEYS.get(code)


def _gui_backend() -> Optional[str]:
    import cv2

    m = re.search(r"^\s*GUI:[ \t]*(\S+)", cv2.getBuildInformation(), re.M)
    if m is None or m.group(1).upper() in ("NONE", "NO"):
        return None
    return m.group(1)


def _x_answers(display: str) -> bool:
    """Whether an X server accepts connections at ``display`` (``[host]:N[.screen]``)."""
    m = re.fullmatch(r"(?P<host>[^:]*):(?P<num>\d+)(\.\d+)?", display)
    if m is None:
        return False
    host, num = m.group("host"), int(m.group("num"))
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{num}"
        # Linux X servers also listen on the abstract name, which works where /tmp is not shared.
        targets = [("\0" + path) if sys.platform.startswith("linux") else None, path]
        family = socket.AF_UNIX
    else:
        targets, family = [(host, 6000 + num)], socket.AF_INET
    for target in targets:
        if target is None:
            continue
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(target)
                return True
        except OSError:
            continue
    return False


def _wayland_answers(name: str) -> bool:
    path = name if os.path.isabs(name) else os.path.join(os.environ.get("XDG_RUNTIME_DIR", ""), name)
    return os.path.exists(path)


def display_available() -> Tuple[bool, str]:
    """Whether a window can open here, without calling any OpenCV GUI function.

    Returns:
        ``(ok, reason)``: ``reason`` is one line saying what was found or what is missing.
    """
    gui = _gui_backend()
    if gui is None:
        return False, "OpenCV has no GUI support (a headless build); pip install opencv-python, not -headless"
    if sys.platform in ("darwin", "win32"):
        return True, f"OpenCV {gui} GUI"
    display, wayland = os.environ.get("DISPLAY", ""), os.environ.get("WAYLAND_DISPLAY", "")
    if display and _x_answers(display):
        return True, f"OpenCV {gui} GUI on DISPLAY={display}"
    if wayland and not gui.upper().startswith("QT") and _wayland_answers(wayland):
        return True, f"OpenCV {gui} GUI on WAYLAND_DISPLAY={wayland}"
    if display:
        return False, f"no X server answers on DISPLAY={display}"
    if wayland:
        return False, f"OpenCV's {gui} GUI needs an X display and only WAYLAND_DISPLAY is set; enable XWayland"
    return False, "no display (DISPLAY and WAYLAND_DISPLAY are unset)"


class Window:
    """An OpenCV window that shows RGB frames, scaled up, and reports hotkeys as actions.

    Args:
        title: the window title (also OpenCV's window id).
        scale: integer upscale applied by :meth:`show` (1 shows frames at their size).

    Raises:
        GandaptError: no display or no GUI support (says to record with ``--output`` instead).
    """

    def __init__(self, title: str = "gandapt", scale: int = 4):
        ok, reason = display_available()
        if not ok:
            raise GandaptError(f"cannot open a window: {reason}; record instead with --output FILE.mp4")
        if int(scale) < 1:
            raise GandaptError(f"the window scale must be >= 1, got {scale}")
        import cv2

        self.title, self.scale = title, int(scale)
        self.closed = False
        try:  # GUI_NORMAL: no Qt toolbar and status bar, just the picture
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as e:
            raise GandaptError(f"OpenCV cannot open a window ({one_line(e, 120)}); record instead with "
                               "--output FILE.mp4") from None

    def _visible(self) -> bool:
        import cv2

        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # Qt raises once the window is gone
            return False

    def show(self, image_rgb: np.ndarray) -> None:
        """Show one uint8 RGB [H, W, 3] frame, upscaled by ``scale``; ignored once the window is closed."""
        import cv2

        if self.closed:
            return
        if not self._visible():  # the user closed it: imshow would open a new one
            self.closed = True
            return
        if not (isinstance(image_rgb, np.ndarray) and image_rgb.dtype == np.uint8 and image_rgb.ndim == 3
                and image_rgb.shape[2] == 3):
            got = getattr(image_rgb, "shape", type(image_rgb).__name__)
            raise GandaptError(f"the window shows uint8 RGB images [H, W, 3], got {got}")
        bgr = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
        if self.scale > 1:
            bgr = cv2.resize(bgr, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_CUBIC)
        cv2.imshow(self.title, bgr)

    def poll(self, delay_ms: int = 1) -> Optional[str]:
        """Run the GUI event loop for ``delay_ms`` (at least 1: 0 would block) and return the action.

        Returns:
            ``"next"`` (n, Right), ``"prev"`` (p, Left), ``"select:<k>"`` (digit k+1), ``"blend"`` (b),
            ``"blend+"`` (+ or =), ``"blend-"`` (-), ``"save"`` (s), ``"pause"`` (space), ``"quit"``
            (q, Esc, or the window was closed), or None.
        """
        import cv2

        if self.closed:
            return "quit"
        action = action_for_key(cv2.waitKeyEx(max(1, int(delay_ms))))
        if action is None and not self._visible():
            self.closed = True
            return "quit"
        return action

    def close(self) -> None:
        """Destroy the window; safe to call twice."""
        import cv2

        if getattr(self, "_destroyed", False):
            return
        self._destroyed = self.closed = True
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # let the GUI process the destroy, or the window lingers until exit
        except cv2.error:  # already gone (closed by the user)
            pass

    def __enter__(self) -> "Window":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
