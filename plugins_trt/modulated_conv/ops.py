"""The ``gandapt::ModulatedConv2d`` operation in PyTorch: the Triton launcher and the reference.

* :func:`fused_modconv` launches the Triton kernel (:mod:`.kernel`) on CUDA tensors, or on CPU tensors
  when ``TRITON_INTERPRET=1`` was set before the kernel module was imported (the tests).
* :func:`reference_modconv` is the same node computed with :func:`gandapt.modconv.modulated_conv2d`
  (any form) followed by noise and :func:`gandapt.layers.bias_act` — exactly what
  :class:`gandapt.synthesis.SynthesisLayer` does; the tests, the onnxruntime CPU op and the benchmark
  compare against it.

Both take the node's inputs in :data:`.spec.INPUT_NAMES` order and its :class:`.spec.Attributes`.
"""

from __future__ import annotations

from typing import Optional

import torch

from gandapt.errors import GandaptError
from gandapt.layers import bias_act
from gandapt.modconv import modulated_conv2d
from gandapt.plugins_trt.modulated_conv.spec import INPUT_NAMES, PLUGIN_ID, Attributes, check_dtypes, check_shapes
from gandapt.resample import setup_filter

def _check(tensors, attrs: Attributes):
    shapes = {k: tuple(t.shape) for k, t in zip(INPUT_NAMES, tensors)}
    dtypes = {k: str(t.dtype).replace("torch.", "") for k, t in zip(INPUT_NAMES, tensors)}
    check_dtypes(dtypes)
    return check_shapes(shapes, attrs)


def fused_modconv(
    x: torch.Tensor,          # [N, I, H, W]
    weight: torch.Tensor,     # [O, I, 3, 3]
    styles: torch.Tensor,     # [N, I]
    in_scale: torch.Tensor,   # [N|1, I]
    out_scale: torch.Tensor,  # [N|1, O]
    r1_out: torch.Tensor,     # [N|1, O]
    r1_in: torch.Tensor,      # [N|1, I]
    r1_k: torch.Tensor,       # [N|1, 3, 3]
    noise: torch.Tensor,      # [N|1, 1, HO, WO]
    bias: torch.Tensor,       # [O]
    attrs: Attributes = Attributes(),
    out: Optional[torch.Tensor] = None,  # [N, O, HO, WO] to write into (the TensorRT output buffer)
) -> torch.Tensor:
    """Run the fused Triton kernel on the node's inputs.

    Returns:
        y [N, O, HO, WO] in the inputs' dtype (HO = 2H when ``attrs.up``).

    Raises:
        GandaptError: shapes, dtypes or devices the kernel does not support.
    """
    from gandapt.plugins_trt.modulated_conv.kernel import (BLOCK_O, BLOCK_P, NUM_STAGES, NUM_WARPS, kernel_constexprs,
                                                            modconv_kernel)

    tensors = [x, weight, styles, in_scale, out_scale, r1_out, r1_in, r1_k, noise, bias]
    shape = _check(tensors, attrs)
    if len({t.device for t in tensors}) != 1:
        raise GandaptError(f"{PLUGIN_ID} inputs are on several devices; move them to one")
    tensors = [t.contiguous() for t in tensors]
    if out is None:
        out = torch.empty(shape, dtype=x.dtype, device=x.device)
    elif tuple(out.shape) != shape or out.dtype != x.dtype or not out.is_contiguous():
        raise GandaptError(f"{PLUGIN_ID} output buffer must be a contiguous {x.dtype} tensor {list(shape)}")
    n, i, h, w = x.shape
    grid = (n * triton_cdiv(h * w, BLOCK_P), triton_cdiv(weight.shape[0], BLOCK_O))
    rows = [int(t.shape[0]) for t in (styles, in_scale, out_scale, r1_out, r1_in, r1_k, noise)]
    modconv_kernel[grid](*tensors, n, i, weight.shape[0], h, w, *rows, out, num_warps=NUM_WARPS,
                         num_stages=NUM_STAGES, **kernel_constexprs(attrs, str(x.dtype).replace("torch.", "")))
    return out


def triton_cdiv(a: int, b: int) -> int:
    """Ceiling division."""
    return -(-a // b)


def reference_modconv(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    in_scale: torch.Tensor,
    out_scale: torch.Tensor,
    r1_out: torch.Tensor,
    r1_in: torch.Tensor,
    r1_k: torch.Tensor,
    noise: torch.Tensor,
    bias: torch.Tensor,
    attrs: Attributes = Attributes(),
    form: str = "reference",
) -> torch.Tensor:
    """The node computed with the PyTorch modulated conv (``form``) + noise + bias_act (same args as
    :func:`fused_modconv`); broadcast rows are expanded to the batch.

    Returns:
        y [N, O, HO, WO].
    """
    _check([x, weight, styles, in_scale, out_scale, r1_out, r1_in, r1_k, noise, bias], attrs)
    n = x.shape[0]

    def rows(t: torch.Tensor) -> torch.Tensor:
        return t.expand(n, *t.shape[1:])

    rank1 = dict(r1_out=rows(r1_out), r1_in=rows(r1_in), r1_k=rows(r1_k)) if attrs.rank1 else {}
    y = modulated_conv2d(
        x, weight, styles, demodulate=bool(attrs.demodulate), up=bool(attrs.up),
        resample_filter=setup_filter().to(x.device, x.dtype), in_scale=rows(in_scale), out_scale=rows(out_scale),
        form=form, **rank1,
    )
    y = y + noise
    clamp = attrs.clamp if attrs.clamp >= 0 else None
    return bias_act(y, bias, lrelu=attrs.activation == "lrelu", gain=attrs.gain, clamp=clamp)
