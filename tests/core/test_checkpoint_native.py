"""gandapt's native model format: plain containers, weights_only-loadable, atomic, versioned."""

import os
from pathlib import Path

import pytest
import torch

from gandapt.checkpoint import FORMAT_VERSION, CheckpointError, load, read_states, save_native
from gandapt.config import DiscriminatorConfig, GeneratorConfig
from gandapt.discriminator import Discriminator
from gandapt.errors import GandaptError
from gandapt.generator import Generator

GOLDEN = Path(os.environ.get("GANDAPT_GOLDEN", Path(__file__).resolve().parents[2].parent / "shared" / "golden"))
needs_golden = pytest.mark.skipif(not (GOLDEN / "README.md").exists(),
                                  reason=f"golden vectors not found at {GOLDEN} (set GANDAPT_GOLDEN)")

CFG = GeneratorConfig(z_dim=8, w_dim=16, img_resolution=16, channels=(32, 24, 8), mapping_layers=3,
                      conv_clamp=256, variant="nvlabs")
D_CFG = DiscriminatorConfig(img_resolution=16, channels=(32, 24, 8), mbstd_group_size=2, conv_clamp=256)


@pytest.fixture
def nets():
    torch.manual_seed(0)
    G, D = Generator(CFG), Discriminator(D_CFG)
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    return G, D


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_small_nets(tmp_path, nets):
    G, D = nets
    extra = {"adapter": {"kind": "hyperdomain", "rank": 4, "weights": torch.ones(3)},
             "domains": ["sketch", "ink"], "lr": 2e-3, "note": None, "shape": (1, 2)}
    path = save_native(tmp_path / "out" / "model.pt", G, D, extra=extra)
    raw = torch.load(path, weights_only=True)  # plain containers only
    assert raw["gandapt_format"] == "gandapt.model" and raw["format_version"] == FORMAT_VERSION == 1
    assert raw["G"]["config"] == CFG.to_dict() and raw["D"]["config"] == D_CFG.to_dict()
    assert set(raw) == {"gandapt_format", "format_version", "G", "D", "extra"}
    ckpt = load(path)
    assert ckpt.format == "gandapt" and ckpt.config == CFG and ckpt.d_config == D_CFG
    assert _same(ckpt.G, G) and _same(ckpt.D, D)
    assert not ckpt.G.training
    assert ckpt.extra["domains"] == ["sketch", "ink"] and torch.equal(ckpt.extra["adapter"]["weights"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_generator_only(tmp_path, nets):
    path = save_native(tmp_path / "g.pt", nets[0])
    ckpt = load(path)
    assert ckpt.D is None and ckpt.d_config is None and ckpt.extra == {}


@needs_golden
@pytest.mark.parametrize("name", ["rosinality_g64.pt", "nvlabs_g64_network_snapshot.pkl"])
def test_golden_round_trip_keeps_fingerprint(tmp_path, name):
    src = load(GOLDEN / name)
    path = save_native(tmp_path / "model.pt", src.G, src.D)
    back = load(path)
    assert back.config == src.config and back.d_config == src.d_config
    assert _same(back.G, src.G) and _same(back.D, src.D)
    assert back.fingerprint == src.fingerprint
    with torch.no_grad():
        z = torch.randn(2, src.config.z_dim)
        assert torch.equal(back.G(z), src.G(z))


def test_no_overwrite_without_force(tmp_path, nets):
    path = save_native(tmp_path / "model.pt", nets[0])
    before = path.read_bytes()
    with pytest.raises(GandaptError, match="already exists"):
        save_native(path, nets[0], nets[1])
    assert path.read_bytes() == before
    save_native(path, nets[0], nets[1], force=True)
    assert read_states(path).d_state is not None


def test_refuses_what_weights_only_could_not_read(tmp_path, nets):
    with pytest.raises(GandaptError, match="extra\\['bad'\\] is a object"):
        save_native(tmp_path / "m.pt", nets[0], extra={"bad": object()})
    with pytest.raises(GandaptError, match="no .config"):
        save_native(tmp_path / "m.pt", torch.nn.Linear(2, 2))
    assert not (tmp_path / "m.pt").exists()


def _error(path):
    with pytest.raises(CheckpointError) as err:
        load(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_newer_and_broken_files(tmp_path, nets):
    path = save_native(tmp_path / "model.pt", nets[0], nets[1])
    raw = torch.load(path, weights_only=True)
    bad = tmp_path / "bad.pt"
    torch.save({**raw, "format_version": 2}, bad)
    assert "format_version 2, newer than this gandapt reads (1); upgrade gandapt" in _error(bad)
    torch.save({**raw, "format_version": "1"}, bad)
    assert "not a positive integer" in _error(bad)
    torch.save({**raw, "gandapt_format": "gandapt.domain-pack"}, bad)
    assert "not a model" in _error(bad)
    torch.save({**raw, "G": {"config": {**CFG.to_dict(), "new_field": 1}, "state_dict": raw["G"]["state_dict"]}}, bad)
    assert "G config is invalid" in _error(bad) and "new_field" in _error(bad)
    torch.save({**raw, "G": {"state_dict": {}}}, bad)
    assert "entry 'G'" in _error(bad)
    sd = dict(raw["G"]["state_dict"])
    sd["synthesis.b8.conv0.weight"] = torch.zeros(24, 31, 3, 3)
    torch.save({**raw, "G": {"config": raw["G"]["config"], "state_dict": sd}}, bad)
    msg = _error(bad)
    assert msg == (f"checkpoint {bad}: tensor G['state_dict']['synthesis.b8.conv0.weight'] has shape [24, 31, 3, 3] "
                   "but the G config stored in the file needs [24, 32, 3, 3]")
    d_cfg = {**raw["D"]["config"], "img_resolution": 32, "channels": [32, 24, 8, 8]}
    torch.save({**raw, "D": {"config": d_cfg, "state_dict": raw["D"]["state_dict"]}}, bad)
    assert "missing" in _error(bad)
