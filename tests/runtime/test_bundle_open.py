"""runtime.bundle: opening and checking a bundle, domain vectors and blends (no torch needed)."""

import json
import shutil

import numpy as np
import pytest

from gandapt.errors import GandaptError
from gandapt.runtime.bundle import open_bundle, parse_blend


def test_open_lists_domains_and_graphs(tiny_bundle):
    b = open_bundle(tiny_bundle)
    assert b.domain_names == ["warm", "bold"] and b.domain_size == b.layout.size > 0
    assert set(b.layout.stages) == {"s", "in"}
    for g in ("mapping", "synthesis", "encoder"):
        assert b.graph_file(g).is_file()
    assert b.vector("warm").shape == (b.domain_size,) and b.vector("warm").dtype == np.float32
    assert np.array_equal(b.vector("base"), b.identity())
    with pytest.raises(GandaptError, match="unknown domain 'nope'.*warm, bold, base"):
        b.vector("nope")


def test_blend_is_identity_plus_weighted_offsets(tiny_bundle):
    b = open_bundle(tiny_bundle)
    v = b.blend({"warm": 0.5, "bold": 0.5})
    ident = b.identity()
    assert np.allclose(v, ident + 0.5 * (b.vector("warm") - ident) + 0.5 * (b.vector("bold") - ident))
    assert np.allclose(b.blend({"warm": 1.0}), b.vector("warm"))
    assert parse_blend("warm:0.7, bold:0.3") == {"warm": 0.7, "bold": 0.3}
    for bad in ("warm", "warm:x", "", "warm:nan", "warm:inf"):
        with pytest.raises(GandaptError, match="blend"):
            parse_blend(bad)


def test_broken_bundles_are_one_line_errors(tiny_bundle, tmp_path):
    with pytest.raises(GandaptError, match="not a folder"):
        open_bundle(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GandaptError, match="not a gandapt bundle"):
        open_bundle(tmp_path / "empty")
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    (copy / "encoder.onnx").write_bytes(b"cut short")
    with pytest.raises(GandaptError, match="sha256"):
        open_bundle(copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["gandapt_bundle"] = 99
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(GandaptError, match="bundle version 99"):
        open_bundle(copy)
