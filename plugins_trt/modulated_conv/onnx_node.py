"""Emit the ``gandapt::ModulatedConv2d`` node from PyTorch (the exporter's plugin form).

Inside ``torch.onnx.export(..., dynamo=True)`` the layer becomes one node in domain ``gandapt`` via
``torch.onnx.ops.symbolic`` (PyTorch ≥ 2.8) with the TensorRT ONNX parser's plugin fields
(``plugin_namespace``, ``plugin_version``, ``aot``); in eager mode the same call computes the node
with the PyTorch decomposed form, so the module stays runnable and testable.
"""

from __future__ import annotations

import torch

from gandapt.plugins_trt.modulated_conv.ops import reference_modconv
from gandapt.plugins_trt.modulated_conv.spec import PLUGIN_ID, Attributes


def modulated_conv2d_node(
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
    aot: bool = True,
) -> torch.Tensor:
    """The fused layer as one ONNX node when exporting, else computed eagerly (decomposed form).

    Args:
        x ... bias: the node's inputs in :data:`.spec.INPUT_NAMES` order.
        attrs: the node's attributes.
        aot: mark the node for TensorRT's ahead-of-time implementation (``aot=1``: the Triton kernel is
            compiled into the engine, which then runs without Python).

    Returns:
        y [N, O, HO, WO].
    """
    inputs = (x, weight, styles, in_scale, out_scale, r1_out, r1_in, r1_k, noise, bias)
    if torch.onnx.is_in_onnx_export():
        f = 2 if attrs.up else 1
        shape = (x.shape[0], weight.shape[0], x.shape[2] * f, x.shape[3] * f)
        return torch.onnx.ops.symbolic(PLUGIN_ID, inputs, attrs=attrs.onnx(aot=aot), dtype=x.dtype, shape=shape,
                                       version=1)
    return reference_modconv(*inputs, attrs=attrs, form="decomposed")
