"""Frame preprocessing: find the face, cut a square framed like the training avatars, scale it.

Shared by the encoder's evaluation and the live runtime, so it imports no torch (DESIGN §1):
numpy and OpenCV only. The training avatars are head-and-shoulders cartoons whose face (skin from
brow to chin) spans about the central 40% of the image width, a little above the middle; a real
face crop is cut to match, because the encoder has only ever seen that framing.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import numpy as np

from gandapt.errors import GandaptError

Box = Tuple[int, int, int, int]  # x, y, w, h in pixels
Square = Tuple[int, int, int]  # x0, y0, side in pixels; may reach outside the frame

MODES = ("face", "center", "none")
CASCADE = "haarcascade_frontalface_default.xml"
# Tuned by eye on the carphone clip and the astronaut against dataset avatars: a Haar box spans
# brow to just above the chin and cheek to cheek, so at these values the face fills the central
# ~40% of the width with the eyes ~0.4, mouth ~0.53 and chin ~0.63 down, as in the avatars, and the
# shoulders show below.
FACE_SCALE = 2.6  # crop side / face-box side
FACE_SHIFT = 0.06  # crop centre below the face-box centre, as a fraction of the crop side

DETECT_SIDE = 320  # scan frames at most this short side: same faces, ~20% less time on 720p
MIN_FACE = 0.1  # smallest face side searched, as a fraction of the short side

_cascade = None  # one CascadeClassifier per process: parsing the XML costs ~20 ms


def _classifier():
    global _cascade
    if _cascade is None:
        import cv2

        folder = getattr(getattr(cv2, "data", None), "haarcascades", "")  # cv2.data may be gone too
        path = os.path.join(folder, CASCADE)
        if not os.path.isfile(path):
            raise GandaptError(f"OpenCV has no Haar cascade {CASCADE} (opencv-python>=5 ships none); "
                               "pip install 'opencv-python<5'")
        classifier = cv2.CascadeClassifier(path)
        if classifier.empty():
            raise GandaptError(f"OpenCV could not load {path}; pip install --force-reinstall 'opencv-python<5'")
        _cascade = classifier
    return _cascade


def _check_frame(frame_rgb: np.ndarray) -> None:
    if not (isinstance(frame_rgb, np.ndarray) and frame_rgb.dtype == np.uint8 and frame_rgb.ndim == 3
            and frame_rgb.shape[2] == 3 and min(frame_rgb.shape[:2]) > 0):
        got = (f"{frame_rgb.dtype} {list(frame_rgb.shape)}" if isinstance(frame_rgb, np.ndarray)
               else type(frame_rgb).__name__)
        raise GandaptError(f"expected a uint8 RGB frame [H, W, 3], got {got}")


def detect_face(frame_rgb: np.ndarray) -> Optional[Box]:
    """Find the largest frontal face with OpenCV's Haar cascade.

    Args:
        frame_rgb: uint8 RGB [H, W, 3].

    Returns:
        ``(x, y, w, h)`` of the largest face in pixels, or None when there is none.

    Raises:
        GandaptError: a malformed frame, or an OpenCV without the Haar cascades.
    """
    import cv2

    _check_frame(frame_rgb)
    # No histogram equalisation: on the astronaut it turns the helmet ring into a larger "face".
    gray = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    k = min(1.0, DETECT_SIDE / min(gray.shape))
    if k < 1:
        gray = cv2.resize(gray, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    # Small hits are background faces or texture, and would upscale to a blurry crop anyway.
    min_side = max(24, int(MIN_FACE * min(gray.shape)))
    faces = _classifier().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    return tuple(int(round(v / k)) for v in (x, y, w, h))  # back to frame pixels


def face_square(box: Box, frame_shape: Sequence[int], scale: float = FACE_SCALE,
                shift: float = FACE_SHIFT) -> Square:
    """The square crop around a face box, framed like the training avatars.

    Args:
        box: ``(x, y, w, h)`` of the face, as from :func:`detect_face`.
        frame_shape: the frame's shape ``(H, W, ...)``; unused for the geometry (the square may
            leave the frame and is then padded by :func:`crop`), kept for a uniform signature.
        scale: crop side / face-box side (Haar boxes are square; the larger side is used).
        shift: how far the crop's centre sits below the face-box centre, as a fraction of the side.

    Returns:
        ``(x0, y0, side)``: the square's top-left corner and side in pixels.
    """
    x, y, w, h = box
    side = max(1, int(round(scale * max(w, h))))
    cx, cy = x + w / 2.0, y + h / 2.0 + shift * side
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def center_square(frame_shape: Sequence[int]) -> Square:
    """The largest square centred in the frame: ``(x0, y0, side)``."""
    h, w = int(frame_shape[0]), int(frame_shape[1])
    side = min(h, w)
    return (w - side) // 2, (h - side) // 2, side


def cut_square(frame_rgb: np.ndarray, square: Square) -> np.ndarray:
    """The pixels of ``square``, edge-replicated where it leaves the frame: uint8 RGB [side, side, 3]."""
    import cv2

    x0, y0, side = square
    h, w = frame_rgb.shape[:2]
    x1, y1 = x0 + side, y0 + side
    inside = frame_rgb[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    if inside.size == 0:  # wholly outside: nothing to replicate from, so take the nearest edge pixel
        ys, xs = min(max(y0, 0), h - 1), min(max(x0, 0), w - 1)
        return np.broadcast_to(frame_rgb[ys, xs], (side, side, 3)).copy()
    top, left = max(-y0, 0), max(-x0, 0)
    bottom, right = max(y1 - h, 0), max(x1 - w, 0)
    if top or left or bottom or right:  # pad rather than shrink, so the framing stays the same
        inside = cv2.copyMakeBorder(inside, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(inside)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size``: INTER_AREA when shrinking (no aliasing), else INTER_LINEAR."""
    import cv2

    if img.shape[0] == size and img.shape[1] == size:
        return img.copy()
    shrink = size < img.shape[0] or size < img.shape[1]
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def crop(frame_rgb: np.ndarray, mode: str = "face", size: int = 64) -> Tuple[np.ndarray, str]:
    """Cut and scale one frame for the encoder or generator.

    Args:
        frame_rgb: uint8 RGB [H, W, 3].
        mode: ``"face"`` (square around the largest face, falling back to ``"center"`` when none is
            found), ``"center"`` (largest centred square) or ``"none"`` (the whole frame, squashed).
        size: output side in pixels.

    Returns:
        ``(image, used)``: uint8 RGB [size, size, 3], and the mode actually used
        (``"face"``, ``"center"`` or ``"none"``).

    Raises:
        GandaptError: an unknown mode, a bad size, or a malformed frame.
    """
    if mode not in MODES:
        raise GandaptError(f"unknown crop mode {mode!r}; choose from {', '.join(MODES)}")
    if int(size) < 1:
        raise GandaptError(f"crop size must be >= 1, got {size}")
    _check_frame(frame_rgb)
    if mode == "none":
        return resize(frame_rgb, size), "none"
    box = detect_face(frame_rgb) if mode == "face" else None
    if box is None:
        return resize(cut_square(frame_rgb, center_square(frame_rgb.shape)), size), "center"
    return resize(cut_square(frame_rgb, face_square(box, frame_rgb.shape)), size), "face"


class FaceTracker:
    """Stable face crops for a stream of frames.

    A per-frame detector flickers (a blink, a turned head, a cartoon face it only sometimes sees),
    and each flicker would jump the crop and so the whole generated image. The tracker smooths the
    box over hits and keeps the last box through up to ``max_misses`` missed frames; only then does
    it fall back to the centre square.

    Args:
        smoothing: weight of the previous box in the running average (0: no smoothing).
        max_misses: frames a lost face keeps its last box.
    """

    def __init__(self, smoothing: float = 0.6, max_misses: int = 30):
        self.smoothing, self.max_misses = float(smoothing), int(max_misses)
        self.box: Optional[Tuple[float, float, float, float]] = None
        self.misses = 0

    def crop(self, frame_rgb: np.ndarray, size: int = 64) -> Tuple[np.ndarray, str]:
        """Like :func:`crop` with mode ``"face"``, but tracked: ``(image, "face"|"center")``."""
        _check_frame(frame_rgb)
        hit = detect_face(frame_rgb)
        if hit is not None:
            self.misses = 0
            a = self.smoothing if self.box is not None else 0.0
            prev = self.box or hit
            self.box = tuple(a * p + (1 - a) * h for p, h in zip(prev, hit))
        else:
            self.misses += 1
            if self.misses > self.max_misses:
                self.box = None
        if self.box is None:
            return resize(cut_square(frame_rgb, center_square(frame_rgb.shape)), size), "center"
        box = tuple(int(round(v)) for v in self.box)
        return resize(cut_square(frame_rgb, face_square(box, frame_rgb.shape)), size), "face"


def to_input(img_uint8: np.ndarray) -> np.ndarray:
    """Convert a crop to the encoder/generator convention.

    Args:
        img_uint8: uint8 RGB [H, W, 3].

    Returns:
        float32 [1, 3, H, W] in [-1, 1] (``x / 127.5 - 1``).
    """
    if not (isinstance(img_uint8, np.ndarray) and img_uint8.dtype == np.uint8 and img_uint8.ndim == 3
            and img_uint8.shape[2] == 3):
        raise GandaptError(f"expected a uint8 RGB image [H, W, 3], got {getattr(img_uint8, 'shape', img_uint8)}")
    x = img_uint8.astype(np.float32).transpose(2, 0, 1)[None]  # [1, 3, H, W]
    return np.ascontiguousarray(x / np.float32(127.5) - np.float32(1.0))
