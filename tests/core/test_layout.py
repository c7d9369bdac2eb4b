"""DomainLayout: sizes against methods.md §11.3, offsets, round trips, subsets, errors."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gandapt.config import GeneratorConfig, channel_table, ffhq1024_config
from gandapt.errors import DomainError, GandaptError
from gandapt.layout import LAYOUT_VERSION, STAGES, DomainLayout, full_layout, stage_of


def _cfg(res, channels, w_dim=512):
    return GeneratorConfig(z_dim=w_dim, w_dim=w_dim, img_resolution=res, channels=channels)


def nvlabs_g64():
    """The 64 px NVlabs golden test network (golden/README.md)."""
    return GeneratorConfig(z_dim=64, w_dim=64, img_resolution=64, channels=channel_table(64, 1024, 64),
                           mapping_layers=2, conv_clamp=256)


# methods.md §11.3: (config, W, S, in, out, rank1, rgb, total)
TABLE = [
    (ffhq1024_config(), 18432, 18176, 6048, 5568, 11769, 9147, 69140),
    (_cfg(128, (512,) * 5 + (256,)), 12288, 16384, 5376, 5120, 10595, 8466, 58229),  # rosinality cm=2
    (_cfg(64, (512,) * 5), 10240, 14336, 4608, 4608, 9297, 7695, 50784),
    (_cfg(128, channel_table(128, 16384, 512)), 12288, 14336, 4736, 4352, 9187, 7314, 52213),
    (_cfg(64, channel_table(64, 16384, 512)), 10240, 13312, 4352, 4096, 8529, 6927, 47456),
]


@pytest.mark.parametrize("row", TABLE, ids=["ffhq1024", "ros128", "ros64", "nv128", "nv64"])
def test_stage_sizes_match_methods_table(row):
    cfg, *sizes, total = row
    layout = DomainLayout(cfg)
    assert list(layout.stage_sizes.values()) == sizes
    assert tuple(layout.stage_sizes) == STAGES
    assert layout.size == total


def test_nvlabs_g64_sizes():
    cfg = nvlabs_g64()
    layout = DomainLayout(cfg)
    assert cfg.channel_dict == {4: 64, 8: 64, 16: 64, 32: 32, 64: 16}
    assert layout.stage_sizes["s"] == 2 * 704 == 2 * cfg.stylespace_dim
    assert layout.stage_sizes["w"] == 2 * 64 * cfg.num_ws
    assert layout.stage_sizes["in"] == cfg.conv_in_dim


@pytest.mark.parametrize("stages", [STAGES, ("s",), ("w", "rgb"), ("rank1", "in")])
def test_offsets_contiguous_and_ordered(stages):
    layout = DomainLayout(ffhq1024_config(), stages)
    offset = 0
    for e in layout.entries:
        assert e.offset == offset and e.size == int(np.prod(e.shape)) > 0
        offset += e.size
    assert offset == layout.size
    assert len(set(layout.names)) == len(layout.entries)
    # stages canonical, kinds grouped (kind-major) in each stage
    order = [STAGES.index(e.stage) for e in layout.entries]
    assert order == sorted(order)
    kinds = [e.kind for e in layout.entries]
    for k in set(kinds):
        idx = [i for i, kk in enumerate(kinds) if kk == k]
        assert idx == list(range(idx[0], idx[0] + len(idx)))


def test_entry_shapes_and_forward_order():
    cfg = nvlabs_g64()
    layout = DomainLayout(cfg)
    layers = cfg.layers()
    convs = [lay for lay in layers if not lay.is_torgb]
    assert layout.entry("w_scale").shape == (cfg.num_ws, 64) and layout.entry("w_scale").layer is None
    s_names = [n for n in layout.names if n.startswith("s_scale.")]
    assert s_names == [f"s_scale.{lay.name}" for lay in layers]
    assert [n for n in layout.names if n.startswith("r1_in.")] == [f"r1_in.{c.name}" for c in convs]
    assert layout.names.index("r1_out.b64.conv1") < layout.names.index("r1_in.b4.conv1")
    assert layout.entry("r1_k.b8.conv0").shape == (3, 3)
    assert layout.entry("out_scale.b32.conv1").shape == (32,)
    assert layout.entry("in_scale.b32.conv0").shape == (64,)
    assert layout.entry("rgb_dW.b64.torgb").shape == (3, 16)
    assert layout.entry("rgb_db.b64.torgb").shape == (3,)
    assert "in_scale.b4.torgb" not in layout.names
    assert "r1_out.b4.torgb" not in layout.names
    e = layout.entry("s_shift.b16.conv1")
    assert (e.kind, e.stage, e.layer, e.identity) == ("s_shift", "s", "b16.conv1", 0.0)


def test_identity_values():
    layout = DomainLayout(nvlabs_g64())
    ident = layout.identity()
    assert ident.dtype == np.float32 and ident.shape == (layout.size,)
    for e in layout.entries:
        assert np.all(ident[layout.slice(e.name)] == e.identity)
        assert e.identity == (1.0 if e.kind in ("w_scale", "s_scale", "in_scale", "out_scale") else 0.0)
    batch = layout.identity(3)
    assert batch.shape == (3, layout.size) and np.all(batch == ident)
    ident[0] = 5  # callers get a copy
    assert layout.identity()[0] == 1


def test_round_trip():
    layout = DomainLayout(nvlabs_g64())
    rng = np.random.default_rng(0)
    tensors = {
        "w_shift": rng.normal(size=(10, 64)),
        "s_scale.b8.conv0": rng.normal(size=64),
        "r1_k.b64.conv1": rng.normal(size=(3, 3)),
        "rgb_db.b4.torgb": rng.normal(size=3),
    }
    vec = layout.to_vector(tensors)
    assert vec.dtype == np.float32 and vec.shape == (layout.size,)
    back = layout.from_vector(vec)
    assert list(back) == [n for n in layout.names if n in tensors]  # flat order
    for name, t in tensors.items():
        np.testing.assert_array_equal(back[name], t.astype(np.float32))
    assert np.array_equal(layout.to_vector(back), vec)
    assert layout.from_vector(layout.identity()) == {}
    everything = layout.from_vector(vec, only_changed=False)
    assert list(everything) == list(layout.names)
    np.testing.assert_array_equal(everything["w_scale"], np.ones((10, 64)))
    assert np.array_equal(layout.to_vector({}), layout.identity())


def test_subset_and_convert():
    full = DomainLayout(nvlabs_g64())
    sub = full.subset(["rgb", "s"])
    assert sub.stages == ("s", "rgb") and sub == DomainLayout(nvlabs_g64(), "rgb,s")
    assert sub.size == full.stage_sizes["s"] + full.stage_sizes["rgb"]
    assert sub.entries[0].offset == 0
    tensors = {"s_shift.b4.conv1": np.full(64, 0.5), "rgb_dW.b8.torgb": np.ones((3, 64))}
    vf, vs = full.to_vector(tensors), sub.to_vector(tensors)
    assert np.array_equal(full.convert(vf, sub), vs)
    assert np.array_equal(sub.convert(vs, full), vf)
    batch = np.stack([vf, full.identity()])
    assert np.array_equal(full.convert(batch, sub), np.stack([vs, sub.identity()]))
    with pytest.raises(DomainError, match="r1_out.b8.conv0.*include stage 'rank1'"):
        full.convert(full.to_vector({"r1_out.b8.conv0": np.ones(64)}), sub)
    with pytest.raises(GandaptError, match="not in this layout"):
        sub.subset(["w"])
    with pytest.raises(DomainError, match="different generators"):
        full.convert(vf, DomainLayout(ffhq1024_config(), ("s", "rgb")))


def test_stages_used():
    layout = DomainLayout(nvlabs_g64(), ("s",))
    assert layout.stages_used(["rgb_db.b4.torgb", "w_scale", "s_shift.b8.conv1"]) == ("w", "s", "rgb")
    assert layout.stages_used({"in_scale.b8.conv0": None}) == ("in",)
    assert layout.stages_used([]) == ()
    with pytest.raises(DomainError, match="no domain tensor 's_shift.b8.conv7'"):
        layout.stages_used(["s_shift.b8.conv7"])
    assert stage_of("r1_k.b8.conv0") == "rank1"
    for bad in ["nope.b8.conv0", "s_scale", "w_scale.b4.conv1", "s_scale."]:
        with pytest.raises(DomainError, match="unknown domain tensor name"):
            stage_of(bad)


def test_errors_are_one_line():
    layout = DomainLayout(nvlabs_g64(), ("w", "s"))
    cases = [
        (lambda: layout.to_vector({"s_scale.b8.conv0": np.ones(63)}),
         r"'s_scale.b8.conv0' has shape \[63\] but this generator needs \[64\]"),
        (lambda: layout.to_vector({"bogus": np.ones(3)}), "unknown domain tensor name 'bogus'"),
        (lambda: layout.to_vector({"s_scale.b4.conv9": np.ones(3)}), "no domain tensor 's_scale.b4.conv9'"),
        (lambda: layout.to_vector({"in_scale.b8.conv0": np.ones(64)}),
         "stage 'in', which this layout does not include"),
        (lambda: layout.to_vector({"w_shift": np.full((10, 64), np.nan)}), "NaN"),
        (lambda: layout.from_vector(np.zeros(5)), f"length 5 but this generator's layout needs {layout.size} "
                                                  r"\(stages w, s\)"),
        (lambda: layout.from_vector(np.zeros((2, layout.size))), r"shape \[2, "),
        (lambda: layout.convert(np.zeros(3), layout), "length 3"),
        (lambda: layout.entry("rgb_db.b4.torgb"), "stage 'rgb'"),
    ]
    for fn, pattern in cases:
        with pytest.raises(DomainError, match=pattern) as info:
            fn()
        assert "\n" not in str(info.value) and ";" in str(info.value)  # problem; fix
    with pytest.raises(GandaptError, match="valid stages are w, s, in, out, rank1, rgb"):
        DomainLayout(nvlabs_g64(), ("s", "style"))


def test_empty_layout_and_equality():
    empty = DomainLayout(nvlabs_g64(), ())
    assert empty.size == 0 and empty.identity().shape == (0,) and empty.entries == ()
    assert DomainLayout(nvlabs_g64(), ("s", "w", "s")).stages == ("w", "s")
    assert DomainLayout(nvlabs_g64()) != DomainLayout(ffhq1024_config())
    assert full_layout(nvlabs_g64()) == DomainLayout(nvlabs_g64())


def test_to_dict_from_dict():
    cfg = nvlabs_g64()
    layout = DomainLayout(cfg, ("s", "rgb"))
    d = layout.to_dict()
    assert d["version"] == LAYOUT_VERSION and d["stages"] == ["s", "rgb"] and d["size"] == layout.size
    assert d["entries"][1] == {"name": "s_scale.b4.torgb", "offset": 64, "shape": [64]}
    assert DomainLayout.from_dict(cfg, d) == layout
    with pytest.raises(DomainError, match="does not match"):
        DomainLayout.from_dict(ffhq1024_config(), d)
    with pytest.raises(DomainError, match="version 99"):
        DomainLayout.from_dict(cfg, dict(d, version=99))
    assert "total" in layout.describe()


def test_no_torch_import():
    code = (
        "import sys, tempfile, os, gandapt.layout, gandapt.fingerprint\n"
        "from gandapt.config import ffhq1024_config\n"
        "from gandapt.pack import Domain, DomainPack, save_pack, load_pack\n"
        "p = os.path.join(tempfile.mkdtemp(), 'p.safetensors')\n"
        "save_pack(DomainPack([Domain('a', {'w_shift': [[1.0] * 512] * 18})], ffhq1024_config()), p)\n"
        "load_pack(p).vector('a')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    root = str(Path(__file__).resolve().parents[2])  # the repository root, installed or not
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
