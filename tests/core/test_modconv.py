"""Every modulated-conv form equals the reference (the spec) over a sweep of options and domain terms."""

import itertools

import pytest
import torch

from gandapt.modconv import FORMS, demod_coefficients, modulated_conv2d
from gandapt.resample import setup_filter

TERMS = ("none", "in_scale", "out_scale", "rank1", "weight_delta", "all")


def _inputs(n, i, o, k, h, term, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    kw = {}
    if term in ("in_scale", "all"):
        kw["in_scale"] = 1 + 0.3 * r(n, i)
    if term in ("out_scale", "all"):
        kw["out_scale"] = 1 + 0.3 * r(n, o)
    if term in ("rank1", "all"):
        kw.update(r1_out=0.5 * r(n, o), r1_in=r(n, i), r1_k=r(n, k, k))
    if term in ("weight_delta", "all") and k == 1:
        kw["weight_delta"] = 0.2 * r(n, o, i, k, k)
    return r(n, i, h, h), r(o, i, k, k), 1 + 0.5 * r(n, i), kw


CASES = [
    (n, k, up, demod, term)
    for n, k, up, demod, term in itertools.product((1, 3), (3, 1), (False, True), (True, False), TERMS)
    if not (k == 1 and up)  # ToRGB (1×1) never upsamples
    and not (term == "weight_delta" and k != 1)
]


@pytest.mark.parametrize("n,k,up,demod,term", CASES)
@pytest.mark.parametrize("form", [f for f in FORMS if f != "reference"])
def test_form_matches_reference(form, n, k, up, demod, term):
    x, w, s, kw = _inputs(n, 5, 4, k, 6, term)
    f = setup_filter()
    ref = modulated_conv2d(x, w, s, demodulate=demod, up=up, resample_filter=f, form="reference", **kw)
    out = modulated_conv2d(x, w, s, demodulate=demod, up=up, resample_filter=f, form=form, **kw)
    assert out.shape == (n, 4, 12 if up else 6, 12 if up else 6)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_reference_is_the_literal_equation():
    """Pin the reference itself: one sample, kernel built by hand from the layer equation."""
    x, w, s, kw = _inputs(1, 3, 2, 3, 5, "all", seed=1)
    kernel = (w + kw["r1_out"][0, :, None, None, None] * kw["r1_in"][0, None, :, None, None]
              * kw["r1_k"][0]) * s[0, None, :, None, None]
    d = (kernel.square().sum(dim=[1, 2, 3]) + 1e-8).rsqrt()
    kernel = kernel * d[:, None, None, None] * kw["in_scale"][0, None, :, None, None] * kw["out_scale"][0, :, None, None, None]
    expected = torch.nn.functional.conv2d(x, kernel, padding=1)
    out = modulated_conv2d(x, w, s, form="reference", **kw)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


def test_mixed_domains_in_one_batch():
    """Per-sample terms: each row of a mixed batch equals that sample run alone."""
    x, w, s, kw = _inputs(3, 5, 4, 3, 6, "all", seed=2)
    f = setup_filter()
    for form in FORMS:
        batch = modulated_conv2d(x, w, s, up=True, resample_filter=f, form=form, **kw)
        for i in range(3):
            one = modulated_conv2d(x[i:i + 1], w, s[i:i + 1], up=True, resample_filter=f, form=form,
                                   **{key: v[i:i + 1] for key, v in kw.items()})
            torch.testing.assert_close(batch[i:i + 1], one, rtol=1e-5, atol=1e-5)


def test_demod_coefficients_closed_form():
    """The closed-form demodulation (no per-sample kernels) equals summing the built kernels."""
    _, w, s, kw = _inputs(4, 6, 5, 3, 4, "rank1", seed=3)
    k = (w + kw["r1_out"][:, :, None, None, None] * kw["r1_in"][:, None, :, None, None]
         * kw["r1_k"][:, None, None]) * s[:, None, :, None, None]
    expected = (k.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    torch.testing.assert_close(demod_coefficients(w, s, **kw), expected, rtol=1e-5, atol=1e-6)


def test_zero_rank1_is_bit_exact_identity():
    x, w, s, _ = _inputs(2, 5, 4, 3, 6, "none")
    z = dict(r1_out=torch.zeros(2, 4), r1_in=torch.zeros(2, 5), r1_k=torch.zeros(2, 3, 3),
             in_scale=torch.ones(2, 5), out_scale=torch.ones(2, 4))
    f = setup_filter()
    for up in (False, True):
        plain = modulated_conv2d(x, w, s, up=up, resample_filter=f)
        ident = modulated_conv2d(x, w, s, up=up, resample_filter=f, **z)
        assert torch.equal(plain, ident)


def test_bad_arguments():
    x, w, s, kw = _inputs(1, 5, 4, 3, 6, "rank1")
    with pytest.raises(ValueError, match="together"):
        modulated_conv2d(x, w, s, r1_out=kw["r1_out"])
    with pytest.raises(ValueError, match="resample_filter"):
        modulated_conv2d(x, w, s, up=True)
    with pytest.raises(ValueError, match="unknown modconv form"):
        modulated_conv2d(x, w, s, form="fast")
    with pytest.raises(ValueError, match="1x1"):
        modulated_conv2d(x, w, s, weight_delta=torch.zeros(1, 4, 5, 3, 3))
