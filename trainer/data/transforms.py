"""Target domains of the offline world: named, versioned image transforms (DESIGN §8).

Each transform maps a uint8 RGB image ``[H, W, 3]`` to another of the same shape and dtype, is
deterministic, and works at any size >= 32 px: its radii scale with the image side, so a 64-px
``T(G(w))`` looks like the same style as a 256-px one. Because ``T`` is known, ``T(G(w))`` is a
paired ground truth for the adapted generator's output. A transform's ``version`` changes whenever
its output changes; datasets record it.

Importing this module and :func:`apply_transform` need numpy and OpenCV only (no torch), so the
paired ground truth can be computed anywhere. :func:`transform_dataset` writes a transformed copy of
a whole folder (or an attribute subset of an avatar dataset) and imports the folder helpers lazily.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from gandapt.errors import GandaptError
from gandapt.io import atomic_write_bytes
from gandapt.trainer.data import avatars as meta  # dataset.json / manifest.jsonl (torch-free)

PathLike = Union[str, os.PathLike]

MIN_SIZE = 32
SUBSET_PREFIX = "subset:"


@dataclass(frozen=True)
class Transform:
    """A registered transform: ``fn(image[H, W, 3] uint8 RGB) -> image[H, W, 3] uint8 RGB``."""

    name: str
    version: int
    description: str
    fn: Callable[[np.ndarray], np.ndarray]


TRANSFORMS: Dict[str, Transform] = {}


def register(name: str, version: int, description: str):
    """Decorator adding ``fn`` to :data:`TRANSFORMS` under ``name``; bump ``version`` on any change."""

    def wrap(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        TRANSFORMS[name] = Transform(name, version, description, fn)
        return fn

    return wrap


def _odd(x: float) -> int:
    return max(3, int(round(x)) // 2 * 2 + 1)


def _scale(image: np.ndarray) -> float:
    """Side length relative to 256 px, the size the parameters below were tuned at."""
    return min(image.shape[:2]) / 256.0


@register("sketch", 1, "pencil sketch: grey, inverted, Gaussian-blurred and colour-dodged")
def sketch(image: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    sigma = max(1.5, 4.0 * _scale(image))
    blur = cv2.GaussianBlur(255.0 - gray, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    dodge = gray * 255.0 / np.maximum(255.0 - blur, 1.0)  # colour dodge: only edges stay dark
    dodge = 255.0 * (np.clip(dodge, 0, 255) / 255.0) ** 2.5  # darker strokes, visible at 64 px
    out = np.clip(dodge + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2)


def _at_working_size(fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, side: int = 256) -> np.ndarray:
    """Run ``fn`` on a ``side``² resize of ``image`` and resize back: same look at every size."""
    h, w = image.shape[:2]
    if (h, w) == (side, side):
        return fn(image)
    up = cv2.INTER_CUBIC if side > min(h, w) else cv2.INTER_AREA
    out = fn(cv2.resize(image, (side, side), interpolation=up))
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)


def _watercolour(image: np.ndarray) -> np.ndarray:
    out = cv2.stylization(image, sigma_s=40, sigma_r=0.4)  # edge-aware smoothing + soft outlines
    hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.3, 0, 255)  # richer, paint-like saturation
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


@register("painting", 1, "watercolour painting: cv2.stylization at a 256-px working size, +30% saturation")
def painting(image: np.ndarray) -> np.ndarray:
    # stylization's outlines depend on the pixel scale, so it always runs at 256 px
    return _at_working_size(_watercolour, image)


@register("ink", 1, "comic ink: 4-level posterised colours with thick dark outlines")
def ink(image: np.ndarray) -> np.ndarray:
    s = _scale(image)
    smooth = cv2.bilateralFilter(image, d=_odd(7 * s), sigmaColor=50, sigmaSpace=3 * s + 1)
    levels = 4
    poster = (np.floor(smooth.astype(np.float32) / 256.0 * levels) + 0.5) * (255.0 / levels)
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (0, 0), sigmaX=max(0.5, s))
    edges = cv2.Canny(gray, 40, 100)
    edges = cv2.dilate(edges, np.ones((_odd(2 * s), _odd(2 * s)), np.uint8)) if s >= 0.5 else edges
    out = poster.astype(np.uint8)
    out[edges > 0] = (20, 16, 24)  # near-black ink
    return out


@register("colorshift", 1, "fixed 120-degree hue rotation with a warm tint")
def colorshift(image: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + 60) % 180  # OpenCV hue is 0..179 (2 deg/unit)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    out = out * np.array([1.06, 0.98, 0.90], np.float32) + np.array([8, 4, 0], np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@register("pixel", 1, "pixel art: 32 x 32 cells of a 6-level-per-channel palette")
def pixel(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    cells = min(32, h // 2, w // 2)  # >= 2-px cells, so even a 32-px image changes visibly
    small = cv2.resize(image, (cells, cells), interpolation=cv2.INTER_AREA)
    small = (np.round(small.astype(np.float32) / 51.0) * 51.0).astype(np.uint8)  # 0, 51, ..., 255
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


# Validation domains: the results table never reports them; step budgets and rates that cannot be
# read off a paper are chosen on these, so no table target is used to tune its own row.
VALIDATION = ("sepia", "neon")


@register("sepia", 1, "validation domain: sepia-toned monochrome with a soft vignette")
def sepia(image: np.ndarray) -> np.ndarray:
    # the classic sepia colour matrix (rows: output R, G, B)
    tone = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], np.float32)
    out = image.astype(np.float32) @ tone.T
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2
    out *= (1.0 - 0.3 * np.clip(r2 / 2.0, 0, 1))[..., None]  # corners 30% darker
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@register("neon", 1, "validation domain: glowing edges in saturated colours on a near-black ground")
def neon(image: np.ndarray) -> np.ndarray:
    s = _scale(image)
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (0, 0), sigmaX=max(0.5, s))
    edges = cv2.Canny(gray, 30, 90)
    edges = cv2.dilate(edges, np.ones((_odd(2 * s), _odd(2 * s)), np.uint8)) if s >= 0.5 else edges
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hsv[..., 1], hsv[..., 2] = 255, 255  # each edge glows in its own hue, fully saturated
    colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    lines = colour * (edges[..., None] / 255.0)
    glow = cv2.GaussianBlur(lines, (0, 0), sigmaX=max(1.0, 3 * s))
    out = 0.15 * image.astype(np.float32) + lines + 1.5 * glow
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def get_transform(name: str) -> Transform:
    """The registered transform ``name``; unknown names raise a one-line error listing the valid ones."""
    if name.startswith(SUBSET_PREFIX):
        raise GandaptError(f"{name!r} selects a subset of an avatar dataset (gandapt-train data transform), "
                           f"it does not change an image; use one of: {', '.join(sorted(TRANSFORMS))}")
    if name not in TRANSFORMS:
        valid = ", ".join(sorted(TRANSFORMS)) + f", {SUBSET_PREFIX}<attribute>=<value> (datasets only)"
        raise GandaptError(f"unknown transform {name!r}; valid names: {valid}")
    return TRANSFORMS[name]


def apply_transform(name: str, image: np.ndarray) -> np.ndarray:
    """Apply the transform ``name`` to one image.

    Args:
        name: a key of :data:`TRANSFORMS` (``subset:`` selections are dataset-level, not per image).
        image: uint8 RGB ``[H, W, 3]`` with H, W >= 32.

    Returns:
        uint8 RGB ``[H, W, 3]``.
    """
    transform = get_transform(name)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise GandaptError(f"transforms take uint8 RGB images [H, W, 3]; got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < MIN_SIZE:
        raise GandaptError(f"transforms need images of at least {MIN_SIZE} px; got "
                           f"{image.shape[1]}x{image.shape[0]}")
    out = transform.fn(np.ascontiguousarray(image))
    assert out.shape == image.shape and out.dtype == np.uint8, (name, out.shape, out.dtype)
    return out


def list_transforms() -> List[str]:
    """One line per transform: ``name (vN): description``, plus the subset selector."""
    lines = [f"{t.name} (v{t.version}): {t.description}" for _, t in sorted(TRANSFORMS.items())]
    lines.append(f"{SUBSET_PREFIX}<attribute>=<value> (v1): copy the images whose manifest attribute "
                 "matches, e.g. subset:accessory=SUNGLASSES")
    return lines


# ----------------------------------------------------------------------------- whole datasets


@dataclass
class TransformResult:
    """What :func:`transform_dataset` did: where, images written, unreadable sources skipped, time."""

    out: Path
    written: int
    skipped: List[str]
    seconds: float


def _parse_subset(name: str) -> Tuple[str, str]:
    attr, sep, value = name[len(SUBSET_PREFIX):].partition("=")
    if not sep or not attr or not value:
        raise GandaptError(f"bad subset {name!r}; write {SUBSET_PREFIX}<attribute>=<value>, e.g. "
                           f"{SUBSET_PREFIX}accessory=SUNGLASSES")
    return attr.strip(), value.strip()


def _select(records: List[Dict[str, Any]], attr: str, value: str, src: Path) -> List[Dict[str, Any]]:
    known = [k for k in records[0] if k not in ("file", "index", "seed")] if records else []
    if attr not in known:
        raise GandaptError(f"unknown attribute {attr!r} in {src / meta.MANIFEST}; known: {', '.join(known)}")
    chosen = [r for r in records if str(r.get(attr)).lower() == value.lower()]
    if not chosen:
        values = sorted({str(r.get(attr)) for r in records})
        raise GandaptError(f"no image in {src} has {attr}={value}; its values are: {', '.join(values)}")
    return chosen


def _prepare_out(src: Path, out: Path, force: bool) -> None:
    src_r, out_r = src.resolve(), out.resolve()
    if out_r == src_r or src_r in out_r.parents or out_r in src_r.parents:
        raise GandaptError(f"--out {out} must not be --src {src} or lie inside it (or contain it); "
                           "pick another folder")
    if out.exists() and not out.is_dir():
        raise GandaptError(f"{out} is a file; give a folder for --out")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise GandaptError(f"{out} exists and is not empty; pass --force to replace it")
    if meta.read_dataset_info(out) is None:  # only ever delete what a gandapt writer made
        raise GandaptError(f"{out} is not empty and is not a gandapt dataset; --force only replaces "
                           "gandapt datasets, so give an empty or new --out")
    from gandapt.trainer.data.folder import list_images

    for path in list_images(out) + [out / meta.MANIFEST, out / meta.DATASET_JSON]:
        path.unlink(missing_ok=True)


def _encode(image: np.ndarray, suffix: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}.get(suffix.lower(), "PNG")
    Image.fromarray(image).save(buf, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def _transform_file(rel: str, src: str, out: str, name: str) -> Optional[str]:
    """Transform ``src/rel`` into ``out/rel``; returns an error line instead of raising for bad files."""
    from gandapt.trainer.data.folder import read_image

    try:
        image = read_image(Path(src, rel))
    except Exception as err:  # noqa: BLE001 (unreadable source: reported, not fatal)
        return f"{rel}: {' '.join(str(err).split()) or err.__class__.__name__}"
    try:
        result = apply_transform(name, image)
    except GandaptError as err:
        return f"{rel}: {err}"
    atomic_write_bytes(Path(out, rel), _encode(result, Path(rel).suffix), force=True)
    return None


def _copy_file(rel: str, src: Path, out: Path) -> None:
    atomic_write_bytes(out / rel, (src / rel).read_bytes(), force=True)


def transform_dataset(name: str, src: PathLike, out: PathLike, force: bool = False, workers: int = 1,
                      progress: bool = True) -> TransformResult:
    """Write ``name`` applied to every image of ``src`` into ``out``, same relative file names.

    Also writes ``dataset.json`` (transform name and version, the source's recipe and fingerprint)
    and, when ``src`` has one, the matching ``manifest.jsonl`` records (attributes carry over).

    Args:
        name: a registered transform, or ``subset:<attribute>=<value>`` to copy the images of an
            avatar dataset whose manifest attribute matches (case-insensitive).
        src: source folder of images.
        out: output folder; must be new or empty unless ``force`` (replaces an earlier gandapt dataset).
        force: replace an existing gandapt dataset in ``out``.
        workers: threads (<= 0: one per CPU core).
        progress: show a tqdm progress bar.

    Raises:
        GandaptError: unknown transform, bad subset, missing/empty source, refused output folder.
    """
    from tqdm import tqdm

    from gandapt import __version__
    from gandapt.trainer.data.folder import dataset_fingerprint, list_images

    start = time.perf_counter()
    src, out = Path(src), Path(out)
    subset = name.startswith(SUBSET_PREFIX)
    version = 1 if subset else get_transform(name).version
    files = [p.relative_to(src).as_posix() for p in list_images(src)]
    if not files:
        raise GandaptError(f"{src} has no images to transform; expected .png/.jpg/.jpeg/.webp/.bmp files")
    records = meta.read_manifest(src)
    if subset:
        if records is None:
            raise GandaptError(f"{name} needs {src / meta.MANIFEST}; attribute subsets work on gandapt "
                               "avatar datasets")
        records = _select(records, *_parse_subset(name), src)
        present = set(files)
        files = [r["file"] for r in records if r["file"] in present]
    _prepare_out(src, out, force)
    out.mkdir(parents=True, exist_ok=True)

    if subset:  # copying is I/O-bound: no processes needed
        job, workers = partial(_copy_file, src=src, out=out), 1
    else:
        job = partial(_transform_file, src=str(src), out=str(out), name=name)
    errors: List[str] = []
    with tqdm(total=len(files), unit="img", desc=name, disable=not progress) as bar:
        # threads: OpenCV, PIL and zlib release the GIL, and OpenCV's pool does not survive a fork
        for error in meta.parallel_map(job, files, workers, threads=True):
            errors += [error] if error else []
            bar.update()

    written = [f for f in files if (out / f).is_file()]
    if records is not None:
        keep = set(written)
        meta.write_manifest(out / meta.MANIFEST, [r for r in records if r.get("file") in keep])
    meta.write_json(out / meta.DATASET_JSON, {
        "format": meta.FORMAT, "format_version": meta.FORMAT_VERSION,
        "kind": "subset" if subset else "transform",
        "transform": name, "transform_version": version, "n": len(written),
        "source": {"path": str(src.resolve()), "fingerprint": dataset_fingerprint(src),
                   "dataset": meta.read_dataset_info(src)},
        "versions": {"gandapt": __version__, "opencv": cv2.__version__, "numpy": np.__version__},
        "complete": True,
    })
    return TransformResult(out, len(written), errors, time.perf_counter() - start)
