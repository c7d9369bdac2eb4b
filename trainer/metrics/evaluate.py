"""FID/KID drivers: a generator or an image folder against a dataset folder, with cached real stats.

Real statistics are computed once per (dataset, N, resolution, selection) and cached next to the
data in ``<dataset>/.gandapt_cache/inception_<n>_<fingerprint>.npz``; the fingerprint hashes the
sorted relative file names and sizes (plus N, resolution, selection seed and the preprocessing
version), so adding, removing or replacing images invalidates it. A dataset folder that cannot be
written falls back to ``$XDG_CACHE_HOME/gandapt/real_stats/<hash of its path>/`` (~/.cache by default).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from gandapt.errors import GandaptError
from gandapt.io import atomic_path

from .fid import FeatureStats, fid_from_stats, kernel_inception_distance
from .inception import InceptionFeatures

PathLike = Union[str, os.PathLike]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_DIRNAME = ".gandapt_cache"
# Part of every fingerprint: bump when the preprocessing or the network changes, to orphan old caches.
_CACHE_VERSION = "nvidia-inception-2015-12-05/nv-resize/uint8/v1"


def list_images(folder: PathLike) -> List[Path]:
    """PNG/JPG files under ``folder`` (recursively, hidden entries skipped), sorted by relative path.

    Raises:
        GandaptError: ``folder`` is not a directory or holds no images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise GandaptError(f"{root} is not a folder of images")
    files = [
        p for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()
    ]
    if not files:
        raise GandaptError(f"no PNG or JPG images in {root}")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def select_images(files: List[Path], n: int, seed: Optional[int] = None) -> List[Path]:
    """The first ``n`` files, or (with ``seed``) ``n`` drawn at random and kept in name order."""
    if n < 1:
        raise GandaptError(f"the number of images must be >= 1, got {n}")
    if seed is None or n >= len(files):
        return files[:n]
    idx = np.random.default_rng(seed).choice(len(files), n, replace=False)
    return [files[i] for i in sorted(idx)]


def load_image(path: Path, resolution: Optional[int] = None) -> torch.Tensor:
    """One image as uint8 [3, H, W]; with ``resolution``, centre-cropped square and Lanczos-resized
    (:func:`gandapt.image_file.read_square`)."""
    from gandapt.image_file import read_square

    return torch.from_numpy(read_square(path, resolution)).permute(2, 0, 1)


def folder_features(files: List[Path], inception: InceptionFeatures, resolution: Optional[int] = None,
                    desc: str = "images") -> np.ndarray:
    """Inception features of image files, ``inception.batch_size`` at a time.

    Returns:
        [len(files), 2048] float32.
    """
    from tqdm.auto import tqdm

    out = []
    bs = inception.batch_size
    with tqdm(total=len(files), unit="img", desc=f"Inception ({desc})", disable=not inception.progress,
              leave=False) as bar:
        for start in range(0, len(files), bs):
            images = [load_image(p, resolution) for p in files[start:start + bs]]
            same = all(im.shape == images[0].shape for im in images)
            out.append(inception.batch_features(torch.stack(images) if same else images).numpy())
            bar.update(len(images))
    return np.concatenate(out)


def _fingerprint(root: Path, files: List[Path], n: int, resolution: Optional[int], seed: Optional[int]) -> str:
    h = hashlib.sha1(f"{_CACHE_VERSION}|n={n}|resolution={resolution}|seed={seed}\n".encode())
    for p in files:
        h.update(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def _cache_dirs(root: Path) -> List[Path]:
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path_hash = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return [root / CACHE_DIRNAME, home / "gandapt" / "real_stats" / path_hash]


def _read_stats(path: Path, n: int) -> Optional[FeatureStats]:
    try:
        with np.load(path) as z:
            stats = FeatureStats(z["mu"], z["sigma"], z["features"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # missing or damaged: recompute and overwrite
    d = stats.features.shape[1] if stats.features.ndim == 2 else -1
    if stats.n != n or stats.mu.shape != (d,) or stats.sigma.shape != (d, d):
        return None
    return stats


def _write_stats(stats: FeatureStats, name: str, dirs: List[Path], meta: Dict[str, Any]) -> Optional[Path]:
    for directory in dirs:
        try:
            with atomic_path(directory / name, force=True) as tmp:
                with open(tmp, "wb") as f:  # a file object: np.savez would append '.npz' to a str path
                    np.savez(f, mu=stats.mu, sigma=stats.sigma, features=stats.features,
                             meta=np.array(json.dumps(meta)))
            return directory / name
        except (OSError, GandaptError):
            continue  # read-only dataset (or a file in the way): try the user cache
    return None


def real_stats(dataset_path: PathLike, n: int = 2000, resolution: Optional[int] = None, *,
               seed: Optional[int] = None, batch: int = 32, device: str = "cpu", progress: bool = True,
               inception: Optional[InceptionFeatures] = None) -> FeatureStats:
    """Inception statistics of a dataset folder, computed once and cached (see the module docstring).

    Args:
        dataset_path: folder of PNG/JPG images (searched recursively).
        n: number of images; all of them when the folder holds fewer.
        resolution: bring images to this square size first (the generator's), or None to keep them.
        seed: None takes the first ``n`` files by name; an int draws ``n`` at random with that seed.
        batch: Inception batch size.
        device: where Inception runs.
        progress: show a progress bar.
        inception: an existing extractor (overrides ``batch``, ``device`` and ``progress``).

    Returns:
        :class:`FeatureStats` with mu [2048], sigma [2048, 2048] and features [n_real, 2048].
    """
    root = Path(dataset_path)
    all_files = list_images(root)
    files = select_images(all_files, n, seed)
    name = f"inception_{len(files)}_{_fingerprint(root, all_files, len(files), resolution, seed)}.npz"
    dirs = _cache_dirs(root)
    for directory in dirs:
        cached = _read_stats(directory / name, len(files))
        if cached is not None:
            return cached
    inception = inception or InceptionFeatures(device, batch, progress)
    stats = FeatureStats.from_features(folder_features(files, inception, resolution, desc="real"))
    meta = {"dataset": str(root.resolve()), "n": len(files), "resolution": resolution, "seed": seed,
            "version": _CACHE_VERSION, "first": files[0].relative_to(root).as_posix()}
    _write_stats(stats, name, dirs, meta)  # nowhere writable: the stats are still returned
    return stats


@torch.no_grad()
def generator_features(G: torch.nn.Module, n: int, inception: InceptionFeatures, truncation_psi: float = 1.0,
                       seed: int = 0) -> np.ndarray:
    """Inception features of ``n`` images from ``G`` with seeded latents (same z on every device).

    Args:
        G: gandapt generator API: ``G.z_dim``, ``G(z, truncation_psi=, noise_mode='const')`` →
            [N, 3, R, R] in about [-1, 1]. Run where its parameters are; see :func:`evaluate_generator`.
        n: number of images.
        inception: the extractor (its batch size is the generation batch size).
        truncation_psi: truncation towards the mean w (1.0 = none; FID is reported at 1.0).
        seed: seed of the latents.

    Returns:
        [n, 2048] float32.
    """
    from tqdm.auto import tqdm

    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)  # CPU generator: the latents do not depend on the device
    out = []
    with tqdm(total=n, unit="img", desc="Inception (generated)", disable=not inception.progress, leave=False) as bar:
        for start in range(0, n, inception.batch_size):
            z = torch.randn(min(inception.batch_size, n - start), G.z_dim, generator=gen).to(device)
            images = G(z, truncation_psi=truncation_psi, noise_mode="const").clamp(-1.0, 1.0)
            out.append(inception.batch_features(images).numpy())
            bar.update(len(z))
    return np.concatenate(out)


def metric_name(n: int) -> str:
    """'fid2k' for 2000 images, 'fid50k' for 50000, 'fid500' for 500."""
    return f"fid{n // 1000}k" if n >= 1000 and n % 1000 == 0 else f"fid{n}"


def compare(fake: FeatureStats, real: FeatureStats, num_subsets: int = 100, max_subset_size: int = 1000,
            seed: int = 0) -> Dict[str, Any]:
    """FID and KID between two sets of statistics, with their sizes.

    Returns:
        ``{'fid', 'kid', 'kid_std', 'n_fake', 'n_real', 'metric'}``.
    """
    fid = fid_from_stats(fake, real)
    kid, kid_std = kernel_inception_distance(fake.features, real.features, num_subsets, max_subset_size, seed)
    return {"fid": fid, "kid": kid, "kid_std": kid_std, "n_fake": fake.n, "n_real": real.n,
            "metric": metric_name(fake.n)}


def evaluate_generator(G: torch.nn.Module, dataset_path: PathLike, n: int = 2000, batch: int = 32,
                       truncation_psi: float = 1.0, seed: int = 0, device: str = "cpu", *,
                       n_real: Optional[int] = None, progress: bool = True) -> Dict[str, Any]:
    """FID and KID of ``n`` generated images against a dataset folder.

    Args:
        G: generator (gandapt API, see :func:`generator_features`); it is moved to ``device`` and run
            in eval mode, its training flag restored afterwards.
        dataset_path: folder of real PNG/JPG images; brought to ``G.img_resolution`` when it has one.
        n: generated images (also the real count unless ``n_real``).
        batch: generation and Inception batch size.
        truncation_psi: truncation of the generated images.
        seed: seed of the latents (and of the KID subsets).
        device: where G and Inception run.
        n_real: real images (default ``n``; the first ones by file name).
        progress: show progress bars.

    Returns:
        ``{'fid', 'kid', 'kid_std', 'n_fake', 'n_real', 'metric'}``, e.g. metric 'fid2k'.
    """
    if n < 2:
        raise GandaptError(f"FID needs at least 2 generated images, got n={n}")
    inception = InceptionFeatures(device, batch, progress)
    real = real_stats(dataset_path, n_real or n, getattr(G, "img_resolution", None), inception=inception)
    was_training = G.training
    G = G.to(device).eval()
    try:
        fake = FeatureStats.from_features(generator_features(G, n, inception, truncation_psi, seed))
    finally:
        G.train(was_training)
    return compare(fake, real, seed=seed)


def evaluate_folders(fake_dir: PathLike, real_dir: PathLike, n: int = 2000, batch: int = 32, device: str = "cpu",
                     *, n_real: Optional[int] = None, resolution: Optional[int] = None,
                     progress: bool = True) -> Dict[str, Any]:
    """FID and KID between the first ``n`` images of two folders (only the real side is cached).

    Args:
        fake_dir: folder of generated images (read fresh every time: such folders get regenerated).
        real_dir: folder of real images.
        n: images from ``fake_dir`` (also from ``real_dir`` unless ``n_real``).
        batch: Inception batch size.
        device: where Inception runs.
        n_real: images from ``real_dir``.
        resolution: bring both sides to this square size first, or None to use them as stored.
        progress: show progress bars.

    Returns:
        As :func:`evaluate_generator`; ``n_fake`` is the number actually read.
    """
    inception = InceptionFeatures(device, batch, progress)
    fake_files = select_images(list_images(fake_dir), n)
    if len(fake_files) < 2:
        raise GandaptError(f"FID needs at least 2 generated images; {fake_dir} has {len(fake_files)}")
    real = real_stats(real_dir, n_real or n, resolution, inception=inception)
    fake = FeatureStats.from_features(folder_features(fake_files, inception, resolution, desc="fake"))
    return compare(fake, real)
