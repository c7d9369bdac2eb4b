"""Frame sources for ``gandapt-run``: camera, video file, image folder, the shipped clip, latent walk.

:func:`open_source` turns the ``--source`` string into a :class:`Source`, checking it can deliver a
first frame before anything else starts, so a wrong spec fails with one line before a session is
built. Iterating a source yields :class:`Frame` objects; camera, video and image sources carry an
image, the latent walk carries a ``z``. numpy and OpenCV only, no torch (DESIGN §1).
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from gandapt.errors import GandaptError

KEYWORDS = ("webcam", "sample", "latent")
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
USAGE = "use webcam, a camera index (0, 1, ...), a video file, an image folder, sample or latent"

Item = Tuple[Optional[np.ndarray], Optional[np.ndarray]]  # (image RGB, z): what one pass yields


@dataclass
class Frame:
    """One frame from a source.

    Attributes:
        index: running frame number from the source (keeps counting across loops; a live pipeline
            that drops frames sees gaps).
        t_capture: ``time.perf_counter()`` when the frame was captured.
        image: uint8 RGB [H, W, 3] for camera/video/images; None for the latent walk.
        z: float32 [z_dim] for the latent walk; None otherwise.
    """

    index: int
    t_capture: float
    image: Optional[np.ndarray]
    z: Optional[np.ndarray]


class Source:
    """Base class: a context manager that yields :class:`Frame` objects when iterated.

    Subclasses implement :meth:`_pass` (one pass over their frames); this class adds the running
    index, the capture time, ``max_frames`` and ``loop``.

    Attributes:
        live: True for a camera (the pipeline may drop stale frames); False: every frame is processed.
        fps: nominal rate (a video's fps, a camera's reported fps), None for images and the latent walk.
        description: one line for logs.
    """

    live: bool = False
    fps: Optional[float] = None
    description: str = ""

    def __init__(self, max_frames: Optional[int] = None, loop: bool = False):
        if max_frames is not None and max_frames < 0:
            raise GandaptError(f"--frames must be >= 0, got {max_frames}")
        self.max_frames = max_frames
        self.loop = loop

    def _pass(self, first: bool) -> Iterator[Item]:
        """One pass over the frames; ``first`` is False for the repeats of ``loop``."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        index, first, limit = 0, True, self.max_frames
        while limit is None or index < limit:
            got = 0
            for image, z in self._pass(first):
                yield Frame(index, time.perf_counter(), image, z)
                index, got = index + 1, got + 1
                if limit is not None and index >= limit:
                    return
            # A pass that yields nothing would loop forever without making a frame.
            if not self.loop or got == 0:
                return
            first = False

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fps_text(fps: Optional[float]) -> str:
    return f"{fps:.4g} fps" if fps else "unknown fps"


class VideoSource(Source):
    """Every frame of a video file (any container OpenCV's FFmpeg backend reads)."""

    def __init__(self, path: Path, label: str = "video", **kw):
        super().__init__(**kw)
        import cv2

        self.path = Path(path)
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self.close()
            raise GandaptError(f"OpenCV cannot open {self.path} as a video; give an mp4/avi file or {USAGE}")
        ok, self._pending = self._cap.read()  # decode one frame now, so a bad codec fails here
        if not ok:
            self.close()
            raise GandaptError(f"OpenCV decoded no frames from {self.path}; the file is empty or its codec "
                               "unsupported (re-encode it to H.264 .mp4)")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        h, w = self._pending.shape[:2]
        loop = ", looping" if self.loop else ""
        self.description = f"{label} {self.path} ({w}x{h}, {_fps_text(self.fps)}, {count} frames{loop})"

    def _pass(self, first: bool) -> Iterator[Item]:
        import cv2

        if self._pending is None:  # a repeat: reopen rather than seek, which some containers get wrong
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self.path))
            ok, self._pending = self._cap.read()
            if not ok:
                return
        bgr, self._pending = self._pending, None
        while bgr is not None:
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None  # OpenCV decodes to BGR
            ok, bgr = self._cap.read()
            if not ok:
                bgr = None

    def close(self) -> None:
        if getattr(self, "_cap", None) is not None:
            self._cap.release()


def _natural_key(path: Path) -> list:
    # frame_2.png before frame_10.png
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", path.name)]


class ImageSource(Source):
    """PNG/JPG files in natural name order; unreadable files are skipped with a warning."""

    def __init__(self, files: List[Path], description: str, **kw):
        super().__init__(**kw)
        self.files = files
        loop = ", looping" if self.loop else ""
        self.description = description + loop

    def _pass(self, first: bool) -> Iterator[Item]:
        import cv2

        for path in self.files:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey and RGBA come back as 3-channel BGR
            if bgr is None:
                print(f"warning: cannot read image {path}; skipping it", file=sys.stderr)
                continue
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None


def _image_folder(folder: Path, **kw) -> ImageSource:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    files.sort(key=_natural_key)
    if not files:
        raise GandaptError(f"no PNG or JPG images in {folder}; add frames there, or use --source sample")
    return ImageSource(files, f"images {folder} ({len(files)} files)", **kw)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    # Probing a missing camera makes OpenCV print several WARN lines; our one-line error says it all.
    import cv2

    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(level)


class CameraSource(Source):
    """A live camera; a disconnect mid-run ends iteration with a warning instead of raising."""

    live = True

    def __init__(self, index: int, **kw):
        super().__init__(**kw)
        import cv2

        self.index = index
        self._cap = None
        backends = [cv2.CAP_V4L2, cv2.CAP_ANY] if sys.platform.startswith("linux") else [cv2.CAP_ANY]
        with _quiet_opencv():
            for api in backends:
                cap = cv2.VideoCapture(index, api)
                if cap.isOpened():
                    self._cap = cap
                    break
                cap.release()
            if self._cap is None:
                raise GandaptError(f"no camera at index {index}; use --source sample (the shipped clip) or "
                                   "--source latent")
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # a deep driver queue serves stale frames
            ok, self._pending = self._cap.read()
        if not ok:
            self.close()
            raise GandaptError(f"camera {index} opened but sent no frame (in use by another program?); "
                               "use --source sample (the shipped clip) or --source latent")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        h, w = self._pending.shape[:2]
        self.description = f"camera {index} ({w}x{h}, {_fps_text(self.fps)})"

    def _pass(self, first: bool) -> Iterator[Item]:
        import cv2

        if not first:  # a camera does not loop
            return
        count = 0
        while True:
            bgr, self._pending = self._pending, None
            if bgr is None:
                ok, bgr = self._cap.read()
                if not ok:
                    print(f"warning: camera {self.index} stopped sending frames after {count}; ending the run",
                          file=sys.stderr)
                    return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None
            count += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1); linear when they are (anti)parallel."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(np.dot(a, b) / max(na * nb, 1e-12))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


class LatentSource(Source):
    """A smooth, seeded walk in z: slerp between random keyframes ``round(1 / walk_speed)`` frames apart.

    Slerp rather than a straight line: a line between two Gaussian samples passes through short
    vectors the mapping network rarely saw, which shows as washed-out frames mid-way.
    """

    def __init__(self, z_dim: int = 512, seed: int = 0, walk_speed: float = 0.02, **kw):
        super().__init__(**kw)
        if z_dim < 1:
            raise GandaptError(f"z_dim must be >= 1, got {z_dim}")
        if not 0 < walk_speed <= 1:
            raise GandaptError(f"walk_speed must be in (0, 1], got {walk_speed}")
        self.z_dim, self.seed = int(z_dim), int(seed)
        self.period = max(1, int(round(1 / walk_speed)))
        self.description = (f"latent walk (z_dim {self.z_dim}, seed {self.seed}, "
                            f"a keyframe every {self.period} frames)")

    def _pass(self, first: bool) -> Iterator[Item]:
        if not first:
            return
        rng = np.random.default_rng(self.seed)
        a = rng.standard_normal(self.z_dim)
        while True:
            b = rng.standard_normal(self.z_dim)
            for i in range(self.period):
                yield None, slerp(a, b, i / self.period).astype(np.float32)
            a = b


def open_source(spec: str, *, z_dim: int = 512, seed: int = 0, walk_speed: float = 0.02,
                max_frames: Optional[int] = None, loop: bool = False) -> Source:
    """Open the frame source named by ``spec`` (the ``--source`` value).

    Keywords win over same-named files (write ``./latent`` for a file called ``latent``).

    Args:
        spec: ``"webcam"`` (camera 0) or a camera index such as ``"1"``; a video file; a folder of
            PNG/JPG images (natural name order) or a single image file; ``"sample"`` (the shipped
            clip, :func:`gandapt.samples.clip`); ``"latent"`` (a z walk).
        z_dim: length of the latent walk's z.
        seed: seed of the latent walk's keyframes (the same seed gives the same walk).
        walk_speed: about 1 / frames between latent keyframes.
        max_frames: stop after this many frames (None: the source's end; the latent walk never ends).
        loop: restart a video or image source at its end (cameras and the walk ignore it).

    Returns:
        An open :class:`Source`; use it as a context manager.

    Raises:
        GandaptError: no camera at that index, an unreadable video, an empty folder or an unknown spec.
    """
    kw = dict(max_frames=max_frames, loop=loop)
    spec = str(spec).strip()
    if spec == "latent":
        return LatentSource(z_dim=z_dim, seed=seed, walk_speed=walk_speed, **kw)
    if spec == "sample":
        from gandapt.samples import clip

        return VideoSource(clip(), label="sample clip", **kw)
    if spec == "webcam" or spec.isdigit():
        return CameraSource(0 if spec == "webcam" else int(spec), **kw)
    path = Path(spec).expanduser()
    if path.is_dir():
        return _image_folder(path, **kw)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTS:
        return ImageSource([path], f"image {path}", **kw)
    if path.is_file():
        return VideoSource(path, **kw)
    raise GandaptError(f"unknown --source {spec!r}: no such file or folder; {USAGE}")
