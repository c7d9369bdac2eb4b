"""Shared fixtures and marker behaviour for the whole suite (runs on CPU by default).

Markers (registered in setup.cfg): ``gpu`` and ``trt`` tests are skipped when the machine has no
CUDA driver (or, for ``trt``, no TensorRT); ``slow`` tests run unless deselected with
``-m "not slow"``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _has_cuda_driver() -> bool:
    # Cheap and import-free; onnxruntime's provider list claims CUDA even without a GPU.
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    gpu = _has_cuda_driver()
    trt = gpu and importlib.util.find_spec("tensorrt") is not None
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU (no libcuda.so.1 on this machine)")
    no_trt = pytest.mark.skip(reason="needs TensorRT and a CUDA GPU (install the [trt] extra on a GPU machine)")
    for item in items:
        if "trt" in item.keywords and not trt:
            item.add_marker(no_trt)
        elif "gpu" in item.keywords and not gpu:
            item.add_marker(no_gpu)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository checkout the tests run from."""
    return REPO


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """Golden vectors of the reference StyleGAN2s: $GANDAPT_GOLDEN or ../shared/golden."""
    path = Path(os.environ.get("GANDAPT_GOLDEN") or REPO.parent / "shared" / "golden")
    if not (path / "README.md").is_file():
        pytest.skip(f"golden vectors not found at {path}; set GANDAPT_GOLDEN to the golden/ folder")
    return path


@pytest.fixture(scope="session")
def tiny_encoder_files(tmp_path_factory):
    """(encoder module, its file for samples/data/tiny_g32.pt, the same weights filed for a foreign model):
    a random-weight inversion encoder for the ``--encoder`` tests."""
    torch = pytest.importorskip("torch")
    import gandapt
    from gandapt.checkpoint import save_encoder
    from gandapt.encoder import Encoder, EncoderConfig
    from gandapt.samples import data_path

    root = tmp_path_factory.mktemp("tiny_encoder")
    ck = gandapt.load(data_path("tiny_g32.pt"))
    torch.manual_seed(0)
    E = Encoder(EncoderConfig.for_generator(ck.config, head_dim=32, head_channels=8)).eval()
    good, foreign = root / "enc.pt", root / "other.pt"
    save_encoder(good, E, ck.fingerprint)
    save_encoder(foreign, E, "g2:000000000000000000000000")
    return E, good, foreign
