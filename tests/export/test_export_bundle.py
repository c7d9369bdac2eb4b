"""export_bundle end to end on a tiny model, its stage subset, atomic output, and every bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.numpy import load as st_load

from gandapt.checkpoint import save_native
from gandapt.config import GeneratorConfig
from gandapt.errors import DomainError, GandaptError
from gandapt.export import bundle as bundle_mod
from gandapt.export.bundle import export_bundle
from gandapt.export.manifest import Manifest
from gandapt.export.spec import ExportSpec
from gandapt.export.validate import session
from gandapt.generator import Generator
from gandapt.layout import DomainLayout, full_layout
from gandapt.pack import Domain, DomainPack, load_pack, save_pack

CFG = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channels=(8, 8), mapping_layers=2)


def make_pack(config: GeneratorConfig, fingerprint=None) -> DomainPack:
    """Three domain-modulation domains (in_scale only) and one StyleSpace domain."""
    full, rng = full_layout(config), np.random.default_rng(0)

    def near(name: str, ident: float) -> np.ndarray:
        return (ident + 0.2 * rng.standard_normal(full.entry(name).shape)).astype(np.float32)

    convs = [s.name for s in config.layers() if not s.is_torgb]
    domains = [Domain(n, {f"in_scale.{c}": near(f"in_scale.{c}", 1.0) for c in convs}, {"method": "hyperdomainnet"})
               for n in ("sketch", "paint", "toon")]
    domains.append(Domain("style", {"s_shift.b4.conv1": near("s_shift.b4.conv1", 0.0)}, {"method": "stylespace"}))
    return DomainPack(domains, config, fingerprint)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A native model.pt whose extra holds its pack as safetensors bytes in a uint8 tensor (the trainer contract)."""
    torch.manual_seed(0)
    G = Generator(CFG).eval()
    tmp = tmp_path_factory.mktemp("model")
    pack_path = save_pack(make_pack(CFG), tmp / "pack.safetensors")
    return save_native(tmp / "model.pt", G, extra={"domain_pack": torch.frombuffer(bytearray(pack_path.read_bytes()), dtype=torch.uint8)})


def test_bundle_of_in_scale_domains(model: Path, tmp_path: Path) -> None:
    out = export_bundle(model, tmp_path / "bundle", only="toon,sketch", progress=False)
    m = Manifest.read(out)  # verifies files and sha256
    in_size = DomainLayout(CFG, ("in",)).size
    assert m.stages == ["in"] and m.layout["size"] == in_size
    assert m.io_spec("synthesis").input("domain").shape == ("N", in_size)
    assert [d["name"] for d in m.domains] == ["sketch", "toon"]  # pack order, not --only order
    assert m.domains[0] == {"name": "sketch", "index": 0, "method": "hyperdomainnet", "stages": ["in"]}
    assert m.graphs["synthesis"]["validation"]["domains"] == 3  # two domains + identity, mixed rows
    assert m.source["format"] == "gandapt" and m.precision == "fp32" and m.opset == 18
    shipped = load_pack(out / "domains.safetensors")
    assert shipped.names == ("sketch", "toon")
    original = make_pack(CFG)
    for name in shipped.names:
        for key, value in original[name].tensors.items():
            np.testing.assert_array_equal(shipped[name].tensors[key], value)
    assert sorted(p.name for p in out.iterdir()) == ["domains.safetensors", "manifest.json", "mapping.onnx",
                                                      "synthesis.onnx"]
    # The bundle runs a batch that mixes its domains.
    rows = shipped.vectors(layout=shipped.layout())
    sess = session(out / "synthesis.onnx")
    img = sess.run(None, {"ws": np.zeros((2, CFG.num_ws, CFG.w_dim), np.float32), "domain": rows})[0]
    assert img.shape == (2, 3, 8, 8) and not np.allclose(img[0], img[1])
    assert not list(tmp_path.glob(".bundle.*"))  # no staging left behind


def test_pack_for_another_base_is_refused(model: Path, tmp_path: Path) -> None:
    other = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channels=(8, 4), mapping_layers=2)
    save_pack(make_pack(other), tmp_path / "other.safetensors")
    with pytest.raises(DomainError, match="made for a generator with another config .* channels"):
        export_bundle(model, tmp_path / "b", domains=tmp_path / "other.safetensors", progress=False)
    save_pack(make_pack(CFG, fingerprint="0" * 16), tmp_path / "fp.safetensors")
    with pytest.raises(DomainError, match="was made for base model 0000000000000000 but this model is"):
        export_bundle(model, tmp_path / "b", domains=tmp_path / "fp.safetensors", progress=False)
    assert not (tmp_path / "b").exists()


def test_unknown_only_name_lists_available(model: Path, tmp_path: Path) -> None:
    with pytest.raises(DomainError, match=r"unknown domain\(s\) 'nope' in --only; available: sketch, paint, toon, style"):
        export_bundle(model, tmp_path / "b", only=["sketch", "nope"], progress=False)


def test_existing_out_needs_force(model: Path, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(GandaptError, match="already exists; pass --force"):
        export_bundle(model, tmp_path / "b", progress=False)
    with pytest.raises(GandaptError, match="exists and is not a gandapt bundle"):  # --force never eats other data
        export_bundle(model, tmp_path / "b", force=True, progress=False)
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"


def test_failed_export_leaves_nothing(model: Path, tmp_path: Path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise GandaptError("validation failed on purpose")

    monkeypatch.setattr(bundle_mod, "_export_graphs", boom)
    with pytest.raises(GandaptError, match="on purpose"):
        export_bundle(model, tmp_path / "b", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_publish_replaces_old_bundle(tmp_path: Path) -> None:
    out, stage = tmp_path / "b", tmp_path / ".b.partial"
    out.mkdir()
    (out / "manifest.json").write_text("old")
    stage.mkdir()
    (stage / "manifest.json").write_text("new")
    bundle_mod._publish(stage, out, force=True)
    assert (out / "manifest.json").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.parametrize("kwargs,message", [
    ({"modconv": "plugin", "precision": "fp16"}, "the plugin form is exported in fp32 only"),
    ({"opset": 17}, "opset 17 is too old: the graphs need opset 18 or newer"),
    ({"opset": 999}, "opset 999 is newer than the installed onnx supports"),
    ({"precision": "int8"}, "unknown precision 'int8'"),
    ({"validation_batch": 2}, "must differ from trace_batch"),
])
def test_bad_specs(kwargs, message: str) -> None:
    with pytest.raises(GandaptError, match=message):
        ExportSpec(**kwargs)


def test_pack_from_extra_dict_and_bad_extra(tmp_path: Path) -> None:
    """The other form of the model.pt contract: {'tensors', 'metadata'} as a pack file stores them."""
    data = save_pack(make_pack(CFG), tmp_path / "p.safetensors").read_bytes()
    header = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])
    stored = {"tensors": {k: torch.from_numpy(v) for k, v in st_load(data).items()}, "metadata": header["__metadata__"]}
    ckpt = SimpleNamespace(extra={"domain_pack": stored}, config=CFG, path=Path("model.pt"), fingerprint=None)
    pack = bundle_mod._resolve_pack(ckpt, None)
    assert pack.names == ("sketch", "paint", "toon", "style") and "extra['domain_pack']" in pack.source
    ckpt.extra = {"domain_pack": [1, 2]}
    with pytest.raises(GandaptError, match=r"extra\['domain_pack'\] is a list; expected a uint8 tensor"):
        bundle_mod._resolve_pack(ckpt, None)
