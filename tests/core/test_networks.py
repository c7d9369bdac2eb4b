"""Network structure: FFHQ-1024 shapes and parameter counts, configs, discriminator options."""

import json
import os
from pathlib import Path

import pytest
import torch

from gandapt.config import DiscriminatorConfig, GeneratorConfig, channel_table, ffhq1024_config
from gandapt.discriminator import Discriminator, MinibatchStd
from gandapt.errors import GandaptError
from gandapt.generator import Generator

GOLDEN = Path(os.environ.get("GANDAPT_GOLDEN", Path(__file__).resolve().parents[2].parent / "shared" / "golden"))


@pytest.mark.skipif(not (GOLDEN / "nvlabs_ffhq1024_shapes.json").exists(), reason=f"golden shapes not at {GOLDEN}")
def test_ffhq1024_matches_nvlabs_shapes_and_counts():
    ref = json.loads((GOLDEN / "nvlabs_ffhq1024_shapes.json").read_text())
    G = Generator(ffhq1024_config())
    D = Discriminator(DiscriminatorConfig(1024, channel_table(1024, 32768, 512), conv_clamp=256))
    for net, key in ((G, "G"), (D, "D")):
        expected = {k: list(v) for k, v in ref[key].items() if not k.endswith("resample_filter")}
        got = {k: list(v.shape) for k, v in net.state_dict().items()}
        assert got == expected
        assert sum(p.numel() for p in net.parameters()) == ref["num_params"][key]
    assert G.config.stylespace_dim == 9088 and G.config.conv_in_dim == 6048 and G.num_ws == 18


def test_config_validation_and_round_trip():
    cfg = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, channels=(8, 8, 4))
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert [s.name for s in cfg.layers()] == ["b4.conv1", "b4.torgb", "b8.conv0", "b8.conv1", "b8.torgb",
                                             "b16.conv0", "b16.conv1", "b16.torgb"]
    with pytest.raises(GandaptError, match="power of two"):
        GeneratorConfig(z_dim=8, w_dim=8, img_resolution=24, channels=(8, 8))
    with pytest.raises(GandaptError, match="one width per resolution"):
        GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, channels=(8, 8))
    with pytest.raises(GandaptError, match="unknown field"):
        GeneratorConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(GandaptError, match="downsample"):
        DiscriminatorConfig(16, (8, 8, 8), downsample="max")


@pytest.mark.parametrize("downsample", ["blur", "avgpool"])
def test_discriminator_shapes_and_gradients(downsample):
    D = Discriminator(DiscriminatorConfig(32, (16, 16, 8, 8), downsample=downsample))
    x = torch.randn(6, 3, 32, 32, requires_grad=True)
    out = D(x)
    assert out.shape == (6, 1)
    out.sum().backward()
    assert x.grad.abs().sum() > 0


def test_minibatch_std_groups_are_strided_and_batch_need_not_divide():
    m = MinibatchStd(group_size=2)
    x = torch.zeros(4, 1, 1, 1)
    x[0] = x[2] = 1.0  # strided groups are {0, 2} and {1, 3}: zero spread within each group
    assert torch.allclose(m(x)[:, -1], torch.full((4, 1, 1), 1e-4))
    assert m(torch.randn(3, 2, 4, 4)).shape == (3, 3, 4, 4)  # 3 % 2 != 0: falls back to groups of 1


def test_channels_last_gives_the_same_images():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, channels=(8, 8, 4), mapping_layers=2))
    z = torch.randn(2, 8)
    with torch.no_grad():
        a = G(z)
        G.to(memory_format=torch.channels_last)
        b = G(z)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
