"""Domain packs: save/load round trip, vectors and blends, compatibility checks, bad files."""

import json
import struct

import numpy as np
import pytest

from gandapt.config import GeneratorConfig, channel_table
from gandapt.errors import DomainError, GandaptError
from gandapt.layout import DomainLayout
from gandapt.pack import (PACK_FORMAT, Domain, DomainPack, check_compatible, is_pack_file, load_pack,
                          save_pack)

FP = "g2:0123456789abcdef01234567"


@pytest.fixture
def cfg():
    return GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=channel_table(16, 128, 16),
                           mapping_layers=2)


@pytest.fixture
def pack(cfg):
    rng = np.random.default_rng(1)
    sketch = Domain("sketch", {"s_shift.b8.conv0": rng.normal(size=16), "rgb_db.b16.torgb": rng.normal(size=3)},
                    {"method": "styledomain", "recipe": {"steps": 100}})
    dyna = Domain("dyna", {"r1_out.b4.conv1": rng.normal(size=16), "out_scale.b8.conv1": 1 + rng.normal(size=16)},
                  {"method": "dynagan"})
    base = Domain("base")  # the identity domain: no tensors at all
    return DomainPack({"sketch": sketch, "dyna": dyna, "base": base}, cfg, FP, {"author": "test"})


def test_domain_basics(cfg, pack):
    assert pack.names == ("sketch", "dyna", "base")
    assert pack["sketch"].stages == ("s", "rgb") and pack["base"].stages == ()
    assert pack.stages == ("s", "out", "rank1", "rgb")
    assert pack.layout().stages == pack.stages
    assert pack["sketch"].tensors["rgb_db.b16.torgb"].dtype == np.float32
    for bad in ["", "a/b", 3]:
        with pytest.raises(DomainError, match="invalid domain name"):
            Domain(bad)
    with pytest.raises(DomainError, match="unknown domain tensor name"):
        Domain("x", {"bogus": np.ones(3)})
    with pytest.raises(DomainError, match=r"'s_shift.b8.conv0' has shape \[15\] but this generator needs \[16\]"):
        pack.add(Domain("bad", {"s_shift.b8.conv0": np.ones(15)}))
    with pytest.raises(DomainError, match="contains NaN or inf"):
        pack.add(Domain("nan", {"s_shift.b8.conv0": np.full(16, np.nan)}))
    with pytest.raises(DomainError, match="already has a domain 'base'"):
        pack.add(Domain("base"))
    pack.add(Domain("base", {"w_shift": np.ones((6, 16))}), replace=True)
    assert pack["base"].stages == ("w",)


def test_vectors_and_blend(cfg, pack):
    layout = DomainLayout(cfg)
    v_sketch = pack.vector("sketch", layout)
    assert v_sketch.shape == (layout.size,) and v_sketch.dtype == np.float32
    np.testing.assert_array_equal(v_sketch[layout.slice("s_shift.b8.conv0")],
                                  pack["sketch"].tensors["s_shift.b8.conv0"])
    assert np.array_equal(pack.vector("base", layout), layout.identity())
    both = pack.vectors(["dyna", "sketch"], layout)
    assert both.shape == (2, layout.size) and np.array_equal(both[1], v_sketch)
    assert pack.vectors(layout=layout).shape == (3, layout.size)
    v_dyna = pack.vector("dyna", layout)
    ident = layout.identity()
    blend = pack.blend({"sketch": 0.25, "dyna": 0.75}, layout)
    np.testing.assert_allclose(blend, ident + 0.25 * (v_sketch - ident) + 0.75 * (v_dyna - ident), atol=1e-6)
    assert np.array_equal(pack.blend({"sketch": 1.0}, layout), v_sketch)
    assert np.array_equal(pack.blend({}, layout), ident)
    # out_scale identity is 1: a half blend moves it half way from 1
    o = layout.slice("out_scale.b8.conv1")
    np.testing.assert_allclose(pack.blend({"dyna": 0.5}, layout)[o], 1 + 0.5 * (v_dyna[o] - 1), atol=1e-6)
    # default layout: the pack's stages
    assert pack.vector("sketch").shape == (pack.layout().size,)
    with pytest.raises(DomainError, match="no domain 'nope'.*available: sketch, dyna, base"):
        pack.vector("nope")
    with pytest.raises(DomainError, match="uses stage\\(s\\) rank1"):
        pack.vector("dyna", DomainLayout(cfg, ("s", "out", "rgb")))
    with pytest.raises(DomainError, match="another generator config"):
        pack.vector("dyna", DomainLayout(GeneratorConfig(z_dim=16, w_dim=16, img_resolution=8, channels=(16, 16))))


def test_domain_from_vector(cfg, pack):
    layout = pack.layout()
    d = Domain.from_vector("copy", layout, pack.vector("sketch"), {"method": "copy"})
    assert set(d.tensors) == set(pack["sketch"].tensors) and d.meta == {"method": "copy"}


def test_save_load_round_trip(tmp_path, cfg, pack):
    path = tmp_path / "p.safetensors"
    save_pack(pack, path)
    assert is_pack_file(path)
    loaded = load_pack(path)
    assert loaded.names == pack.names  # order preserved
    assert loaded.base_config == cfg and loaded.base_fingerprint == FP and loaded.meta == {"author": "test"}
    for name in pack.names:
        assert loaded[name].meta == pack[name].meta
        assert set(loaded[name].tensors) == set(pack[name].tensors)
        for k, v in pack[name].tensors.items():
            assert loaded[name].tensors[k].dtype == np.float32
            np.testing.assert_array_equal(loaded[name].tensors[k], v)
    assert np.array_equal(loaded.vectors(layout=DomainLayout(cfg)), pack.vectors(layout=DomainLayout(cfg)))
    check_compatible(loaded, cfg, FP)
    check_compatible(loaded, cfg, None)  # unknown fingerprint: the config still has to match
    # stored keys and metadata follow the documented format
    header = _header(path)
    meta = header["__metadata__"]
    assert meta["gandapt_format"] == PACK_FORMAT and meta["format_version"] == "1"
    assert list(json.loads(meta["domains"])) == ["sketch", "dyna", "base"]
    assert GeneratorConfig.from_dict(json.loads(meta["base_config"])) == cfg
    assert {k for k in header if k != "__metadata__"} == {
        "sketch/s_shift.b8.conv0", "sketch/rgb_db.b16.torgb", "dyna/r1_out.b4.conv1", "dyna/out_scale.b8.conv1"}
    assert all(v["dtype"] == "F32" for k, v in header.items() if k != "__metadata__")


def test_save_drops_identity_and_refuses_overwrite(tmp_path, cfg):
    pack = DomainPack([Domain("a", {"s_scale.b4.conv1": np.ones(16), "s_shift.b4.conv1": np.zeros(16)})], cfg)
    path = tmp_path / "p.safetensors"
    save_pack(pack, path)
    loaded = load_pack(path)
    assert loaded["a"].tensors == {} and loaded.base_fingerprint is None
    with pytest.raises(GandaptError, match="already exists; pass --force"):
        save_pack(pack, path)
    save_pack(pack, path, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.safetensors"]  # no temp files left
    with pytest.raises(GandaptError, match="not JSON-serialisable"):
        save_pack(DomainPack([Domain("b", meta={"x": object()})], cfg), tmp_path / "q.safetensors")
    assert not (tmp_path / "q.safetensors").exists()
    pack["a"].tensors["s_scale.b4.conv1"] = np.ones(3, np.float32)  # edited after it was added
    with pytest.raises(DomainError, match=r"has shape \[3\]"):
        save_pack(pack, tmp_path / "q.safetensors")
    assert not (tmp_path / "q.safetensors").exists()


def test_check_compatible(tmp_path, cfg, pack):
    with pytest.raises(DomainError, match=f"was made for base model {FP} but this model is g2:other; "
                                          "use a pack trained for this model"):
        check_compatible(pack, cfg, "g2:other")
    other = GeneratorConfig(z_dim=16, w_dim=32, img_resolution=16, channels=cfg.channels, mapping_layers=2)
    with pytest.raises(DomainError, match="w_dim 16 vs 32"):
        check_compatible(pack, other, FP)
    save_pack(pack, tmp_path / "p.safetensors")
    loaded = load_pack(tmp_path / "p.safetensors")
    with pytest.raises(DomainError, match="domain pack .*p.safetensors was made for base model"):
        check_compatible(loaded, cfg, "g2:other")
    loaded.layout_version = 2
    with pytest.raises(DomainError, match="layout version 2"):
        check_compatible(loaded, cfg, FP)
    # a tensor that no longer fits (e.g. edited after loading) is caught too
    loaded.layout_version = 1
    loaded["sketch"].tensors["s_shift.b8.conv0"] = np.ones(4, np.float32)
    with pytest.raises(DomainError, match=r"has shape \[4\]"):
        check_compatible(loaded, cfg, FP)


def test_check_compatible_refuses_a_derived_base_pack_on_its_parent(tmp_path, cfg):
    expanded = "g2:eeeeeeeeeeeeeeeeeeeeeeee"
    shift = np.zeros((cfg.num_ws, cfg.w_dim), np.float32)
    shift[:, 0] = 3.0
    needs = {"kind": "expanded", "fingerprint": expanded, "parent_fingerprint": FP, "method": "expansion",
             "model": "runs/x/model.pt"}
    pack = DomainPack([Domain("new", {"w_shift": shift})], cfg, expanded, {"requires_base": needs})
    save_pack(pack, tmp_path / "e.safetensors")
    loaded = load_pack(tmp_path / "e.safetensors")
    check_compatible(loaded, cfg, expanded)  # the expanded model itself is fine
    with pytest.raises(DomainError, match=f"only work on the expanded base model {expanded}, but this model {FP} "
                                          r"is the original it was expanded from; load that model \(runs/x/model.pt\)"):
        check_compatible(loaded, cfg, FP)
    with pytest.raises(DomainError, match="expanded-base domains .* this model is g2:other"):
        check_compatible(loaded, cfg, "g2:other")


def _header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n])


def _rewrite_meta(src, dst, **changes):
    """Copy a pack with some metadata values replaced (header re-encoded, data untouched)."""
    raw = src.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"].update(changes)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    dst.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n:])
    return dst


def test_bad_files(tmp_path, cfg, pack):
    good = tmp_path / "good.safetensors"
    save_pack(pack, good)
    raw = good.read_bytes()
    cases = {
        "missing": (tmp_path / "nope.safetensors", "not found; check the path"),
        "text": (tmp_path / "t.txt", "is not a gandapt domain pack"),
        "tiny": (tmp_path / "tiny", "is not a gandapt domain pack"),
        "truncated": (tmp_path / "trunc.safetensors", "is not a gandapt domain pack"),
        "header_cut": (tmp_path / "hcut.safetensors", "is not a gandapt domain pack"),
        "plain": (tmp_path / "plain.safetensors", "format missing"),
        "format": (_rewrite_meta(good, tmp_path / "f.safetensors", gandapt_format="other"), "format other"),
        "newer": (_rewrite_meta(good, tmp_path / "n.safetensors", format_version="2"), "upgrade gandapt"),
        "layout": (_rewrite_meta(good, tmp_path / "l.safetensors", layout_version="7"), "layout version 7"),
        "config": (_rewrite_meta(good, tmp_path / "c.safetensors", base_config="{"), "bad metadata"),
        "orphan": (_rewrite_meta(good, tmp_path / "o.safetensors", domains='{"sketch": {}}'),
                   "tensor 'dyna/.* of no listed domain"),
    }
    (tmp_path / "t.txt").write_text("hello, this is not a pack at all")
    (tmp_path / "tiny").write_bytes(b"abc")
    (tmp_path / "trunc.safetensors").write_bytes(raw[:-5])
    (tmp_path / "hcut.safetensors").write_bytes(raw[:40])
    from safetensors.numpy import save_file
    save_file({"x": np.ones(3, np.float32)}, str(tmp_path / "plain.safetensors"))
    for what, (path, pattern) in cases.items():
        with pytest.raises(GandaptError, match=pattern) as info:
            load_pack(path)
        assert "\n" not in str(info.value), what
        # the sniff reads only the header: it accepts files whose header names the format
        assert is_pack_file(path) == (what in {"truncated", "newer", "layout", "config", "orphan"}), what
    assert not is_pack_file(tmp_path / "nope")
    assert not is_pack_file(tmp_path)  # a directory


def test_load_checks_shapes_against_config(tmp_path, cfg, pack):
    good = tmp_path / "good.safetensors"
    save_pack(pack, good)
    small = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=(16, 8, 8), mapping_layers=2)
    bad = _rewrite_meta(good, tmp_path / "b.safetensors", base_config=json.dumps(small.to_dict()))
    with pytest.raises(DomainError, match=r"domain 'dyna'.*has shape \[16\] but this generator needs \[8\]"):
        load_pack(bad)
