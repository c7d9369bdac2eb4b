"""Base-model fingerprint: canonical over key order and dtype, sensitive to config, keys and values."""

import dataclasses
from collections import OrderedDict

import numpy as np
import pytest

from gandapt.config import GeneratorConfig, channel_table
from gandapt.fingerprint import fingerprint


@pytest.fixture
def cfg():
    return GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=channel_table(16, 128, 16),
                           mapping_layers=2, conv_clamp=256)


@pytest.fixture
def state():
    rng = np.random.default_rng(0)
    return OrderedDict([
        ("synthesis.b4.const", rng.normal(size=(16, 4, 4)).astype(np.float32)),
        ("synthesis.b4.conv1.noise_strength", np.float32(0.3) * np.ones((), np.float32)),
        ("mapping.fc0.weight", rng.normal(size=(16, 16)).astype(np.float32)),
    ])


def test_format_and_determinism(cfg, state):
    fp = fingerprint(cfg, state)
    assert fp.startswith("g2:") and len(fp) == 3 + 24 and int(fp[3:], 16) >= 0
    assert fingerprint(cfg, dict(state)) == fp


def test_independent_of_order_and_dtype(cfg, state):
    fp = fingerprint(cfg, state)
    assert fingerprint(cfg, OrderedDict(reversed(list(state.items())))) == fp
    assert fingerprint(cfg, {k: v.astype(np.float64) for k, v in state.items()}) == fp
    # float16 inputs hash like the float32 values they represent
    half = {k: v.astype(np.float16) for k, v in state.items()}
    assert fingerprint(cfg, half) == fingerprint(cfg, {k: v.astype(np.float32) for k, v in half.items()})
    # layout in memory does not matter
    fortran = dict(state, **{"mapping.fc0.weight": np.asfortranarray(state["mapping.fc0.weight"])})
    assert fingerprint(cfg, fortran) == fp
    # integral floats in the config hash like ints (a loader may produce 256.0)
    assert fingerprint(dataclasses.replace(cfg, conv_clamp=256.0), state) == fp


def test_sensitive_to_values_keys_shapes_and_config(cfg, state):
    fp = fingerprint(cfg, state)
    changed = {k: v.copy() for k, v in state.items()}
    changed["mapping.fc0.weight"][3, 5] += 1e-3
    assert fingerprint(cfg, changed) != fp
    renamed = {("mapping.fc9.weight" if k == "mapping.fc0.weight" else k): v for k, v in state.items()}
    assert fingerprint(cfg, renamed) != fp
    dropped = {k: v for k, v in state.items() if k != "synthesis.b4.conv1.noise_strength"}
    assert fingerprint(cfg, dropped) != fp
    reshaped = dict(state, **{"synthesis.b4.const": state["synthesis.b4.const"].reshape(4, 16, 4)})
    assert fingerprint(cfg, reshaped) != fp
    for change in ({"conv_clamp": None}, {"variant": "rosinality"}, {"mapping_layers": 3}):
        assert fingerprint(dataclasses.replace(cfg, **change), state) != fp
