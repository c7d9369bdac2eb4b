"""The offline source domain: procedural cartoon faces from python-avatars (DESIGN §8).

Every image is a pure function of ``(seed, index)``: a per-image seed drives Python's ``random``
(which python-avatars draws from) and then picks a pastel background, so results do not depend on
the worker count or order, and a dataset can be resumed or extended. Avatars are rendered with
cairosvg at ``render_size`` >= 256 px and downsampled with LANCZOS, because cairosvg drops the
masked skin/clothing/hair fills at small output sizes (reference/cpu-training.md).

This module also owns the dataset metadata format shared with :mod:`.transforms`: ``dataset.json``
(the recipe) and ``manifest.jsonl`` (one JSON record per image, with its attributes).
"""

from __future__ import annotations

import colorsys
import hashlib
import importlib.metadata
import io
import json
import multiprocessing
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from gandapt.errors import GandaptError
from gandapt.io import atomic_write_bytes

PathLike = Union[str, os.PathLike]

FORMAT = "gandapt-dataset"
FORMAT_VERSION = 1
DATASET_JSON = "dataset.json"
MANIFEST = "manifest.jsonl"
MIN_RENDER_SIZE = 256  # below this cairosvg loses python-avatars' masked colour fills
_IMAGE_NAME = re.compile(r"^\d{8}\.png$")
# Attributes every manifest record carries, in this order (enum names; "NONE" where not shown).
ATTRIBUTES = (
    "hair", "hair_color", "hat", "hat_color", "eyebrows", "eyes", "nose", "mouth", "facial_hair",
    "facial_hair_color", "accessory", "skin_color", "clothing", "clothing_color", "shirt_graphic",
    "background",
)


# ----------------------------------------------------------------------------- dataset metadata


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (replacing any existing file)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode(), force=True)


def write_manifest(path: PathLike, records: List[Dict[str, Any]]) -> None:
    """Write one JSON record per line, atomically."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_bytes(path, text.encode(), force=True)


def read_dataset_info(folder: PathLike) -> Optional[Dict[str, Any]]:
    """The folder's ``dataset.json`` recipe, or None when it has none (any image folder)."""
    path = Path(folder) / DATASET_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise GandaptError(f"{path} is not readable JSON ({err}); rebuild the dataset with --force") from None


def read_manifest(folder: PathLike) -> Optional[List[Dict[str, Any]]]:
    """The folder's ``manifest.jsonl`` records (``file``, ``index``, attributes...), or None."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as err:
        raise GandaptError(f"{path} is not valid JSON lines ({err}); rebuild the dataset with --force") \
            from None


# ----------------------------------------------------------------------------- one avatar


def image_seed(seed: int, index: int) -> int:
    """The per-image seed: a hash of (seed, index), so neighbouring seeds give unrelated images."""
    digest = hashlib.sha256(f"gandapt-avatars:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _pa():
    try:
        import cairosvg  # noqa: F401 (checked here so a missing renderer fails before any work)
        import python_avatars
    except ImportError as err:
        raise GandaptError(f"{err.name} is not installed; pip install 'gandapt[train]'") from None
    return python_avatars


def sample_avatar(seed: int, index: int) -> Tuple[Any, Tuple[int, int, int]]:
    """Draw image ``index``'s avatar and pastel background colour (RGB), without rendering."""
    pa = _pa()
    state = random.getstate()  # python-avatars draws from the module-level RNG: borrow and restore it
    try:
        random.seed(image_seed(seed, index))
        avatar = pa.Avatar.random(style=pa.AvatarStyle.TRANSPARENT, shirt_text="Hola!")
        hue, sat, val = random.random(), random.uniform(0.15, 0.35), random.uniform(0.90, 1.0)
    finally:
        random.setstate(state)
    background = tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(hue, sat, val))
    return avatar, background


def describe(avatar: Any, svg: str, background: Tuple[int, int, int]) -> Dict[str, str]:
    """The avatar's visible attributes as strings (enum names; "NONE" for what is not drawn)."""
    pa = _pa()

    def shown(part: Any) -> str:
        # python-avatars prefixes a part's SVG ids with its file stem; absent => not drawn (e.g. a
        # hijab has no facial-hair slot, a graphic only shows on GRAPHIC_SHIRT).
        return part.name if part.value and f'id="{part.value}_' in svg else "NONE"

    is_hat = isinstance(avatar.top, pa.HatType)
    facial_hair = shown(avatar.facial_hair)
    return {
        "hair": "NONE" if is_hat else avatar.top.name,
        "hair_color": "NONE" if is_hat or avatar.top == pa.HairType.NONE else avatar.hair_color.name,
        "hat": avatar.top.name if is_hat else "NONE",
        "hat_color": avatar.hat_color.name if is_hat else "NONE",
        "eyebrows": avatar.eyebrows.name,
        "eyes": avatar.eyes.name,
        "nose": avatar.nose.name,
        "mouth": avatar.mouth.name,
        "facial_hair": facial_hair,
        "facial_hair_color": "NONE" if facial_hair == "NONE" else avatar.facial_hair_color.name,
        "accessory": shown(avatar.accessory),
        "skin_color": avatar.skin_color.name,
        "clothing": avatar.clothing.name,
        "clothing_color": "NONE" if avatar.clothing.value == "" else avatar.clothing_color.name,
        "shirt_graphic": shown(avatar.shirt_graphic),
        "background": "#%02X%02X%02X" % background,
    }


def avatar_record(seed: int, index: int) -> Dict[str, Any]:
    """Image ``index``'s manifest record, computed without rasterising (cheap)."""
    avatar, background = sample_avatar(seed, index)
    return _record(seed, index, describe(avatar, avatar.render(), background))


def _record(seed: int, index: int, attributes: Dict[str, str]) -> Dict[str, Any]:
    return {"file": f"{index:08d}.png", "index": index, "seed": image_seed(seed, index), **attributes}


def render_avatar(seed: int, index: int, size: int = 64, render_size: int = 256) -> Tuple[Any, Dict[str, Any]]:
    """Render image ``index`` of the dataset with ``seed``.

    The SVG (264 x 280) is rasterised ``render_size`` px high, centred on a square
    ``render_size``² canvas of the background colour, then LANCZOS-downsampled to ``size``.

    Returns:
        ``(image, record)``: an RGB PIL image of ``size`` x ``size`` and its manifest record.
    """
    import cairosvg
    from PIL import Image

    avatar, background = sample_avatar(seed, index)
    svg = avatar.render()
    png = cairosvg.svg2png(bytestring=svg.encode(), output_height=render_size)
    face = Image.open(io.BytesIO(png)).convert("RGBA")
    canvas = Image.new("RGBA", (render_size, render_size), background + (255,))
    canvas.alpha_composite(face, ((render_size - face.width) // 2, 0))
    image = canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return image, _record(seed, index, describe(avatar, svg, background))


def _render_to_file(index: int, out: str, seed: int, size: int, render_size: int) -> Dict[str, Any]:
    image, record = render_avatar(seed, index, size, render_size)
    buf = io.BytesIO()
    image.save(buf, format="PNG")  # no timestamps or optimisation passes: same pixels, same bytes
    atomic_write_bytes(Path(out) / record["file"], buf.getvalue(), force=True)
    return record


# ----------------------------------------------------------------------------- the dataset


@dataclass
class BuildResult:
    """What :func:`build_avatars` did: where, how many rendered / kept, and how long it took."""

    out: Path
    rendered: int
    kept: int
    seconds: float


def _recipe(n: int, size: int, seed: int, render_size: int) -> Dict[str, Any]:
    import cairocffi

    def version(dist: str) -> Optional[str]:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    from gandapt import __version__

    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "avatars", "n": n,
        "size": size, "seed": seed, "render_size": render_size, "background": "pastel-hsv",
        "files": "{index:08d}.png", "manifest": MANIFEST,
        "versions": {"gandapt": __version__, "python-avatars": version("python-avatars"),
                     "cairosvg": version("cairosvg"), "pillow": version("pillow"),
                     "cairo": cairocffi.cairo_version_string()},
    }


def _valid_image(path: Path, size: int) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # full decode: a truncated file fails here
            return im.size == (size, size) and im.mode == "RGB"
    except Exception:  # noqa: BLE001 (any decode failure means "render it again")
        return False


def _prepare_out(out: Path, recipe: Dict[str, Any], force: bool, resume: bool) -> None:
    """Check that ``out`` may be written (refusing changes nothing), then tidy it for the build."""
    if out.exists() and not out.is_dir():
        raise GandaptError(f"{out} is a file; give a folder for --out")
    entries = list(out.iterdir()) if out.is_dir() else []
    if entries and not force:
        if not resume:
            raise GandaptError(f"{out} exists and is not empty; pass --resume to continue it or --force "
                               "to rebuild it")
        old = read_dataset_info(out)
        if old is None or old.get("kind") != "avatars":
            raise GandaptError(f"{out} is not a gandapt avatars dataset (no {DATASET_JSON}); use another "
                               "--out or --force")
        if old.get("n", 0) > recipe["n"]:
            raise GandaptError(f"{out} holds {old['n']} images, more than --n {recipe['n']}; pass "
                               f"--n {old['n']} to resume it, or --force to rebuild it")
        # another python-avatars draws other avatars from the same seeds: kept images would not match
        pairs = [(k, old.get(k), recipe[k]) for k in ("format_version", "size", "seed", "render_size")]
        pairs.append(("python-avatars", old.get("versions", {}).get("python-avatars"),
                      recipe["versions"]["python-avatars"]))
        for key, was, now in pairs:
            if was != now:
                raise GandaptError(f"{out} was built with {key}={was}, not {now}; pass the same options to "
                                   "--resume (and the same python-avatars), or --force to rebuild it")
    for path in entries:
        ours = _IMAGE_NAME.match(path.name) or path.name in (MANIFEST, DATASET_JSON)
        if (path.name.startswith(".") and path.name.endswith(".tmp")) or (force and ours and path.is_file()):
            path.unlink()  # a temporary file left by an interrupted write, or (force) the old dataset


def build_avatars(out: PathLike, n: int, size: int = 64, seed: int = 0, workers: int = 2,
                  render_size: int = 256, force: bool = False, resume: bool = False,
                  progress: bool = True) -> BuildResult:
    """Render ``n`` avatars into ``out`` as ``00000000.png`` ... plus manifest.jsonl and dataset.json.

    Args:
        out: output folder; must be missing or empty unless ``resume`` or ``force``.
        n: number of images (indices 0 .. n-1).
        size: output side in px (images are size x size RGB).
        seed: dataset seed; image i depends only on (seed, i), so any worker count gives the same bytes.
        workers: rendering processes (<= 0: one per CPU core).
        render_size: rasterisation side in px before downsampling; at least 256 and at least ``size``.
        force: delete a previous dataset's files in ``out`` (others are left alone) and rebuild.
        resume: keep images already present and valid, render the rest; with a larger ``n``, extend.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`BuildResult`.

    Raises:
        GandaptError: bad arguments, a non-empty ``out`` without resume/force, or a recipe mismatch.
    """
    from tqdm import tqdm

    if force and resume:
        raise GandaptError("pass either --resume (continue the dataset) or --force (rebuild it), not both")
    if n < 1 or size < 8:
        raise GandaptError(f"need n >= 1 and size >= 8 (got n={n}, size={size})")
    if render_size < max(MIN_RENDER_SIZE, size):
        raise GandaptError(f"render_size must be >= {max(MIN_RENDER_SIZE, size)} (>= 256 avoids cairosvg's "
                           f"lost colours at small sizes, and >= size); got {render_size}")
    _pa()
    out = Path(out)
    recipe = _recipe(n, size, seed, render_size)
    _prepare_out(out, recipe, force, resume)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / DATASET_JSON, {**recipe, "complete": False})
    start = time.perf_counter()

    done = [i for i in range(n) if resume and _valid_image(out / f"{i:08d}.png", size)]
    todo = sorted(set(range(n)) - set(done))
    # Records of kept images: from a finished manifest when there is one, else recomputed (no
    # rasterising, a few ms each).
    old = {r.get("index"): r for r in (read_manifest(out) if resume else None) or ()}
    records = {i: old[i] for i in done if i in old}
    for record in parallel_map(partial(avatar_record, seed), [i for i in done if i not in old], workers):
        records[record["index"]] = record
    job = partial(_render_to_file, out=str(out), seed=seed, size=size, render_size=render_size)
    with tqdm(total=n, initial=len(done), unit="img", desc="avatars", disable=not progress) as bar:
        # processes (cairosvg is GIL-bound Python); fork is safe: cairo and PIL keep no thread pools
        for record in parallel_map(job, todo, workers, ordered=False):
            records[record["index"]] = record
            bar.update()
    write_manifest(out / MANIFEST, [records[i] for i in range(n)])
    write_json(out / DATASET_JSON, {**recipe, "complete": True})
    return BuildResult(out, len(todo), len(done), time.perf_counter() - start)


def parallel_map(job: Callable[[Any], Any], items: List[Any], workers: int, ordered: bool = True,
                 threads: bool = False) -> Iterator[Any]:
    """Yield ``job(item)`` for each item, over ``workers`` processes or threads (<= 0: one per core).

    Results come in item order unless ``ordered`` is False. Processes are forked (where the OS
    can), so they start at once and user scripts need no ``__main__`` guard; ``job`` must then use
    no library whose thread pool the parent may have started (OpenCV, OpenMP), since a forked
    child inherits its locks and can hang. Jobs that spend their time in such libraries, which
    release the GIL, run in ``threads`` instead.
    """
    workers = min(workers if workers > 0 else os.cpu_count() or 1, max(len(items), 1))
    if workers <= 1:
        yield from map(job, items)
        return
    if threads:
        with ThreadPoolExecutor(workers) as executor:
            yield from executor.map(job, items)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    chunk = max(1, min(16, len(items) // (workers * 8)))
    with multiprocessing.get_context(method).Pool(workers) as pool:
        yield from (pool.imap if ordered else pool.imap_unordered)(job, items, chunksize=chunk)
