"""The fused Triton kernel (interpreter mode, CPU) against the PyTorch reference over shapes and options."""

from __future__ import annotations

import math
import os

import pytest
import torch

from gandapt.errors import GandaptError
from gandapt.plugins_trt.modulated_conv.spec import Attributes

pytest.importorskip("triton")
from gandapt.plugins_trt.modulated_conv.ops import fused_modconv, reference_modconv  # noqa: E402


def node_inputs(n: int, i: int, o: int, h: int, w: int, up: int, rows: int, dtype=torch.float32, seed: int = 0):
    """Random node inputs; per-sample domain inputs have ``rows`` rows (1 = broadcast)."""
    g = torch.Generator().manual_seed(seed)
    f = 2 if up else 1

    def r(*shape, scale=1.0, offset=0.0):
        return (torch.randn(*shape, generator=g) * scale + offset).to(dtype)

    return [r(n, i, h, w), r(o, i, 3, 3, scale=1 / 3), r(n, i, scale=0.5, offset=1.0), r(rows, i, scale=0.2, offset=1.0),
            r(rows, o, scale=0.2, offset=1.0), r(rows, o, scale=0.3), r(rows, i), r(rows, 3, 3),
            r(rows, 1, h * f, w * f, scale=0.1), r(o, scale=0.1)]


# (n, i, o, h, w, rows, attrs): every flag of the kernel, ragged channel counts over the 32-wide
# blocks, several pixel blocks (h·w > 64), non-square images, broadcast and per-sample domain rows.
CASES = [
    (2, 20, 40, 5, 6, 2, Attributes(up=0, rank1=0, clamp=1.5)),
    (2, 20, 40, 5, 6, 1, Attributes(up=0, rank1=1)),
    (1, 40, 8, 9, 8, 1, Attributes(up=0, rank1=1, demodulate=0, activation="linear", gain=1.0)),
    (2, 8, 12, 4, 3, 2, Attributes(up=1, rank1=0)),
    (2, 8, 12, 4, 3, 2, Attributes(up=1, rank1=1, clamp=0.8)),
    (1, 36, 5, 3, 4, 1, Attributes(up=1, rank1=1, demodulate=0, activation="linear", gain=0.5)),
]


@pytest.mark.parametrize("n,i,o,h,w,rows,attrs", CASES)
def test_kernel_matches_reference_fp32(n, i, o, h, w, rows, attrs) -> None:
    ins = node_inputs(n, i, o, h, w, attrs.up, rows)
    got = fused_modconv(*ins, attrs=attrs)
    want = reference_modconv(*ins, attrs=attrs)
    assert got.shape == want.shape == (n, o, h * (1 + attrs.up), w * (1 + attrs.up))
    assert (got - want).abs().max().item() < 2e-5 * max(1.0, want.abs().max().item())
    if attrs.clamp >= 0:
        assert got.abs().max().item() <= attrs.clamp + 1e-6


def test_rank1_and_scales_matter() -> None:
    """The rank-1 and scale inputs change the output (a kernel ignoring them would fail here)."""
    attrs = Attributes(up=1, rank1=1)
    ins = node_inputs(2, 8, 12, 3, 3, 1, 2)
    base = fused_modconv(*ins, attrs=attrs)
    for idx in (3, 4, 5, 6, 7, 8):  # in_scale, out_scale, r1_out, r1_in, r1_k, noise
        changed = list(ins)
        changed[idx] = ins[idx] * 1.5 + 0.1
        want = reference_modconv(*changed, attrs=attrs)
        got = fused_modconv(*changed, attrs=attrs)
        assert (got - want).abs().max() < 2e-5 * max(1.0, want.abs().max().item())
        assert (got - base).abs().max() > 1e-3


def test_kernel_fp16() -> None:
    attrs = Attributes(up=1, rank1=1)
    ins = node_inputs(2, 16, 16, 4, 4, 1, 2, dtype=torch.float16)
    got = fused_modconv(*ins, attrs=attrs)
    want = reference_modconv(*[t.float() for t in ins], attrs=attrs)
    assert got.dtype == torch.float16
    assert (got.float() - want).abs().max().item() < 1e-2 * max(1.0, want.abs().max().item())


def test_matches_the_synthesis_layer() -> None:
    """The node's semantics equal gandapt.synthesis.SynthesisLayer (argument meaning, gain, noise, clamp)."""
    from gandapt.config import GeneratorConfig
    from gandapt.generator import Generator
    from gandapt.layout import full_layout

    cfg = GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, channels=(16, 8), mapping_layers=1, conv_clamp=0.5)
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    layer = G.synthesis.b8.conv0  # the up-sampling conv
    layer.noise_strength.data.fill_(0.3)
    layout = full_layout(cfg)
    G.synthesis.set_domain_stages(layout.stages)
    domain = torch.from_numpy(layout.identity(2)) + 0.1 * torch.randn(2, layout.size)
    x, w = torch.randn(2, 16, 4, 4), torch.randn(2, 8)
    with torch.no_grad():
        want = layer(x, w, domain)
        layer.modconv_form = "plugin"  # eager: the node computed by its PyTorch reference
        eager = layer(x, w, domain)
    assert (eager - want).abs().max() < 1e-5
    # The same inputs through the Triton kernel, assembled as the plugin form assembles them.
    from gandapt.plugins_trt.modulated_conv import onnx_node

    captured = {}
    real = onnx_node.reference_modconv
    onnx_node.reference_modconv = lambda *a, **k: captured.setdefault("args", (a, k)) and real(*a, **k)
    try:
        with torch.no_grad():
            layer(x, w, domain)
    finally:
        onnx_node.reference_modconv = real
    args, kw = captured["args"]
    assert kw["attrs"] == Attributes(up=1, rank1=1, clamp=0.5, gain=math.sqrt(2.0))
    assert (fused_modconv(*args, attrs=kw["attrs"]) - want).abs().max() < 2e-5


@pytest.mark.parametrize("change,message", [
    (lambda t: t.__setitem__(1, t[1][:, :, :2, :2]), r"weight must be \[O, 20, 3, 3\]"),
    (lambda t: t.__setitem__(3, t[3][:, :5]), r"in_scale has shape \[2, 5\]"),
    (lambda t: t.__setitem__(8, t[8][..., :3]), "input noise has shape"),
    (lambda t: t.__setitem__(2, t[2].double()), "all inputs in one dtype"),
])
def test_bad_inputs_are_refused(change, message) -> None:
    ins = node_inputs(2, 20, 8, 4, 4, 0, 2)
    change(ins)
    with pytest.raises(GandaptError, match=message):
        fused_modconv(*ins, attrs=Attributes())


def test_interpreter_mode_is_on() -> None:
    assert os.environ.get("TRITON_INTERPRET") == "1"
