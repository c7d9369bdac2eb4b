"""Format round trips on small random networks (no golden files needed).

A gandapt network is written in each reference layout — NVlabs state dicts with their
``resample_filter`` buffers, rosinality keys through the inverse of the loader's key table — and must
load back to exactly the same weights and config.
"""

import pytest
import torch

from gandapt.checkpoint import load, read_states
from gandapt.checkpoint.nvlabs import RESAMPLE_FILTER
from gandapt.checkpoint.rosinality import rosinality_d_key, rosinality_g_key
from gandapt.config import DiscriminatorConfig, GeneratorConfig
from gandapt.discriminator import Discriminator
from gandapt.generator import Generator

CHANNELS = (48, 40, 24, 8)  # 4..32 px, every width different so a swapped axis cannot pass


def _nets(variant, clamp):
    torch.manual_seed(1)
    cfg = GeneratorConfig(z_dim=12, w_dim=20, img_resolution=32, channels=CHANNELS, mapping_layers=3,
                          conv_clamp=clamp, variant=variant)
    G, D = Generator(cfg), Discriminator(DiscriminatorConfig(32, CHANNELS, conv_clamp=clamp))
    with torch.no_grad():
        for p in list(G.parameters()) + list(D.parameters()) + [G.mapping.w_avg]:
            p.normal_()
    return G, D


def _with_filters(sd, blocks):
    out = dict(sd)
    for name in blocks:
        out[f"{name}.resample_filter"] = RESAMPLE_FILTER.clone()
    return out


def _same(module, ref):
    a, b = module.state_dict(), ref.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_nvlabs_state_dict_layout(tmp_path):
    G, D = _nets("nvlabs", 256)
    g_sd = _with_filters(G.state_dict(), ["synthesis.b8", "synthesis.b8.conv0", "synthesis.b32.conv1"])
    d_sd = _with_filters(D.state_dict(), ["b32", "b32.skip", "b4.conv"])
    g_kw = {"z_dim": 12, "c_dim": 0, "w_dim": 20, "img_resolution": 32, "img_channels": 3,
            "mapping_kwargs": {"num_layers": 3}, "synthesis_kwargs": {"conv_clamp": 256}}
    d_kw = {"c_dim": 0, "img_resolution": 32, "img_channels": 3, "conv_clamp": 256,
            "epilogue_kwargs": {"mbstd_group_size": 4}}
    training_g = {k: v + 1 for k, v in g_sd.items()}
    path = tmp_path / "nv.pt"
    torch.save({"G_ema": g_sd, "G": training_g, "D": d_sd, "init_kwargs": {"G_ema": g_kw, "G": g_kw, "D": d_kw}}, path)
    ckpt = load(path)
    assert ckpt.format == "nvlabs-state-dict"
    assert ckpt.config == G.config and ckpt.d_config == D.config
    _same(ckpt.G, G)
    _same(ckpt.D, D)


def _to_rosinality(G, D):
    g, d = {}, {}
    for key, t in G.state_dict().items():
        if key == "mapping.w_avg":
            continue
        name, to_file = rosinality_g_key(key)
        g[name] = t.reshape(to_file(tuple(t.shape)))
    for key, t in D.state_dict().items():
        name, to_file = rosinality_d_key(key, 32)
        d[name] = t.reshape(to_file(tuple(t.shape)))
    for n in range(0, 2 * 3, 2):  # blur buffers of the up-sampling convs and ToRGB skips
        g[f"convs.{n}.conv.blur.kernel"] = RESAMPLE_FILTER * 4
        g[f"to_rgbs.{n // 2}.upsample.kernel"] = RESAMPLE_FILTER * 4
    for j in range(1, 4):
        d[f"convs.{j}.conv2.0.kernel"] = d[f"convs.{j}.skip.0.kernel"] = RESAMPLE_FILTER.clone()
    return g, d


def test_rosinality_layout(tmp_path):
    G, D = _nets("rosinality", None)
    g, d = _to_rosinality(G, D)
    assert g["input.input"].shape == (1, 48, 4, 4) and g["to_rgbs.2.bias"].shape == (1, 3, 1, 1)
    assert g["noises.noise_6"].shape == (1, 1, 32, 32) and g["convs.5.noise.weight"].shape == (1,)
    assert d["convs.0.0.weight"].shape == (8, 3, 1, 1) and d["final_conv.0.weight"].shape == (48, 49, 3, 3)
    path = tmp_path / "ros.pt"
    torch.save({"g_ema": g, "g": g, "d": d, "latent_avg": G.mapping.w_avg.clone()}, path)
    ckpt = load(path)
    assert ckpt.config == G.config and ckpt.d_config == D.config
    _same(ckpt.G, G)
    _same(ckpt.D, D)
    with torch.no_grad():
        z = torch.randn(4, 12)
        assert torch.equal(ckpt.G(z, noise_mode="const"), G.eval()(z, noise_mode="const"))


@pytest.mark.parametrize("variant", ["nvlabs", "rosinality"])
def test_every_key_has_a_rosinality_name(variant):
    G, D = _nets(variant, None)
    names = [rosinality_g_key(k) for k in G.state_dict() if k != "mapping.w_avg"] + [rosinality_d_key(k, 32) for k in D.state_dict()]
    assert all(n is not None for n in names)
    assert len({n[0] for n in names}) == len(names)  # the inverse table is one-to-one
