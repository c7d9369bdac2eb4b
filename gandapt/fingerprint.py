"""Base-model fingerprint: one short id for a generator's config and weights (numpy + hashlib only).

Packs and bundles record it and loaders compare it, so a domain is never applied to a model it was not
trained for. The hash is over one canonical key order and dtype, so the same network has the same
fingerprint whichever file format it was loaded from.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

import numpy as np

from gandapt.config import GeneratorConfig

FINGERPRINT_PREFIX = "g2:"


def _canonical(value: Any) -> Any:
    """Integral floats become ints, so ``conv_clamp`` 256 and 256.0 hash the same."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    return value


def fingerprint(config: GeneratorConfig, state: Mapping[str, Any]) -> str:
    """Fingerprint of a generator.

    sha256 over the config as canonical JSON (sorted keys), then for each state key in sorted order:
    a ``[key, shape]`` JSON line and the tensor's bytes as contiguous little-endian float32.

    Args:
        config: the generator's config.
        state: ``{name: array}`` of the generator's parameters and buffers (any float dtype, any shape;
            values are converted to float32 first).

    Returns:
        ``'g2:'`` followed by the first 24 hex digits of the digest.
    """
    h = hashlib.sha256()
    h.update(json.dumps(_canonical(config.to_dict()), sort_keys=True, separators=(",", ":")).encode())
    h.update(b"\n")
    for key in sorted(state):
        arr = np.ascontiguousarray(np.asarray(state[key]), dtype="<f4")
        # the shape line fixes the byte count that follows, so key/tensor boundaries are unambiguous
        h.update(json.dumps([key, list(arr.shape)], separators=(",", ":")).encode() + b"\n")
        h.update(arr.tobytes())
    return FINGERPRINT_PREFIX + h.hexdigest()[:24]
