"""gandapt-export through its console script: a bundle from a checkpoint + --domains, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gandapt.checkpoint import save_native
from gandapt.config import GeneratorConfig
from gandapt.export.manifest import Manifest
from gandapt.generator import Generator
from gandapt.layout import full_layout
from gandapt.pack import Domain, DomainPack, save_pack

SCRIPT = str(Path(sys.executable).with_name("gandapt-export"))
CFG = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channels=(8, 8), mapping_layers=2)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    torch.manual_seed(1)
    save_native(tmp / "base.pt", Generator(CFG).eval())
    rng = np.random.default_rng(1)
    shape = full_layout(CFG).entry("out_scale.b8.conv1").shape
    domains = [Domain(n, {"out_scale.b8.conv1": (1 + 0.3 * rng.standard_normal(shape)).astype(np.float32)},
                      {"method": "dynagan"}) for n in ("a", "b")]
    save_pack(DomainPack(domains, CFG), tmp / "pack.safetensors")
    other = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channels=(4, 4), mapping_layers=2)
    save_pack(DomainPack([], other), tmp / "other.safetensors")
    return tmp


def test_export_writes_a_bundle(files: Path) -> None:
    proc = run("base.pt", "--out", "bundle", "--domains", "pack.safetensors", "--only", "b", cwd=files)
    assert proc.returncode == 0, proc.stderr
    assert "[1/6] loaded" in proc.stderr and "validated synthesis.onnx" in proc.stderr
    assert "export took" in proc.stderr and proc.stderr.rstrip().splitlines()[-1].startswith("done in ")
    m = Manifest.read(files / "bundle")
    assert m.stages == ["out"] and m.domain_names == ["b"]
    again = run("base.pt", "--out", "bundle", "--domains", "pack.safetensors", cwd=files)
    assert_one_line_error(again, "bundle already exists; pass --force to replace it")


@pytest.mark.parametrize("args,needles", [
    (["--only", "a,zz"], ["unknown domain(s) 'zz' in --only; available: a, b"]),
    (["--only", ","], ["--only names no domain", "a, b"]),
    (["--only", "a,a"], ["--only lists 'a' more than once"]),
    (["--truncation-cutoff", "99"], ["--truncation-cutoff 99 is past the model's"]),
    (["--modconv", "plugin", "--precision", "fp16"], ["the plugin form is exported in fp32 only"]),
    (["--opset", "16"], ["opset 16 is too old", "opset 18 or newer"]),
    (["--domains", "other.safetensors"], ["made for a generator with another config"]),
    (["--domains", "missing.safetensors"], ["domain pack missing.safetensors not found"]),
])
def test_bad_input_is_one_line(files: Path, args: list, needles: list) -> None:
    base = ["base.pt", "--out", "never"] + (["--domains", "pack.safetensors"] if "--domains" not in args else [])
    assert_one_line_error(run(*base, *args, cwd=files), *needles)
    assert not (files / "never").exists()



def test_a_full_triton_repo_is_refused_before_the_export(files: Path) -> None:
    (files / "full_repo").mkdir(exist_ok=True)
    (files / "full_repo" / "some_model").mkdir(exist_ok=True)
    proc = run("base.pt", "--out", "never2", "--domains", "pack.safetensors", "--triton-repo", "full_repo", cwd=files)
    assert_one_line_error(proc, "full_repo exists and is not empty; pass --force")
    assert not (files / "never2").exists()  # refused before any graph was exported

def test_missing_model_is_one_line(files: Path) -> None:
    assert_one_line_error(run("nope.pt", "--out", "x", cwd=files), "nope.pt")


def test_missing_optional_part_is_a_clear_error() -> None:
    from gandapt.errors import GandaptError
    from gandapt.export.cli import _optional

    with pytest.raises(GandaptError, match=r"^build_engine is not available in this gandapt \(gandapt.export.nope is missing\)"):
        _optional("nope", "build_engine")
    assert callable(_optional("engine", "build_engine"))  # the TensorRT builder module is importable without TensorRT


def test_engine_without_tensorrt_refuses_before_exporting(files: Path, tmp_path: Path) -> None:
    """No TensorRT/GPU here: --engine fails at once, one line, and writes no bundle."""
    from gandapt.export.engine import has_cuda_driver

    if has_cuda_driver():
        pytest.skip("a GPU driver is present: the refusal path is not taken")
    proc = run(str(files / "base.pt"), "--out", str(tmp_path / "b"), "--engine", cwd=tmp_path)
    assert_one_line_error(proc)
    assert not (tmp_path / "b").exists()
