"""Atomic, non-clobbering file writes shared by every writer in gandapt.

A crash mid-write never leaves a half-written file under the final name: data goes to a temporary
file in the same directory, is flushed and fsynced, then renamed over the target in one step.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

from gandapt.errors import GandaptError

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable(path: PathLike, force: bool = False) -> Path:
    """Refuse to overwrite an existing file unless ``force``; make the parent directory.

    Raises:
        GandaptError: the target exists and ``force`` is False, or it is a directory.
    """
    path = Path(path)
    if path.is_dir():
        raise GandaptError(f"{path} is a directory; give a file path")
    if path.exists() and not force:
        raise GandaptError(f"{path} already exists; pass --force (force=True) to overwrite it")
    make_dir(path.parent)
    return path


def make_dir(folder: PathLike) -> Path:
    """``mkdir -p folder``, failing with one line that names the part of the path in the way.

    Raises:
        GandaptError: an ancestor is a file, or the folder cannot be created (permissions, read-only).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        raise GandaptError(f"cannot create folder {folder}: {blocker} is a file; choose another output path") from None
    except OSError as err:
        raise GandaptError(f"cannot create folder {folder} ({err.strerror}); choose another output path") from None
    return folder


def temp_beside(path: PathLike, suffix: str = ".tmp", directory: bool = False, prefix: str = "") -> Path:
    """A new hidden temporary file (or folder) in ``path``'s folder, named after ``path``, to be
    renamed onto it once complete.

    Raises:
        GandaptError: the folder cannot be created or written (names ``path``, not the temporary name).
    """
    path = Path(path)
    make_dir(path.parent)
    name = prefix or f".{path.name}."
    try:
        if directory:
            return Path(tempfile.mkdtemp(prefix=name, suffix=suffix, dir=path.parent))
        fd, tmp = tempfile.mkstemp(prefix=name, suffix=suffix, dir=path.parent)
    except OSError as err:
        raise GandaptError(f"cannot write {path}: {err.strerror} in {path.parent}; "
                           "choose another output path") from None
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The caller writes the whole file to the yielded path. On any exception the temporary file is
    removed and ``path`` is untouched.
    """
    path = check_writable(path, force)
    tmp_path = temp_beside(path)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:  # make the bytes durable before the rename
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: PathLike, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)
    return Path(path)
