"""Reproduce every output of the two reference StyleGAN2 implementations (../shared/golden).

Tolerance: the golden README's ``rtol=1e-4, atol=1e-4`` (``atol=1e-3`` for the clamp test).
"""

import os
from pathlib import Path

import pytest
import torch

import gandapt

GOLDEN = Path(os.environ.get("GANDAPT_GOLDEN", Path(__file__).resolve().parents[2].parent / "shared" / "golden"))
pytestmark = pytest.mark.skipif(not (GOLDEN / "README.md").exists(),
                                reason=f"golden vectors not found at {GOLDEN} (set GANDAPT_GOLDEN)")
TOL = dict(rtol=1e-4, atol=1e-4)


def close(actual, expected, **tol):
    torch.testing.assert_close(actual, expected, **(tol or TOL))


def _run_with_taps(G, fn):
    """Run ``fn`` while recording raw affine styles and per-layer activations (sample 0), forward order."""
    styles, acts, hooks = [], [], []
    for layer in G.synthesis.layers:
        hooks.append(layer.affine.register_forward_hook(lambda m, i, o: styles.append(o.detach().clone())))
        if layer.spec.is_torgb:  # the running RGB image is the block's second output
            block = G.synthesis.get_submodule(layer.spec.name.split(".")[0])
            hooks.append(block.register_forward_hook(lambda m, i, o: acts.append(o[1][0].detach().clone())))
        else:
            hooks.append(layer.register_forward_hook(lambda m, i, o: acts.append(o[0].detach().clone())))
    try:
        out = fn()
    finally:
        for h in hooks:
            h.remove()
    return out, styles, acts


@pytest.fixture(scope="module", params=["rosinality", "nvlabs"])
def golden(request):
    name = request.param
    ckpt = gandapt.load(GOLDEN / f"{name}_g64.pt")
    io = torch.load(GOLDEN / f"{name}_g64_io.pt", weights_only=True)
    return name, ckpt, io["inputs"], io["outputs"], io["config"]


@pytest.fixture(params=["decomposed", "grouped", "reference"])
def form(request):
    return request.param


@torch.no_grad()
def test_config_from_shapes(golden):
    name, ckpt, _, _, cfg = golden
    assert ckpt.config.channel_dict == cfg["channels"]
    assert ckpt.config.num_ws == cfg.get("n_latent", cfg.get("num_ws"))
    assert ckpt.config.stylespace_dim == cfg["stylespace_total_dim"]
    assert ckpt.config.conv_in_dim == cfg["stylespace_conv_in_channels_excl_torgb"]
    assert ckpt.config.variant == name
    assert ckpt.D is not None


@torch.no_grad()
def test_images(golden, form):
    name, ckpt, inp, out, _ = golden
    G = ckpt.G
    G.synthesis.set_modconv_form(form)
    try:
        num_ws = G.num_ws
        if name == "rosinality":
            close(G.mapping(inp["z"])[:, 0], out["w"])
            close(G.mapping(inp["z"]), out["latent"])
            close(G(inp["z"], truncation_psi=inp["truncation"]), out["img_trunc0.7"])
        else:
            close(G.mapping(inp["z"]), out["ws"])
            close(G.mapping(inp["z"], truncation_psi=0.7), out["ws_trunc0.7"])
            close(G.mapping(inp["z"], truncation_psi=0.7, truncation_cutoff=4), out["ws_trunc0.7_cutoff4"])
            close(G(inp["z"], truncation_psi=0.7), out["img_trunc0.7"])
            close(G(inp["z"], truncation_psi=0.7, truncation_cutoff=4), out["img_trunc0.7_cutoff4"])
            close(G.synthesis(inp["wplus"], noise_mode="none"), out["img_wplus_noise_none"])
        close(G.synthesis(inp["w"].unsqueeze(1).repeat(1, num_ws, 1)), out["img_w"])
        close(G.synthesis(inp["wplus"]), out["img_wplus"])
        img, styles, acts = _run_with_taps(G, lambda: G(inp["z"], noise_mode="const"))
        close(img, out["img"])
    finally:
        G.synthesis.set_modconv_form("decomposed")
    assert len(styles) == len(out["styles"]) == 14
    for i, (a, e) in enumerate(zip(styles, out["styles"])):
        close(a, e, **TOL), f"style {i} ({out['style_names'][i]})"
    for i, (a, e) in enumerate(zip(acts, out["acts_sample0"])):
        close(a, e, **TOL), f"activation {i} ({out['act_names'][i]})"


@torch.no_grad()
def test_clamp(golden, form):
    name, ckpt, inp, out, _ = golden
    if name != "nvlabs":
        pytest.skip("rosinality has no conv clamp")
    G = ckpt.G
    layer = G.synthesis.get_submodule("b16.conv1")
    saved = layer.noise_strength.clone()
    layer.noise_strength.fill_(inp["clamp_test_override"]["synthesis.b16.conv1.noise_strength"])
    G.synthesis.set_modconv_form(form)
    try:
        close(G.synthesis(inp["wplus"]), out["img_wplus_clamp_test"], rtol=1e-4, atol=1e-3)
    finally:
        layer.noise_strength.copy_(saved)
        G.synthesis.set_modconv_form("decomposed")


@torch.no_grad()
def test_discriminator(golden):
    _, ckpt, inp, out, _ = golden
    D = ckpt.D
    close(D(out["img"]), out["d_logits"])
    mbstd = []
    h = D.b4.mbstd.register_forward_hook(lambda m, i, o: mbstd.append(o[:, -1, 0, 0].clone()))
    try:
        close(D(inp["d_images_batch8"]), out["d_logits_batch8"])
    finally:
        h.remove()
    close(mbstd[0], out["d_mbstd_batch8"])


def test_snapshot_pickle_gives_the_state_dict_weights():
    pkl = gandapt.load(GOLDEN / "nvlabs_g64_network_snapshot.pkl")
    ref = gandapt.load(GOLDEN / "nvlabs_g64.pt")
    for mine, theirs in ((pkl.G, ref.G), (pkl.D, ref.D)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert pkl.fingerprint == ref.fingerprint
    assert pkl.config == ref.config
