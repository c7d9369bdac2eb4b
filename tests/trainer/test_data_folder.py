"""ImageFolderDataset: scanning, bad files, mixed sizes, caching, flips, attributes, fingerprint."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gandapt.errors import GandaptError
from gandapt.trainer.data import avatars as meta
from gandapt.trainer.data.folder import ImageFolderDataset, dataset_fingerprint, list_images


def _save(path: Path, h: int, w: int, seed: int = 0, fmt: str = None) -> np.ndarray:
    array = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return array


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Four good 32-px PNGs (one in a sub-folder), one corrupt, one truncated, plus non-images."""
    root = tmp_path / "imgs"
    for i in range(3):
        _save(root / f"{i}.png", 32, 32, seed=i)
    _save(root / "sub" / "3.png", 32, 32, seed=3)
    (root / "corrupt.png").write_bytes(b"not an image at all")
    full = (root / "0.png").read_bytes()
    (root / "truncated.png").write_bytes(full[: len(full) // 2])
    (root / "notes.txt").write_text("ignored")
    _save(root / ".hidden" / "x.png", 32, 32)  # hidden folders are skipped
    _save(root / ".9.png", 32, 32)  # as are hidden files (e.g. a writer's temporary file)
    return root


def test_skips_unreadable_files_with_one_warning(folder: Path) -> None:
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image\(s\)") as record:
        ds = ImageFolderDataset(folder)
    assert len(record) == 1 and "\n" not in str(record[0].message)
    assert ds.files == ["0.png", "1.png", "2.png", "sub/3.png"] and ds.num_skipped == 2
    assert (len(ds), ds.resolution, ds.num_resized) == (4, 32, 0)
    x = ds[1]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    expected = np.asarray(Image.open(folder / "1.png"), np.float32) / 127.5 - 1
    assert torch.allclose(x, torch.from_numpy(expected).permute(2, 0, 1))


def test_strict_raises_one_line(folder: Path) -> None:
    with pytest.raises(GandaptError, match=r"corrupt\.png is not a readable image") as err:
        ImageFolderDataset(folder, strict=True)
    assert "\n" not in str(err.value)
    (folder / "corrupt.png").unlink()
    with pytest.raises(GandaptError, match=r"truncated\.png is not a readable image"):
        ImageFolderDataset(folder, strict=True)  # only found when decoding


def test_mixed_sizes_are_cropped_and_resized_with_one_warning(tmp_path: Path) -> None:
    for i in range(3):
        _save(tmp_path / f"{i}.png", 24, 24, seed=i)
    _save(tmp_path / "wide.jpg", 40, 60, fmt="JPEG")
    _save(tmp_path / "big.webp", 48, 48, fmt="WEBP")
    _save(tmp_path / "small.bmp", 16, 16, fmt="BMP")
    with pytest.warns(UserWarning, match="3 of 6 images .* are not 24x24; they are centre-cropped"):
        ds = ImageFolderDataset(tmp_path)
    assert ds.resolution == 24 and ds.num_resized == 3
    assert all(ds[i].shape == (3, 24, 24) for i in range(len(ds)))
    with pytest.warns(UserWarning, match="5 of 6 images"):
        assert ImageFolderDataset(tmp_path, resolution=16)[0].shape == (3, 16, 16)


def test_empty_or_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(GandaptError, match=r"has no images; expected \.png/\.jpg/\.jpeg/\.webp/\.bmp"):
        ImageFolderDataset(tmp_path)
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(GandaptError, match=str(tmp_path)):
        ImageFolderDataset(tmp_path)
    with pytest.raises(GandaptError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "bad.png").write_bytes(b"junk")
    with pytest.raises(GandaptError, match=r"no readable images: all 1 failed to decode \(first: bad.png"):
        ImageFolderDataset(tmp_path)


def test_xflip_cache_and_alpha(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", 8, 8)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)  # left half opaque red, right half transparent
    Image.fromarray(rgba).save(tmp_path / "b.png")
    ds = ImageFolderDataset(tmp_path, xflip=True)
    assert len(ds) == 4
    assert torch.equal(ds[2], ds[0].flip(-1)) and torch.equal(ds[-1], ds[1].flip(-1))
    assert torch.equal(ds[1][:, 0, 7], torch.ones(3))  # transparent -> white
    assert torch.equal(ds[1][:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))
    lazy = ImageFolderDataset(tmp_path, xflip=True, cache=False)
    assert all(torch.equal(ds[i], lazy[i]) for i in range(4))
    with pytest.raises(IndexError):
        ds[4]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, 3, 8, 8)


def test_attributes_from_the_manifest(tmp_path: Path) -> None:
    for i in range(3):
        _save(tmp_path / f"{i:08d}.png", 8, 8, seed=i)
    records = [{"file": f"{i:08d}.png", "index": i, "seed": 0, "accessory": a, "eyes": "HAPPY"}
               for i, a in enumerate(["NONE", "ROUND"])]  # the third image has no record
    meta.write_manifest(tmp_path / meta.MANIFEST, records)
    ds = ImageFolderDataset(tmp_path)
    assert ds.attribute_names == ["accessory", "eyes"]
    assert ds.attribute_values("accessory") == ["NONE", "ROUND", None]
    with pytest.raises(GandaptError, match="unknown attribute 'hat'"):
        ds.attribute_values("hat")
    (tmp_path / meta.MANIFEST).unlink()
    plain = ImageFolderDataset(tmp_path)
    assert plain.attributes is None and plain.attribute_names == []
    with pytest.raises(GandaptError, match="no manifest.jsonl"):
        plain.attribute_values("eyes")


def test_fingerprint_tracks_contents(folder: Path) -> None:
    first = dataset_fingerprint(folder)
    assert first == dataset_fingerprint(folder) and len(first) == 16
    stat = (folder / "1.png").stat()
    os.utime(folder / "1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = dataset_fingerprint(folder)
    _save(folder / "new.png", 32, 32)
    added = dataset_fingerprint(folder)
    meta.write_json(folder / meta.DATASET_JSON, {"n": 1})
    assert len({first, touched, added, dataset_fingerprint(folder)}) == 4
    assert [p.name for p in list_images(folder)][:2] == ["0.png", "1.png"]
