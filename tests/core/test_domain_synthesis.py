"""The synthesis network applies a flat domain vector exactly as the layer equation says."""

import copy

import numpy as np
import pytest
import torch

from gandapt.config import GeneratorConfig
from gandapt.errors import DomainError
from gandapt.generator import Generator
from gandapt.layout import STAGES

FORMS = ("decomposed", "grouped", "reference")


def tiny_generator(variant="nvlabs", seed=0):
    torch.manual_seed(seed)
    cfg = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=16, channels=(16, 12, 8), mapping_layers=2,
                          conv_clamp=256 if variant == "nvlabs" else None, variant=variant)
    G = Generator(cfg).eval()
    with torch.no_grad():  # non-zero biases and noise so a missed term shows
        for name, p in G.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                p.add_(0.1 * torch.randn_like(p))
        G.mapping.w_avg.normal_()
    return G


def random_entries(layout, names, seed=0, scale=0.2):
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        e = layout.entry(name)
        out[name] = (e.identity + scale * rng.standard_normal(e.shape)).astype(np.float32)
    return out


def vec(layout, entries, n=1):
    return torch.from_numpy(np.repeat(layout.to_vector(entries)[None], n, axis=0))


@pytest.mark.parametrize("variant", ["nvlabs", "rosinality"])
@pytest.mark.parametrize("form", FORMS)
def test_identity_vector_runs_full_path_and_matches_plain(form, variant):
    G = tiny_generator(variant)
    G.synthesis.set_modconv_form(form)
    ws = G.mapping(torch.randn(3, 16))
    with torch.no_grad():
        plain = G.synthesis(ws)
        ident = G.synthesis(ws, domain=torch.from_numpy(G.layout.identity(3)))
    assert (plain - ident).abs().max().item() <= 1e-6
    if form != "reference":  # identity terms add exact zeros / multiply exact ones
        assert torch.equal(plain, ident)


def _with_param_change(G, fn):
    G2 = copy.deepcopy(G)
    with torch.no_grad():
        fn(G2)
    return G2


@pytest.mark.parametrize("variant", ["nvlabs", "rosinality"])
def test_stage_terms_equal_their_weight_space_meaning(variant):
    """A domain applied to every sample equals editing the frozen generator's parameters."""
    G = tiny_generator(variant)
    L = G.layout
    ws = G.mapping(torch.randn(2, 16))
    conv, rgb = "b8.conv0", "b8.torgb"
    t = random_entries(L, [f"s_shift.{conv}", f"r1_out.{conv}", f"r1_in.{conv}", f"r1_k.{conv}",
                           f"rgb_dW.{rgb}", f"rgb_db.{rgb}", "w_shift", "w_scale"])

    def edit(G2):
        layer = G2.synthesis.b8.conv0
        # s' = affine(w) + shift  ≡  affine bias + shift (bias_gain is 1 for the affines)
        layer.affine.bias += torch.from_numpy(t[f"s_shift.{conv}"])
        u, v, k = (torch.from_numpy(t[f"r1_{x}.{conv}"]) for x in ("out", "in", "k"))
        layer.weight += u[:, None, None, None] * v[None, :, None, None] * k[None, None]
        torgb = G2.synthesis.b8.torgb
        torgb.weight += torch.from_numpy(t[f"rgb_dW.{rgb}"])[:, :, None, None]
        torgb.bias += torch.from_numpy(t[f"rgb_db.{rgb}"])

    G2 = _with_param_change(G, edit)
    ws2 = ws * torch.from_numpy(t["w_scale"]) + torch.from_numpy(t["w_shift"])
    for form in FORMS:
        G.synthesis.set_modconv_form(form)
        G2.synthesis.set_modconv_form(form)
        with torch.no_grad():
            out = G.synthesis(ws, domain=vec(L, t, 2))
            expected = G2.synthesis(ws2)
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
        assert (out - G.synthesis(ws)).abs().max() > 1e-2  # the domain did something


def test_post_demod_scales_are_not_normalised_away():
    """in_scale/out_scale act after demodulation: a uniform out_scale of 2 doubles the conv output."""
    G = tiny_generator()
    L = G.layout
    ws = G.mapping(torch.randn(2, 16))
    conv = G.synthesis.b4.conv1
    captured = {}
    conv.register_forward_hook(lambda m, i, o: captured.__setitem__("y", o))
    with torch.no_grad():
        G.synthesis(ws, noise_mode="none")
        base = captured["y"]
        d = {"out_scale.b4.conv1": np.full(L.entry("out_scale.b4.conv1").shape, 2.0, np.float32)}
        G.synthesis(ws, domain=vec(L, d), noise_mode="none")
    # lrelu is positively homogeneous; the bias is added after the scale, so remove it first
    b = conv.bias[None, :, None, None]
    pre_base = torch.where(base >= 0, base, base / 0.2) / 2**0.5 - b
    pre = torch.where(captured["y"] >= 0, captured["y"], captured["y"] / 0.2) / 2**0.5 - b
    torch.testing.assert_close(pre, 2 * pre_base, rtol=1e-4, atol=1e-4)


def test_mixed_domains_in_one_batch_and_broadcast():
    G = tiny_generator()
    L = G.layout
    names = [n for n in L.names if not n.startswith("w_")][:40] + ["w_shift"]
    a, b = random_entries(L, names, seed=1), random_entries(L, names, seed=2)
    ws = G.mapping(torch.randn(2, 16))
    dom = torch.from_numpy(np.stack([L.to_vector(a), L.to_vector(b)]))
    with torch.no_grad():
        mixed = G.synthesis(ws, domain=dom)
        only_a = G.synthesis(ws, domain=dom[:1])  # [1, D] broadcasts over the batch
        only_b = G.synthesis(ws, domain=dom[1:])
    torch.testing.assert_close(mixed[0], only_a[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixed[1], only_b[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stages", [("in",), ("s",), ("w", "rank1", "out"), ("rgb",)])
def test_stage_subset_graph_matches_full_layout(stages):
    G = tiny_generator()
    full = G.layout
    sub = full.subset(stages)
    names = [e.name for e in sub.entries]
    t = random_entries(full, names, seed=3)
    ws = G.mapping(torch.randn(2, 16))
    with torch.no_grad():
        out_full = G.synthesis(ws, domain=vec(full, t))
        G.synthesis.set_domain_stages(stages)
        out_sub = G.synthesis(ws, domain=vec(sub, t))
    assert G.layout.size == sub.size < full.size
    torch.testing.assert_close(out_sub, out_full, rtol=0, atol=0)


def test_wrong_domain_length_is_a_clear_error():
    G = tiny_generator()
    ws = G.mapping(torch.randn(2, 16))
    with pytest.raises(DomainError, match=f"needs \\[N, {G.layout.size}\\]") as e:
        G.synthesis(ws, domain=torch.zeros(2, G.layout.size + 1))
    assert "\n" not in str(e.value)
    with pytest.raises(DomainError, match="rows"):
        G.synthesis(ws, domain=torch.from_numpy(G.layout.identity(3)))
    with pytest.raises(DomainError, match="ws has shape"):
        G.synthesis(ws[:, :3])


def test_generator_api_and_truncation_tensor():
    G = tiny_generator()
    z = torch.randn(3, 16)
    with torch.no_grad():
        img = G(z, truncation_psi=0.5, noise_mode="const")
        ws_f = G.mapping(z, truncation_psi=0.5)
        ws_t = G.mapping(z, truncation_psi=torch.tensor(0.5))
        ws_n = G.mapping(z, truncation_psi=torch.tensor([0.5, 0.5, 0.5]), truncation_cutoff=2)
    assert img.shape == (3, 3, 16, 16)
    torch.testing.assert_close(ws_f, ws_t)
    torch.testing.assert_close(ws_n[:, :2], ws_f[:, :2])
    torch.testing.assert_close(ws_n[:, 2:], G.mapping(z)[:, 2:])
    assert G(z, noise_mode="random").shape == img.shape
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="fancy")


def test_all_stages_are_wired():
    """Every entry of the full layout reaches the output (a dropped slice would go unnoticed)."""
    G = tiny_generator()
    L = G.layout
    ws = G.mapping(torch.randn(1, 16))
    with torch.no_grad():
        base = G.synthesis(ws, noise_mode="none")
        for stage in STAGES:
            for e in (e for e in L.entries if e.stage == stage):
                # random, not uniform: demodulation cancels a uniform s_scale, as it should
                names = [e.name]
                if e.kind.startswith("r1_"):  # a rank-1 term needs all three factors non-zero
                    names = [f"r1_{x}.{e.layer}" for x in ("out", "in", "k")]
                t = random_entries(L, names, seed=len(e.name), scale=0.5)
                out = G.synthesis(ws, domain=vec(L, t), noise_mode="none")
                assert (out - base).abs().max() > 1e-6, e.name
