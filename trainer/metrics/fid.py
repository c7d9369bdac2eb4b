"""FID and KID from Inception features (the maths; the drivers are in :mod:`.evaluate`).

Both follow NVIDIA's StyleGAN2-ADA metrics so numbers are comparable with the papers:

* FID: Fréchet distance between Gaussians fitted to the two feature sets, with the population
  covariance (divide by N, as NVIDIA; the TTUR code's ``np.cov`` divides by N-1, which changes FID
  by a factor (1 - 1/N) on the covariance terms, 0.05 % at N=2000).
* KID: unbiased MMD² with the cubic polynomial kernel ``k(x, y) = (x·y / d + 1)³``, averaged over
  ``num_subsets`` random subsets of ``min(N_fake, N_real, max_subset_size)`` samples (Bińkowski et
  al. 2018). NVIDIA reports the mean only; the std over subsets is reported too.

FID from fewer samples than feature dimensions (2048) has a rank-deficient covariance and is biased
upwards; compare FIDs only at the same N (hence the ``fid2k`` names in the reports).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Tuple, Union

import numpy as np

from gandapt.errors import GandaptError

ArrayLike = Union[np.ndarray, "torch.Tensor"]  # noqa: F821 (torch tensors are accepted, not imported)


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


@dataclass
class FeatureStats:
    """Mean, covariance and (for KID) the features of one image set.

    Attributes:
        mu: [D] float64 mean.
        sigma: [D, D] float64 population covariance.
        features: [N, D] float32 features.
    """

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray

    @property
    def n(self) -> int:
        """Number of images the statistics come from."""
        return int(self.features.shape[0])

    @classmethod
    def from_features(cls, features: ArrayLike) -> "FeatureStats":
        """Fit the statistics of ``features`` ([N, D]); see :func:`feature_stats`."""
        features = _as_numpy(features).astype(np.float32, copy=False)
        mu, sigma = feature_stats(features)
        return cls(mu, sigma, features)


def feature_stats(features: ArrayLike, chunk: int = 4096) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and population covariance of a feature set, in float64.

    Args:
        features: [N, D], N >= 2.
        chunk: rows per float64 block (bounds memory at 50k × 2048 features).

    Returns:
        mu [D] and sigma [D, D], both float64.
    """
    f = _as_numpy(features)
    if f.ndim != 2 or f.shape[0] < 2:
        raise GandaptError(f"FID needs at least 2 feature vectors [N, D]; got shape {list(f.shape)}")
    mu = f.mean(axis=0, dtype=np.float64)
    sigma = np.zeros((f.shape[1], f.shape[1]))
    for start in range(0, f.shape[0], chunk):
        c = f[start:start + chunk].astype(np.float64) - mu  # centre first: no E[x²]-E[x]² cancellation
        sigma += c.T @ c
    return mu, sigma / f.shape[0]


def _trace_sqrt_psd(m: np.ndarray) -> float:
    """``tr sqrt(M)`` of a symmetric PSD matrix: the sum of its eigenvalues' roots (rounding negatives clipped)."""
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str = "eigh") -> float:
    """``tr(sqrtm(sigma1 @ sigma2))`` for two covariance matrices, in float64.

    Args:
        sigma1: [D, D] symmetric PSD.
        sigma2: [D, D] symmetric PSD.
        method: 'eigh' (numpy only, the default) or 'scipy' (``scipy.linalg.sqrtm`` of the product,
            the route of NVIDIA's and the TTUR code, kept to check parity with them).

    Returns:
        The trace, a float.

    The 'eigh' route factors ``sigma1 = L Lᵀ`` (Cholesky; a symmetric eigendecomposition when sigma1
    is singular) and uses ``tr sqrt(sigma1 sigma2) = tr sqrt(Lᵀ sigma2 L)``: ``L (Lᵀ sigma2)`` and
    ``(Lᵀ sigma2) L`` share their eigenvalues, and the second matrix is symmetric PSD, so they come
    from ``eigvalsh`` (real, backward stable) instead of a Schur decomposition of a non-symmetric
    product. It is the default because it is both faster and more exact: at D=2048 on the 2-core CI
    machine sqrtm took 13-25 s, and 45 s when N < D (a singular product) while drifting in the 6th
    digit; the routes agree to ~1e-14 relative on full-rank input (tests/trainer/test_metrics.py).
    For N < D, :func:`fid_from_stats` has a cheaper route, with less rounding noise, through the features.
    """
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if method == "scipy":
        import scipy.linalg

        with warnings.catch_warnings():
            # sqrtm warns on singular products (N < D); NVIDIA ignores it and keeps the real part.
            warnings.simplefilter("ignore")
            root = scipy.linalg.sqrtm(s1 @ s2)
        trace = float(np.real(np.trace(root)))
        if np.isfinite(trace):
            return trace
        method = "eigh"  # sqrtm broke down on a singular product; the eigh route cannot
    if method == "eigh":
        try:
            factor = np.linalg.cholesky(s1)  # O(D³/3); far cheaper than eigh at D=2048
        except np.linalg.LinAlgError:
            w, v = np.linalg.eigh((s1 + s1.T) / 2)
            factor = v * np.sqrt(np.clip(w, 0.0, None))
        return _trace_sqrt_psd(factor.T @ s2 @ factor)
    raise GandaptError(f"unknown matrix square-root method {method!r}; use 'eigh' or 'scipy'")


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike,
                     method: str = "eigh") -> float:
    """Fréchet distance ``|mu1-mu2|² + tr(s1) + tr(s2) - 2 tr(sqrt(s1 s2))`` between two Gaussians.

    Args:
        mu1: [D] mean of the first set.
        sigma1: [D, D] covariance of the first set.
        mu2: [D] mean of the second set.
        sigma2: [D, D] covariance of the second set.
        method: matrix square-root route, see :func:`trace_sqrt_product`.

    Returns:
        FID (>= 0 up to rounding).
    """
    mu1, mu2 = _as_numpy(mu1).astype(np.float64), _as_numpy(mu2).astype(np.float64)
    s1, s2 = _as_numpy(sigma1).astype(np.float64), _as_numpy(sigma2).astype(np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise GandaptError(
            f"FID statistics do not match: means {list(mu1.shape)}, {list(mu2.shape)}, "
            f"covariances {list(s1.shape)}, {list(s2.shape)}"
        )
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2, method))


def fid_from_stats(a: FeatureStats, b: FeatureStats, method: str = "eigh") -> float:
    """FID between two :class:`FeatureStats`.

    When a set has no more samples than dimensions (FID under 2k images), its covariance is
    ``Cᵀ C`` with C the [N, D] centred features / sqrt(N), and the nonzero eigenvalues of
    ``Cᵀ C sigma_other`` are those of the [N, N] matrix ``C sigma_other Cᵀ``. This skips the D×D
    decomposition and the D - N rounding-noise eigenvalues (~1e-16, whose square roots ~1e-8 each
    add up) of the singular covariance's null space.

    Args:
        a: statistics of one set (with its features).
        b: statistics of the other set.
        method: 'eigh' (with the low-rank shortcut) or 'scipy', see :func:`trace_sqrt_product`.

    Returns:
        FID.
    """
    d = a.mu.shape[0]
    if method != "eigh" or min(a.n, b.n) > d or b.mu.shape != (d,):
        return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, method)
    small, other = (a, b) if a.n <= b.n else (b, a)
    c = (small.features.astype(np.float64) - small.mu) / np.sqrt(small.n)
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * _trace_sqrt_psd(c @ other.sigma @ c.T))


def fid_from_features(fake: ArrayLike, real: ArrayLike, method: str = "eigh") -> float:
    """FID between two feature sets [N1, D] and [N2, D]."""
    return fid_from_stats(FeatureStats.from_features(fake), FeatureStats.from_features(real), method)


def kernel_inception_distance(fake: ArrayLike, real: ArrayLike, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0,
                              max_precompute: int = 5000) -> Tuple[float, float]:
    """KID: unbiased MMD² (cubic polynomial kernel) averaged over random subsets.

    Args:
        fake: [N1, D] features.
        real: [N2, D] features.
        num_subsets: number of subsets (100 in NVIDIA's metric).
        max_subset_size: subset size cap (1000 in NVIDIA's metric); m = min(N1, N2, cap), m >= 2.
        seed: seed of the subset draws.
        max_precompute: when N1 and N2 are at most this, the three N×N kernel matrices are computed once
            and every subset sum is read off them (same result, far faster at N=2000; 3·N² float64
            memory, 600 MB at the default 5000). Larger sets evaluate the kernels subset by subset.

    Returns:
        (mean, std) of the per-subset MMD² estimates.
    """
    x_all = _as_numpy(fake).astype(np.float64)
    y_all = _as_numpy(real).astype(np.float64)
    if x_all.ndim != 2 or y_all.ndim != 2 or x_all.shape[1] != y_all.shape[1]:
        raise GandaptError(f"KID feature sets do not match: {list(x_all.shape)} vs {list(y_all.shape)}")
    d = x_all.shape[1]
    m = min(x_all.shape[0], y_all.shape[0], max_subset_size)
    if m < 2:
        raise GandaptError(f"KID needs at least 2 images in each set; got {x_all.shape[0]} and {y_all.shape[0]}")
    rng = np.random.default_rng(seed)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / d + 1.0) ** 3

    subsets = [(rng.choice(x_all.shape[0], m, replace=False), rng.choice(y_all.shape[0], m, replace=False))
               for _ in range(num_subsets)]
    if max(x_all.shape[0], y_all.shape[0]) <= max_precompute:
        # Each subset sum is w_a^T K w_b with 0/1 selection vectors w: one matrix product for all subsets.
        kxx, kyy, kxy = kernel(x_all, x_all), kernel(y_all, y_all), kernel(x_all, y_all)
        wx = np.zeros((num_subsets, x_all.shape[0]))
        wy = np.zeros((num_subsets, y_all.shape[0]))
        for i, (ix, iy) in enumerate(subsets):
            wx[i, ix] = 1.0
            wy[i, iy] = 1.0
        sum_xx = np.einsum("sn,sn->s", wx @ kxx, wx) - wx @ np.diag(kxx)
        sum_yy = np.einsum("sn,sn->s", wy @ kyy, wy) - wy @ np.diag(kyy)
        sum_xy = np.einsum("sn,sn->s", wx @ kxy, wy)
    else:
        sum_xx, sum_yy, sum_xy = np.empty(num_subsets), np.empty(num_subsets), np.empty(num_subsets)
        for i, (ix, iy) in enumerate(subsets):
            x, y = x_all[ix], y_all[iy]
            a, b = kernel(x, x), kernel(y, y)
            sum_xx[i], sum_yy[i] = a.sum() - np.trace(a), b.sum() - np.trace(b)
            sum_xy[i] = kernel(x, y).sum()
    # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set sums.
    values = (sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * sum_xy / (m * m)
    return float(values.mean()), float(values.std())
