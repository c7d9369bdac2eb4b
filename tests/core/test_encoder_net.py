"""The W+ inversion encoder network and its file format."""

import pytest
import torch

import gandapt
from gandapt.checkpoint import load_encoder, save_encoder
from gandapt.config import GeneratorConfig
from gandapt.encoder import Encoder, EncoderConfig
from gandapt.errors import CheckpointError, GandaptError
from gandapt.samples import data_path

G64 = GeneratorConfig(z_dim=64, w_dim=64, img_resolution=64, channels=(64, 64, 64, 32, 16), mapping_layers=2)


def test_groups_follow_the_resolution_of_each_row():
    cfg = EncoderConfig.for_generator(G64)
    # rows 0-3 feed 4-8 px layers, 4-7 16-32 px, 8-9 the 64 px block
    assert cfg.groups == (4, 4, 2) and sum(cfg.groups) == G64.num_ws
    assert cfg.channels == (32, 64, 128, 256)
    g32 = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=32, channels=(8, 8, 8, 8), mapping_layers=1)
    c32 = EncoderConfig.for_generator(g32)
    assert c32.groups == (4, 4, 0) and c32.channels == (64, 128, 256)


@pytest.mark.parametrize("kwargs,match", [
    (dict(channels=(8, 8)), "stage widths"),
    (dict(channels=(8, 8, 8, 8, 8)), "stage widths"),
    (dict(groups=(4, 4, 1)), "summing to num_ws"),
    (dict(img_resolution=16), "at least 32 px"),
])
def test_bad_configs_are_refused(kwargs, match):
    base = dict(img_resolution=64, num_ws=10, w_dim=8, groups=(4, 4, 2))
    with pytest.raises(GandaptError, match=match):
        EncoderConfig(**{**base, **kwargs})


def test_forward_shapes_and_w_avg_start():
    torch.manual_seed(0)
    E = Encoder(EncoderConfig.for_generator(G64, head_dim=32)).eval()
    E.w_avg.fill_(3.0)
    ws, delta = E.forward_parts(torch.randn(3, 3, 64, 64))
    assert ws.shape == delta.shape == (3, G64.num_ws, G64.w_dim)
    # rows share the base code: ws - delta is the same for every row
    common = ws - delta
    assert torch.allclose(common, common[:, :1].expand_as(common))
    with pytest.raises(GandaptError, match=r"\[N, 3, 64, 64\]"):
        E(torch.randn(1, 3, 32, 32))


def test_config_round_trips():
    cfg = EncoderConfig.for_generator(G64, head_channels=8)
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(GandaptError, match="unknown encoder config"):
        EncoderConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    E = Encoder(EncoderConfig.for_generator(G64, head_dim=32)).eval()
    x = torch.randn(2, 3, 64, 64)
    path = save_encoder(tmp_path / "e.pt", E, "g2:abc", extra={"note": "x"})
    enc = gandapt.load_encoder(path)
    assert enc.base_fingerprint == "g2:abc" and enc.extra["note"] == "x" and enc.config == E.config
    with torch.no_grad():
        assert torch.equal(enc.E(x), E(x))
    with pytest.raises(GandaptError, match="already exists"):
        save_encoder(tmp_path / "e.pt", E, "g2:abc")
    half = save_encoder(tmp_path / "h.pt", E, "g2:abc", dtype=torch.float16)
    assert half.stat().st_size < path.stat().st_size * 0.6
    with torch.no_grad():
        assert (load_encoder(half).E(x) - E(x)).abs().max() < 0.05


def test_wrong_files_are_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not an encoder"):
        load_encoder(data_path("tiny_g32.pt"))
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable encoder"):
        load_encoder(tmp_path / "junk.pt")
    E = Encoder(EncoderConfig.for_generator(G64, head_dim=32))
    save_encoder(tmp_path / "e.pt", E, "g2:abc")
    with pytest.raises(CheckpointError, match="not a model"):
        gandapt.load(tmp_path / "e.pt")
