"""Every supported checkpoint format reads to the exact reference tensors (golden files in ../shared/golden)."""

import argparse
import json
import os
from pathlib import Path

import pytest
import torch

from gandapt.checkpoint import (
    Checkpoint,
    discriminator_shapes,
    generator_shapes,
    load,
    read_states,
    sniff,
)
from gandapt.checkpoint.nvlabs import RESAMPLE_FILTER, nvlabs_states
from gandapt.checkpoint.rosinality import convert_discriminator, convert_generator
from gandapt.config import DiscriminatorConfig, GeneratorConfig, channel_table, ffhq1024_config

GOLDEN = Path(os.environ.get("GANDAPT_GOLDEN", Path(__file__).resolve().parents[2].parent / "shared" / "golden"))
pytestmark = pytest.mark.skipif(not (GOLDEN / "README.md").exists(),
                                reason=f"golden vectors not found at {GOLDEN} (set GANDAPT_GOLDEN)")

NV_CHANNELS = (64, 64, 64, 32, 16)     # min(1024 // res, 64)
ROS_CHANNELS = (64, 64, 64, 64, 32)    # rosinality test net: widths / 8


def _golden(name):
    return torch.load(GOLDEN / name, weights_only=True)


def _no_filters(sd):
    return {k: v for k, v in sd.items() if not k.endswith("resample_filter")}


def _assert_exact(mine, ref):
    """Same keys, shapes and values (max difference 0)."""
    assert set(mine) == set(ref)
    for k in ref:
        assert mine[k].shape == ref[k].shape, k
        assert torch.equal(mine[k], ref[k]), k


# ---- NVlabs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, fmt", [("nvlabs_g64.pt", "nvlabs-state-dict"),
                                       ("nvlabs_g64_network_snapshot.pkl", "nvlabs-pkl")])
def test_nvlabs_formats_give_exactly_g_ema_and_d(name, fmt):
    ref = _golden("nvlabs_g64.pt")
    st = read_states(GOLDEN / name)
    assert st.format == fmt
    _assert_exact(st.g_state, _no_filters(ref["G_ema"]))   # G_ema, never the training G
    _assert_exact(st.d_state, _no_filters(ref["D"]))
    assert st.config == GeneratorConfig(z_dim=64, w_dim=64, img_resolution=64, channels=NV_CHANNELS,
                                        mapping_layers=2, conv_clamp=256, variant="nvlabs")
    assert st.d_config == DiscriminatorConfig(img_resolution=64, channels=NV_CHANNELS, mbstd_group_size=4,
                                              conv_clamp=256)
    assert st.extra["init_kwargs"]["G_ema"] == ref["init_kwargs"]["G_ema"]
    assert st.extra["init_kwargs"]["D"] == ref["init_kwargs"]["D"]


def test_pickle_flattening_keeps_state_dict_order():
    ref = _golden("nvlabs_g64.pt")
    st = read_states(GOLDEN / "nvlabs_g64_network_snapshot.pkl")
    assert list(st.g_state) == list(_no_filters(ref["G_ema"]))
    assert list(st.d_state) == list(_no_filters(ref["D"]))
    assert st.extra["training_set_kwargs"]["resolution"] == 64
    assert type(st.extra["training_set_kwargs"]) is dict


def test_nvlabs_load_builds_eval_modules_with_those_weights():
    ref = _golden("nvlabs_g64.pt")
    ckpt = load(GOLDEN / "nvlabs_g64_network_snapshot.pkl")
    assert isinstance(ckpt, Checkpoint)
    assert ckpt.format == "nvlabs-pkl" and ckpt.path == GOLDEN / "nvlabs_g64_network_snapshot.pkl"
    assert not ckpt.G.training and not ckpt.D.training
    assert ckpt.G.config == ckpt.config and ckpt.D.config == ckpt.d_config
    _assert_exact(ckpt.G.state_dict(), _no_filters(ref["G_ema"]))
    _assert_exact(ckpt.D.state_dict(), _no_filters(ref["D"]))
    other = load(GOLDEN / "nvlabs_g64.pt")
    assert ckpt.fingerprint == other.fingerprint and ckpt.fingerprint.startswith("g2:")
    assert ckpt.fingerprint is ckpt.fingerprint  # computed once, cached


def test_load_without_d_and_keeps_callers_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ckpt = load(GOLDEN / "nvlabs_g64.pt", with_d=False)
    assert torch.equal(torch.rand(3), expected)  # building modules did not consume the global RNG
    assert ckpt.D is None and ckpt.d_config is None


# ---- rosinality -----------------------------------------------------------------------------------
def test_rosinality_converts_to_the_nvlabs_key_set():
    ros, nv = _golden("rosinality_g64.pt"), _golden("nvlabs_g64.pt")
    st = read_states(GOLDEN / "rosinality_g64.pt")
    assert st.format == "rosinality"
    assert set(st.g_state) == set(_no_filters(nv["G_ema"]))
    assert set(st.d_state) == set(_no_filters(nv["D"]))
    assert st.config == GeneratorConfig(z_dim=64, w_dim=64, img_resolution=64, channels=ROS_CHANNELS,
                                        mapping_layers=2, conv_clamp=None, variant="rosinality")
    assert st.d_config == DiscriminatorConfig(img_resolution=64, channels=ROS_CHANNELS, conv_clamp=None)
    assert {k: tuple(v.shape) for k, v in st.g_state.items()} == generator_shapes(st.config)
    assert {k: tuple(v.shape) for k, v in st.d_state.items()} == discriminator_shapes(st.d_config)
    g, d = ros["g_ema"], ros["d"]
    s = st.g_state
    # one check per row of the README's mapping table, values exact
    assert torch.equal(s["mapping.fc1.weight"], g["style.2.weight"])
    assert torch.equal(s["mapping.w_avg"], ros["latent_avg"])
    assert torch.equal(s["synthesis.b4.const"], g["input.input"][0])
    assert torch.equal(s["synthesis.b4.conv1.weight"], g["conv1.conv.weight"][0])
    assert torch.equal(s["synthesis.b4.torgb.bias"], g["to_rgb1.bias"].reshape(3))
    assert torch.equal(s["synthesis.b64.conv0.weight"], g["convs.6.conv.weight"][0])
    assert torch.equal(s["synthesis.b64.conv1.affine.weight"], g["convs.7.conv.modulation.weight"])
    assert torch.equal(s["synthesis.b64.conv1.bias"], g["convs.7.activate.bias"])
    assert s["synthesis.b64.conv1.noise_strength"].shape == ()
    assert s["synthesis.b64.conv1.noise_strength"] == g["convs.7.noise.weight"][0]
    assert torch.equal(s["synthesis.b32.torgb.weight"], g["to_rgbs.2.conv.weight"][0])
    for i, layer in [(0, "b4.conv1"), (1, "b8.conv0"), (2, "b8.conv1"), (7, "b64.conv0"), (8, "b64.conv1")]:
        assert torch.equal(s[f"synthesis.{layer}.noise_const"], g[f"noises.noise_{i}"][0, 0]), i
    assert torch.equal(st.d_state["b64.fromrgb.weight"], d["convs.0.0.weight"])
    assert torch.equal(st.d_state["b64.conv0.weight"], d["convs.1.conv1.0.weight"])
    assert torch.equal(st.d_state["b32.conv1.bias"], d["convs.2.conv2.2.bias"])
    assert torch.equal(st.d_state["b8.skip.weight"], d["convs.4.skip.1.weight"])
    assert torch.equal(st.d_state["b4.conv.weight"], d["final_conv.0.weight"])
    assert torch.equal(st.d_state["b4.out.bias"], d["final_linear.1.bias"])
    # g_ema, not the perturbed training g
    assert not torch.equal(s["synthesis.b4.const"], ros["g"]["input.input"][0])


def test_rosinality_load_builds_modules():
    st = read_states(GOLDEN / "rosinality_g64.pt")
    ckpt = load(GOLDEN / "rosinality_g64.pt")
    assert ckpt.format == "rosinality" and ckpt.config.variant == "rosinality"
    _assert_exact(ckpt.G.state_dict(), st.g_state)
    _assert_exact(ckpt.D.state_dict(), st.d_state)
    assert ckpt.extra["w_avg_source"] == "latent_avg"


def test_rosinality_training_checkpoint_with_args_and_no_latent_avg(tmp_path):
    ros = _golden("rosinality_g64.pt")
    args = argparse.Namespace(size=64, latent=64, n_mlp=2, channel_multiplier=1, lr=0.002)
    train = {"g": ros["g"], "d": ros["d"], "g_ema": ros["g_ema"], "g_optim": {"state": {}, "param_groups": []},
             "d_optim": {"state": {}, "param_groups": []}, "args": args, "ada_aug_p": 0.25}
    path = tmp_path / "000100.pt"
    torch.save(train, path)
    with pytest.raises(Exception):  # what the loader must get around: plain weights_only refuses Namespace
        torch.load(path, weights_only=True)
    ckpt = load(path)
    assert ckpt.extra["args"] == vars(args)
    assert ckpt.extra["ada_aug_p"] == 0.25
    assert ckpt.extra["w_avg_source"] == "mean of 4096 z, seed 0"
    w_avg = ckpt.G.mapping.w_avg
    assert torch.equal(w_avg, ckpt.G.mean_latent(4096, seed=0))
    # the golden latent_avg is the mean over other random z: close, not equal (std of the mean ~0.02)
    torch.testing.assert_close(w_avg, ros["latent_avg"], rtol=0, atol=0.15)
    assert load(path).fingerprint == ckpt.fingerprint  # deterministic


def test_rosinality_latent_avg_1_by_w_is_accepted(tmp_path):
    ros = _golden("rosinality_g64.pt")
    path = tmp_path / "ckpt.pt"
    torch.save({"g_ema": ros["g_ema"], "latent_avg": ros["latent_avg"][None]}, path)
    st = read_states(path)
    assert torch.equal(st.g_state["mapping.w_avg"], ros["latent_avg"])
    assert st.d_state is None and st.d_config is None


def test_legacy_torch_serialization_is_read(tmp_path):
    ros = _golden("rosinality_g64.pt")
    path = tmp_path / "old.pt"
    torch.save(ros, path, _use_new_zipfile_serialization=False)  # pre-1.6 torch.save format
    assert sniff(path) == "torch-legacy"
    _assert_exact(read_states(path).g_state, read_states(GOLDEN / "rosinality_g64.pt").g_state)


def test_detection_ignores_the_extension(tmp_path):
    for src, fmt in [("nvlabs_g64_network_snapshot.pkl", "nvlabs-pkl"), ("rosinality_g64.pt", "rosinality")]:
        renamed = tmp_path / ("model.weird" if fmt == "rosinality" else "network.pt")
        renamed.write_bytes((GOLDEN / src).read_bytes())
        assert read_states(renamed).format == fmt


# ---- FFHQ-1024 shape tables (no weights: meta tensors) ---------------------------------------------
def _meta_state(shapes):
    return {k: (RESAMPLE_FILTER * (4 if k.endswith(("blur.kernel", "upsample.kernel")) else 1)
                if k.endswith(("resample_filter", "kernel")) else torch.empty(s, device="meta"))
            for k, s in shapes.items()}


def test_ffhq1024_nvlabs_config_from_shapes():
    table = json.loads((GOLDEN / "nvlabs_ffhq1024_shapes.json").read_text())
    kw = table["config"]
    st = nvlabs_states(_meta_state(table["G"]), kw["G"], _meta_state(table["D"]), kw["D"], Path("ffhq.pkl"), "nvlabs-pkl")
    assert st.config == ffhq1024_config("nvlabs")
    assert st.d_config == DiscriminatorConfig(img_resolution=1024, channels=channel_table(1024, 32768, 512),
                                              mbstd_group_size=4, conv_clamp=256)
    assert st.config.stylespace_dim == table["stylespace"]["total_dim_incl_torgb"]


def test_ffhq1024_rosinality_config_from_shapes():
    table = json.loads((GOLDEN / "rosinality_ffhq1024_shapes.json").read_text())
    g = _meta_state(table["G"])
    state, config = convert_generator(g, torch.empty(512, device="meta"), Path("550000.pt"))
    assert config == ffhq1024_config("rosinality")
    assert set(state) == set(generator_shapes(config))
    d_state, d_config = convert_discriminator(_meta_state(table["D"]), Path("550000.pt"))
    assert d_config == DiscriminatorConfig(img_resolution=1024, channels=channel_table(1024, 32768, 512))
    assert set(d_state) == set(discriminator_shapes(d_config))
