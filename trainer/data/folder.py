"""Training images from any folder: scanning, validation, resizing, in-memory caching.

:class:`ImageFolderDataset` is what every trainer draws real images from, whether the folder is a
gandapt avatar dataset, a transformed copy, or a user's own photos. The helpers above it
(:func:`list_images`, :func:`read_image`, :func:`dataset_fingerprint`) need no torch.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps

from gandapt.errors import GandaptError
from gandapt.trainer.data.avatars import DATASET_JSON, MANIFEST, read_manifest

PathLike = Union[str, os.PathLike]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CACHE_LIMIT_BYTES = 2 * 1024**3  # decoded uint8 images below this stay in memory


def list_images(folder: PathLike) -> List[Path]:
    """Image files under ``folder`` (recursive), sorted; hidden files and folders are skipped.

    Raises:
        GandaptError: ``folder`` is missing or not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise GandaptError(f"{root} {what}; give a folder of images ({'/'.join(IMAGE_EXTENSIONS)})")
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # e.g. .git, .ipynb_checkpoints
        files += [Path(dirpath, f) for f in filenames
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def read_image(path: PathLike) -> np.ndarray:
    """Decode one image file to uint8 RGB ``[H, W, 3]`` (EXIF rotation applied, alpha over white).

    Raises:
        OSError, ValueError, PIL.UnidentifiedImageError: unreadable or truncated file.
    """
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, rgba)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def fit_square(image: np.ndarray, resolution: int) -> np.ndarray:
    """Centre-crop ``image[H, W, 3]`` to a square and resize it to ``[resolution, resolution, 3]``."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top:top + side, left:left + side]
    if side == resolution:
        return np.ascontiguousarray(image)
    # area averaging when shrinking (no aliasing), Lanczos when enlarging (sharpest)
    interp = cv2.INTER_AREA if side > resolution else cv2.INTER_LANCZOS4
    return cv2.resize(image, (resolution, resolution), interpolation=interp)


def dataset_fingerprint(folder: PathLike) -> str:
    """A fast identity of a folder's contents, to key caches such as FID real statistics.

    Hashes every image's relative path, byte size and modification time, plus the bytes of
    ``dataset.json`` and ``manifest.jsonl`` when present; no image is decoded. Touching, adding,
    removing or replacing an image changes it (a copied folder with new mtimes is a cache miss).

    Returns:
        16 hex characters.
    """
    root = Path(folder)
    digest = hashlib.sha256(b"gandapt-dataset-fingerprint-v1\0")
    for path in list_images(root):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for name in (DATASET_JSON, MANIFEST):
        if (root / name).is_file():
            digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()[:16]


def _reason(err: BaseException) -> str:
    return " ".join(str(err).split()) or err.__class__.__name__


class ImageFolderDataset(torch.utils.data.Dataset):
    """A folder of images (recursive) as float tensors ``[3, R, R]`` in ``[-1, 1]``.

    On construction every file's header is read: unreadable files are skipped with one warning
    (or raise with ``strict``), and images whose size is not ``R x R`` are centre-cropped to a
    square and resized to ``R`` with one warning giving their count. When the decoded set fits in
    ``CACHE_LIMIT_BYTES`` it is decoded once and kept in memory as uint8, since training draws
    every image many times; otherwise images are decoded on access (and a file whose data is
    truncated past its header only fails then, with a one-line GandaptError).

    Args:
        path: the folder.
        resolution: output side R; default the most common image size (its shorter side).
        strict: raise on the first unreadable image instead of skipping it.
        xflip: double the dataset with mirrored copies (index ``i + len(files)`` is image ``i``
            flipped left-right), as StyleGAN2-ADA does; deterministic, unlike a random flip.
        cache: keep decoded images in memory; default: when they fit in ``CACHE_LIMIT_BYTES``.

    Attributes:
        files: the images used, relative to ``path`` (posix strings), in index order.
        resolution: R.
        num_skipped: unreadable files left out.
        num_resized: files that were not R x R.
        attributes: per-file manifest records (dicts, None where missing), or None without a manifest.

    Raises:
        GandaptError: missing folder, no images, no readable image, bad resolution, or (with
            ``strict``) an unreadable image.
    """

    def __init__(self, path: PathLike, resolution: Optional[int] = None, strict: bool = False,
                 xflip: bool = False, cache: Optional[bool] = None) -> None:
        self.path = Path(path)
        candidates = list_images(self.path)
        if not candidates:
            raise GandaptError(f"{self.path} has no images; expected {'/'.join(IMAGE_EXTENSIONS)} files "
                               "(searched recursively, hidden files skipped)")
        self._bad: List[Tuple[Path, str]] = []
        sizes: Dict[Path, Tuple[int, int]] = {}
        for file in candidates:
            try:
                with Image.open(file) as im:  # header only: cheap
                    w, h = im.size
                    rotated = im.format in ("JPEG", "WEBP") and im.getexif().get(0x0112) in (5, 6, 7, 8)
                    sizes[file] = (h, w) if rotated else (w, h)  # EXIF quarter turns swap the sides
            except Exception as err:  # noqa: BLE001 (PIL raises many types for bad files)
                self._skip(file, err, strict)
        if resolution is None and sizes:
            (w, h), _ = Counter(sizes.values()).most_common(1)[0]
            resolution = min(w, h)
        if resolution is not None and resolution < 4:
            raise GandaptError(f"resolution must be at least 4 px; got {resolution}")
        self.resolution = int(resolution or 0)
        self.xflip = xflip
        files = [f for f in candidates if f in sizes]
        need = len(files) * self.resolution**2 * 3
        self._cache: Optional[np.ndarray] = None
        if cache if cache is not None else need <= CACHE_LIMIT_BYTES:
            files = self._decode_all(files, strict)
        if not files:
            first = f" (first: {self._bad[0][0].name}: {self._bad[0][1]})" if self._bad else ""
            raise GandaptError(f"{self.path} has no readable images: all {len(candidates)} failed to "
                               f"decode{first}")
        self._files = files
        self.files = [f.relative_to(self.path).as_posix() for f in files]
        self.num_skipped = len(self._bad)
        self.num_resized = sum(sizes[f] != (self.resolution, self.resolution) for f in files)
        self.attributes = self._read_attributes()
        if self.num_skipped:
            name, reason = self._bad[0][0].relative_to(self.path).as_posix(), self._bad[0][1]
            warnings.warn(f"skipped {self.num_skipped} unreadable image(s) in {self.path} (first: {name}: "
                          f"{reason}); pass strict=True to stop on them instead", stacklevel=2)
        if self.num_resized:
            warnings.warn(f"{self.num_resized} of {len(files)} images in {self.path} are not "
                          f"{self.resolution}x{self.resolution}; they are centre-cropped to a square and "
                          f"resized to {self.resolution}x{self.resolution}", stacklevel=2)

    def _skip(self, file: Path, err: BaseException, strict: bool) -> None:
        if strict:
            raise GandaptError(f"{file} is not a readable image ({_reason(err)}); fix or remove it, "
                               "or load without strict to skip it")
        self._bad.append((file, _reason(err)))

    def _decode_all(self, files: List[Path], strict: bool) -> List[Path]:
        kept, arrays = [], []
        for file in files:
            try:
                arrays.append(fit_square(read_image(file), self.resolution))
            except Exception as err:  # noqa: BLE001 (truncated data shows up only when decoding)
                self._skip(file, err, strict)
                continue
            kept.append(file)
        if arrays:
            self._cache = np.stack(arrays)  # [N, R, R, 3] uint8, one block: cheap to share with workers
        return kept

    def _read_attributes(self) -> Optional[List[Optional[Dict[str, Any]]]]:
        records = read_manifest(self.path)
        if records is None:
            return None
        by_file = {r.get("file"): r for r in records}
        return [by_file.get(name) for name in self.files]

    @property
    def attribute_names(self) -> List[str]:
        """Names of the manifest attributes (empty without a manifest)."""
        first = next((r for r in self.attributes or () if r), None)
        return [k for k in first or () if k not in ("file", "index", "seed")]

    def attribute_values(self, name: str) -> List[Optional[str]]:
        """Attribute ``name`` of every file, in index order (None where a file has no record)."""
        if self.attributes is None:
            raise GandaptError(f"{self.path} has no {MANIFEST}; attributes exist only for gandapt avatar "
                               "datasets")
        if name not in self.attribute_names:
            raise GandaptError(f"unknown attribute {name!r}; known: {', '.join(self.attribute_names)}")
        return [None if r is None else r.get(name) for r in self.attributes]

    def __len__(self) -> int:
        return len(self._files) * (2 if self.xflip else 1)

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as uint8 RGB ``[R, R, 3]`` (mirrored for the xflip half)."""
        n = len(self._files)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        i, flip = index % n, index >= n
        if self._cache is not None:
            array = self._cache[i]
        else:
            try:
                array = fit_square(read_image(self._files[i]), self.resolution)
            except Exception as err:  # noqa: BLE001
                raise GandaptError(f"{self._files[i]} is not a readable image ({_reason(err)}); "
                                   "fix or remove it") from None
        return array[:, ::-1] if flip else array

    def __getitem__(self, index: int) -> torch.Tensor:
        """Image ``index`` as float32 ``[3, R, R]`` in ``[-1, 1]``."""
        array = np.ascontiguousarray(self.image(index))
        return torch.from_numpy(array).permute(2, 0, 1).to(torch.float32).div_(127.5).sub_(1.0)
