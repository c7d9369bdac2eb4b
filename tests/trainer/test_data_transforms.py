"""Target transforms: per-image contract, torch-free import, dataset writer, subsets, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gandapt.errors import GandaptError
from gandapt.trainer.data import avatars as meta
from gandapt.trainer.data.cli import data
from gandapt.trainer.data.folder import dataset_fingerprint, read_image
from gandapt.trainer.data.transforms import (TRANSFORMS, apply_transform, list_transforms,
                                             transform_dataset)


def cartoon(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A procedural cartoon-ish image: pastel background, a skin-coloured disc, dark eyes, a shirt."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.empty((h, w, 3), np.float32)
    image[:] = rng.uniform(180, 240, 3)
    image[(yy - 0.4) ** 2 + (xx - 0.5) ** 2 < 0.06] = rng.uniform(90, 250, 3)  # face
    image[yy > 0.75] = rng.uniform(20, 240, 3)  # shirt
    for ex in (0.4, 0.6):
        image[(yy - 0.38) ** 2 + (xx - ex) ** 2 < 0.002] = 20  # eyes
    image += np.linspace(0, 12, w)[None, :, None]  # a gentle gradient
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("shape", [(32, 32), (64, 64), (80, 97)])
def test_transform_contract(name: str, shape: tuple) -> None:
    image = cartoon(*shape)
    out = apply_transform(name, image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out, apply_transform(name, image.copy()))  # deterministic
    assert np.abs(out.astype(np.int32) - image).mean() > 4.0, "not visibly different from the input"
    transform = TRANSFORMS[name]
    assert transform.version >= 1 and transform.description


def test_sketch_is_grey_and_colorshift_keeps_structure() -> None:
    image = cartoon(64, 64)
    sketch = apply_transform("sketch", image)
    assert np.array_equal(sketch[..., 0], sketch[..., 1]) and np.array_equal(sketch[..., 1], sketch[..., 2])
    assert sketch.mean() > 200  # mostly paper-white with dark strokes
    shifted = apply_transform("colorshift", image).astype(np.float32).mean(axis=2)
    assert np.corrcoef(shifted.ravel(), image.astype(np.float32).mean(axis=2).ravel())[0, 1] > 0.5


def test_validation_domains_are_registered_and_never_table_targets() -> None:
    from gandapt.trainer.adapters.table import TARGETS
    from gandapt.trainer.adapters.table_multi import HELD_OUT_TARGETS
    from gandapt.trainer.data.transforms import VALIDATION

    assert set(VALIDATION) <= set(TRANSFORMS)
    assert not set(VALIDATION) & (set(TARGETS) | set(HELD_OUT_TARGETS))  # tuning never sees a reported target
    image = cartoon(64, 64)
    toned = apply_transform("sepia", image).astype(np.int32)
    assert (toned[..., 0] >= toned[..., 1]).all() and (toned[..., 1] >= toned[..., 2]).all()  # warm monochrome
    flat = apply_transform("sepia", np.full((64, 64, 3), 128, np.uint8)).astype(np.int32)
    assert flat[0, 0].sum() < 0.8 * flat[32, 32].sum()  # the vignette darkens the corners
    glow = apply_transform("neon", image)
    assert glow.mean() < 0.6 * image.mean()  # a dark ground with bright edges
    assert glow.max() > 200


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(GandaptError, match="unknown transform 'oil'; valid names: colorshift, ink") as err:
        apply_transform("oil", cartoon(32, 32))
    assert "\n" not in str(err.value) and "subset:" in str(err.value)
    with pytest.raises(GandaptError, match="'subset:hair=red' selects a subset of an avatar dataset .* colorshift"):
        apply_transform("subset:hair=red", cartoon(32, 32))  # a dataset selection, not an image transform
    with pytest.raises(GandaptError, match="at least 32 px"):
        apply_transform("sketch", cartoon(16, 40))
    with pytest.raises(GandaptError, match="uint8 RGB"):
        apply_transform("sketch", cartoon(32, 32).astype(np.float32))


def test_import_and_apply_without_torch(tmp_path: Path) -> None:
    code = ("import sys, numpy as np; sys.modules['torch'] = None; "  # any torch import now fails
            "from gandapt.trainer.data.transforms import apply_transform; "
            "assert apply_transform('painting', np.zeros((32, 32, 3), np.uint8)).shape == (32, 32, 3)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


ACCESSORIES = ["NONE", "SUNGLASSES", "ROUND", "SUNGLASSES", "NONE"]


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    """A small avatar-like dataset: 5 PNGs, a manifest and a recipe (no python-avatars needed)."""
    folder = tmp_path / "src"
    folder.mkdir()
    records = []
    for i, accessory in enumerate(ACCESSORIES):
        Image.fromarray(cartoon(48, 48, seed=i)).save(folder / f"{i:08d}.png")
        records.append({"file": f"{i:08d}.png", "index": i, "seed": i, "accessory": accessory, "eyes": "HAPPY"})
    meta.write_manifest(folder / meta.MANIFEST, records)
    meta.write_json(folder / meta.DATASET_JSON, {"format": meta.FORMAT, "kind": "avatars", "n": 5, "size": 48})
    return folder


@pytest.mark.parametrize("workers", [1, 2])
def test_transform_dataset(src: Path, tmp_path: Path, workers: int) -> None:
    out = tmp_path / "sketch"
    result = transform_dataset("sketch", src, out, workers=workers, progress=False)
    assert result.written == 5 and result.skipped == []
    for i in range(5):
        name = f"{i:08d}.png"
        assert np.array_equal(read_image(out / name), apply_transform("sketch", read_image(src / name)))
    info = meta.read_dataset_info(out)
    assert (info["kind"], info["transform"]) == ("transform", "sketch")
    assert info["transform_version"] == TRANSFORMS["sketch"].version
    assert info["source"]["fingerprint"] == dataset_fingerprint(src) and info["source"]["dataset"]["n"] == 5
    assert meta.read_manifest(out) == meta.read_manifest(src)  # attributes carry over


def test_subset_copies_matching_images(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "sun"
    result = transform_dataset("subset:accessory=sunglasses", src, out, progress=False)
    assert result.written == 2
    assert sorted(p.name for p in out.glob("*.png")) == ["00000001.png", "00000003.png"]
    assert (out / "00000001.png").read_bytes() == (src / "00000001.png").read_bytes()
    assert [r["accessory"] for r in meta.read_manifest(out)] == ["SUNGLASSES", "SUNGLASSES"]
    assert meta.read_dataset_info(out)["kind"] == "subset"
    with pytest.raises(GandaptError, match="unknown attribute 'hat'.*known: accessory, eyes"):
        transform_dataset("subset:hat=X", src, tmp_path / "a", progress=False)
    with pytest.raises(GandaptError, match="its values are: NONE, ROUND, SUNGLASSES"):
        transform_dataset("subset:accessory=EYEPATCH", src, tmp_path / "b", progress=False)
    with pytest.raises(GandaptError, match="write subset:<attribute>=<value>"):
        transform_dataset("subset:accessory", src, tmp_path / "c", progress=False)
    (src / meta.MANIFEST).unlink()
    with pytest.raises(GandaptError, match="needs .*manifest.jsonl"):
        transform_dataset("subset:accessory=ROUND", src, tmp_path / "d", progress=False)


def test_output_folder_safety(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "ink"
    transform_dataset("ink", src, out, progress=False)
    with pytest.raises(GandaptError, match="not empty; pass --force"):
        transform_dataset("pixel", src, out, progress=False)
    transform_dataset("subset:accessory=ROUND", src, out, force=True, progress=False)  # replaces ours
    assert sorted(p.name for p in out.glob("*.png")) == ["00000002.png"]
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "me.jpg").write_bytes(b"x")
    with pytest.raises(GandaptError, match="not a gandapt dataset"):
        transform_dataset("ink", src, foreign, force=True, progress=False)
    with pytest.raises(GandaptError, match="must not be --src"):
        transform_dataset("ink", src, src / "inside", progress=False)
    with pytest.raises(GandaptError, match="does not exist"):
        transform_dataset("ink", tmp_path / "nope", tmp_path / "o", progress=False)


def test_cli_transform_list_and_errors(src: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(data, ["transform", "--list"])
    assert listed.exit_code == 0
    for name, transform in TRANSFORMS.items():
        assert f"{name} (v{transform.version}): " in listed.output
    assert listed.output.strip().splitlines() == list_transforms()
    out = tmp_path / "cli"
    ok = runner.invoke(data, ["transform", "colorshift", "--src", str(src), "--out", str(out), "--workers", "1",
                                "--no-progress"])
    assert ok.exit_code == 0, ok.output
    assert json.loads((out / meta.DATASET_JSON).read_text())["transform"] == "colorshift"
    bad = runner.invoke(data, ["transform", "oil", "--src", str(src), "--out", str(tmp_path / "x")])
    lines = bad.output.strip().splitlines()
    assert bad.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: unknown transform 'oil'")
    missing = runner.invoke(data, ["transform", "sketch"])
    assert missing.exit_code == 2 and "missing --src, --out" in missing.output
