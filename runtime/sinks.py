"""Recording ``gandapt-run``'s output: a video file (.mp4 / .avi) or a folder of PNG frames.

:func:`open_sink` refuses an existing output before any work unless ``force``. A video is written
to a temporary file beside the target and renamed onto it by :meth:`Sink.close`, which the context
manager always calls, so Ctrl-C or an error mid-run still leaves a playable file holding every
frame written so far, and a forced overwrite keeps the old file until the new one is complete.
numpy and OpenCV only, no torch (DESIGN §1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from gandapt.errors import GandaptError
from gandapt.io import check_writable, make_dir, temp_beside

FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}  # codecs every opencv-python wheel can write
# Suffixes that look like a media file we cannot write: refuse them rather than make a folder so named.
REFUSED = (".mkv", ".mov", ".webm", ".gif", ".m4v", ".wmv", ".png", ".jpg", ".jpeg")
FRAME_NAME = "frame_{:06d}.png"


class Sink:
    """Where output frames go; a context manager that always finalizes on exit.

    Attributes:
        path: the final file or folder (None for a sink that writes nowhere).
        frames_written: frames accepted by :meth:`write` so far.
        size: ``(width, height)`` every frame must have.
    """

    def __init__(self, path: Optional[Path], size: Tuple[int, int]):
        self.path = path
        self.size = (int(size[0]), int(size[1]))
        self.frames_written = 0
        self.closed = False

    def _check(self, image_rgb: np.ndarray) -> None:
        # OpenCV's VideoWriter silently drops frames of another size, leaving a short video.
        w, h = self.size
        if not (isinstance(image_rgb, np.ndarray) and image_rgb.dtype == np.uint8
                and image_rgb.shape == (h, w, 3)):
            got = (f"{image_rgb.dtype} {list(image_rgb.shape)}" if isinstance(image_rgb, np.ndarray)
                   else type(image_rgb).__name__)
            raise GandaptError(f"the recording takes uint8 RGB frames [{h}, {w}, 3], got {got}")
        if self.closed:
            raise GandaptError(f"the recording {self.path} is already closed")

    def write(self, image_rgb: np.ndarray) -> None:
        """Append one frame: uint8 RGB [height, width, 3] matching ``size``."""
        raise NotImplementedError

    def close(self) -> None:
        """Finish the recording; safe to call twice."""
        self.closed = True

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class VideoSink(Sink):
    """An .mp4 ('mp4v') or .avi ('MJPG') file, written under a temporary name until closed."""

    def __init__(self, path: Path, fps: float, size: Tuple[int, int], force: bool = False):
        import cv2

        super().__init__(check_writable(path, force), size)
        # The VideoWriter picks the container from the name, so the temporary keeps the extension.
        self.tmp = temp_beside(self.path, f".partial{self.path.suffix}", prefix=f".{self.path.stem}.")
        tmp = str(self.tmp)
        self._writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()]),
                                       float(fps), self.size)
        if not self._writer.isOpened():
            self._writer.release()
            self.tmp.unlink(missing_ok=True)
            raise GandaptError(f"OpenCV cannot write {self.path.suffix} video here; try .avi, or a folder name "
                               "for PNG frames")

    def write(self, image_rgb: np.ndarray) -> None:
        import cv2

        self._check(image_rgb)
        self._writer.write(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the file and give it its final name; with no frames written, leave nothing."""
        if self.closed:
            return
        self.closed = True
        self._writer.release()  # writes the MP4 index: without it the file does not play
        if self.frames_written == 0:
            self.tmp.unlink(missing_ok=True)
            return
        os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(self.tmp, self.path)


class FolderSink(Sink):
    """PNG frames ``frame_000000.png``, ``frame_000001.png``, ... in a folder."""

    def __init__(self, path: Path, size: Tuple[int, int], force: bool = False):
        _check_frame_folder(path, force)
        for old in path.glob("frame_*.png") if path.is_dir() else ():
            old.unlink()  # stale frames from a longer earlier run would read as part of this one
        make_dir(path)
        super().__init__(path, size)

    def write(self, image_rgb: np.ndarray) -> None:
        import cv2

        self._check(image_rgb)
        name = self.path / FRAME_NAME.format(self.frames_written)
        if not cv2.imwrite(str(name), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)):
            raise GandaptError(f"could not write {name}; is the disk full or the folder read-only?")
        self.frames_written += 1


def open_sink(output: Optional[str], fps: float, size: Tuple[int, int], force: bool = False) -> Optional[Sink]:
    """Open the recording named by ``output`` (the ``--output`` value).

    Args:
        output: a ``.mp4`` or ``.avi`` path for a video; any other name is a folder of PNG frames;
            None records nothing.
        fps: frame rate stored in a video (ignored for PNG frames).
        size: ``(width, height)`` of every frame, as OpenCV orders it.
        force: overwrite an existing file, or the ``frame_*.png`` files of a non-empty folder.

    Returns:
        An open :class:`Sink` (use it as a context manager), or None when ``output`` is None.

    Raises:
        GandaptError: the output exists and ``force`` is False, an unsupported video extension,
            a bad size or fps, or OpenCV cannot write the codec.
    """
    if output is None:
        return None
    if min(size) < 1:
        raise GandaptError(f"the recording needs a positive frame size (width, height), got {tuple(size)}")
    path, video = check_output(output, force)
    if video:
        if not fps or fps <= 0:
            raise GandaptError(f"a video needs a positive frame rate, got {fps}")
        return VideoSink(path, fps, size, force)
    return FolderSink(path, size, force)


def check_output(output: str, force: bool = False) -> Tuple[Path, bool]:
    """Check the ``--output`` value before a run starts (at most a video's parent folder is created).

    A ``.mp4``/``.avi`` name is a video; a name without an extension (or ending in ``/``, or an
    existing folder) is a folder of PNG frames; any other extension is refused, so a typo such as
    ``out.txt`` does not silently become a folder.

    Returns:
        ``(path, is_video)``.

    Raises:
        GandaptError: an unsupported extension, or an existing output without ``force``.
    """
    path = Path(output).expanduser()
    suffix = path.suffix.lower()
    if suffix in FOURCC:
        check_writable(path, force)
        return path, True
    folder = str(output).endswith(("/", os.sep)) or path.is_dir() or not suffix
    if suffix in REFUSED or not folder:
        raise GandaptError(f"cannot record to {suffix} files; use a .mp4 or .avi name, or a folder name without "
                           "an extension for PNG frames")
    _check_frame_folder(path, force)
    return path, False


def _check_frame_folder(path: Path, force: bool) -> None:
    if path.exists() and not path.is_dir():
        raise GandaptError(f"{path} is a file; give a folder name for PNG frames, or a .mp4/.avi name")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise GandaptError(f"{path} already exists and is not empty; pass --force to overwrite its frames")
