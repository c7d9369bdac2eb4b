"""The on-screen overlay: a few text lines (domain, FPS, latency) on a dark translucent box, top left.

Sized from the image so it stays readable on the runtime's small frames (64-256 px): the text
height follows the image height, lines too long for the width shrink to fit, and below the smallest
legible size they wrap. numpy and OpenCV only, no torch (DESIGN §1).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from gandapt.errors import GandaptError

FONT_HEIGHT = 0.045  # text height as a fraction of the image height: ~11 px on 256 px
MIN_SCALE = 0.25  # below this Hershey glyphs stop being legible, so longer lines wrap instead
BOX_ALPHA = 0.6  # box opacity: enough for white text on any frame, still showing the image through


def _width(text: str, font: int) -> int:
    import cv2

    return cv2.getTextSize(text, font, 1.0, 1)[0][0]  # at scale 1; widths scale linearly


def _wrap(text: str, font: int, room: float) -> list:
    """Wrap ``text`` into lines at most ``room`` wide (at scale 1).

    Breaks first at runs of 2+ spaces (the separators between fields such as FPS and latency), then
    inside a field at single spaces; a single word too long stays whole and is clipped.
    """
    out: list = []
    for field in re.split(r"\s{2,}", text.strip()):
        words = field.split()
        if not words:
            continue
        out.append(words[0])
        for word in words[1:]:
            if _width(out[-1] + " " + word, font) <= room:
                out[-1] += " " + word
            else:
                out.append(word)
    return out


def draw_overlay(image_rgb: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Draw ``lines`` in a semi-transparent box in the top-left corner.

    Args:
        image_rgb: uint8 RGB [H, W, 3]; not modified.
        lines: the text lines, top to bottom (ASCII; OpenCV's Hershey fonts have no other glyphs).

    Returns:
        A copy of the image with the overlay: uint8 RGB [H, W, 3]. Pixels outside the box are
        unchanged; with no lines, an unchanged copy.
    """
    import cv2

    if not (isinstance(image_rgb, np.ndarray) and image_rgb.dtype == np.uint8 and image_rgb.ndim == 3
            and image_rgb.shape[2] == 3):
        got = getattr(image_rgb, "shape", type(image_rgb).__name__)
        raise GandaptError(f"the overlay takes a uint8 RGB image [H, W, 3], got {got}")
    out = image_rgb.copy()
    lines = [str(s) for s in lines if str(s)]
    if not lines:
        return out
    h, w = out.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    pad = max(1, h // 64)
    # Scale 1.0 of this font is ~22 px tall; fit the height target, then the widest line.
    scale = max(FONT_HEIGHT * h / 22.0, MIN_SCALE)
    room = w - 3 * pad
    widest = max(_width(s, font) for s in lines)
    scale = max(min(scale, room / max(widest, 1)), MIN_SCALE)
    if widest * scale > room:  # still too wide at the smallest legible size: wrap at spaces
        lines = [part for s in lines for part in _wrap(s, font, room / scale)]
        widest = max(_width(s, font) for s in lines)
    (_, text_h), base = cv2.getTextSize("Ag", font, scale, 1)
    step = text_h + base + pad
    box_w = min(w, int(widest * scale) + 2 * pad + 1)
    box_h = min(h, step * len(lines) + pad)
    region = out[:box_h, :box_w]
    # Blend towards black in place: the box darkens the image instead of hiding it.
    region[:] = (region.astype(np.float32) * (1 - BOX_ALPHA)).astype(np.uint8)
    # Anti-aliased strokes smear into grey at small scales; plain ones stay crisp.
    line_type = cv2.LINE_AA if scale >= 0.4 else cv2.LINE_8
    for i, text in enumerate(lines):
        y = pad + text_h + i * step
        cv2.putText(region, text, (pad, y), font, scale, (255, 255, 255), 1, line_type)
    return out
