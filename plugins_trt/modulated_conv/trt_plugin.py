"""TensorRT registration of ``gandapt::ModulatedConv2d`` through ``tensorrt.plugin`` (quickly deployable plugins).

Written against the documented API (TensorRT ≥ 10.9 for ``aot_impl``; NVIDIA's Python plugin guide and
the ``quickly_deployable_plugins`` sample): ``register`` (output shape/type), ``autotune`` (fp32 and
fp16, linear layout), ``impl`` (JIT: a Python callback launching the Triton kernel on TensorRT's stream
through zero-copy torch views) and ``aot_impl`` (the same kernel compiled by Triton for the build GPU;
its PTX is baked into the engine, so ``trtexec`` runs it without Python). Not run here: this machine
has neither TensorRT nor a GPU (see README.md).

No ``from __future__ import annotations`` in this module: ``tensorrt.plugin`` reads the decorated
functions' annotations as objects.
"""

import importlib.util
from typing import List, Tuple, Union

from gandapt.errors import GandaptError
from gandapt.plugins_trt.modulated_conv.spec import INPUT_NAMES, PLUGIN_ID, Attributes

NO_TRT = ("TensorRT is not installed: pip install 'gandapt[trt]' on a machine with an NVIDIA GPU "
          "(TensorRT >= 10.9 for the tensorrt.plugin ahead-of-time API)")
_registered = False


def _attrs(up, demodulate, rank1, activation, gain, clamp) -> Attributes:
    return Attributes(up=int(up), demodulate=int(demodulate), rank1=int(rank1), activation=str(activation),
                      gain=float(gain), clamp=float(clamp))


def _check_descs(trt, descs, attrs: Attributes) -> None:
    """Build-time checks of the node's inputs: one float dtype, and every constant dim in range."""
    names = {trt.float32: "float32", trt.float16: "float16"}
    dtypes = {n: names.get(d.dtype, str(d.dtype)) for n, d in zip(INPUT_NAMES, descs)}
    from gandapt.plugins_trt.modulated_conv.spec import check_dtypes, check_shapes

    check_dtypes(dtypes)
    # Only build-time constant dims can be checked here (the batch is usually dynamic): substitute 1
    # for the dynamic ones, which every per-sample input accepts.
    shapes = {}
    for name, d in zip(INPUT_NAMES, descs):
        shapes[name] = [e.constant_value() if e.is_constant else 1 for e in d.shape_expr]
    check_shapes(shapes, attrs)


def register() -> None:
    """Register the plugin's ``register``/``autotune``/``impl``/``aot_impl`` with TensorRT (once per process).

    Raises:
        GandaptError: TensorRT (with ``tensorrt.plugin``) is not installed.
    """
    global _registered
    if _registered:
        return
    if importlib.util.find_spec("tensorrt") is None:
        raise GandaptError(NO_TRT)
    import tensorrt as trt
    try:
        import tensorrt.plugin as trtp
    except ImportError:
        raise GandaptError(f"TensorRT {trt.__version__} has no tensorrt.plugin; {NO_TRT}") from None
    if not hasattr(trtp, "aot_impl"):
        raise GandaptError(f"TensorRT {trt.__version__} has no ahead-of-time plugins (tensorrt.plugin.aot_impl); "
                           "install TensorRT 10.9 or newer")

    @trtp.register(PLUGIN_ID)
    def _describe(x: trtp.TensorDesc, weight: trtp.TensorDesc, styles: trtp.TensorDesc, in_scale: trtp.TensorDesc,
                  out_scale: trtp.TensorDesc, r1_out: trtp.TensorDesc, r1_in: trtp.TensorDesc,
                  r1_k: trtp.TensorDesc, noise: trtp.TensorDesc, bias: trtp.TensorDesc, up: int, demodulate: int,
                  rank1: int, activation: str, gain: float, clamp: float) -> trtp.TensorDesc:
        attrs = _attrs(up, demodulate, rank1, activation, gain, clamp)  # bad attributes fail the build here
        _check_descs(trt, (x, weight, styles, in_scale, out_scale, r1_out, r1_in, r1_k, noise, bias), attrs)
        y = x.like()
        y.shape_expr[1] = weight.shape_expr[0]
        if attrs.up:
            y.shape_expr[2] = x.shape_expr[2] * 2
            y.shape_expr[3] = x.shape_expr[3] * 2
        return y

    @trtp.autotune(PLUGIN_ID)
    def _autotune(x, weight, styles, in_scale, out_scale, r1_out, r1_in, r1_k, noise, bias,
                  outputs) -> List[trtp.AutoTuneCombination]:
        # 10 inputs + 1 output, all fp32 or all fp16, linear (NCHW) layout.
        return [trtp.AutoTuneCombination(", ".join(["FP32|FP16"] * (len(INPUT_NAMES) + 1)), "LINEAR")]

    @trtp.impl(PLUGIN_ID)
    def _impl(x: trtp.Tensor, weight: trtp.Tensor, styles: trtp.Tensor, in_scale: trtp.Tensor,
              out_scale: trtp.Tensor, r1_out: trtp.Tensor, r1_in: trtp.Tensor, r1_k: trtp.Tensor,
              noise: trtp.Tensor, bias: trtp.Tensor, up: int, demodulate: int, rank1: int, activation: str,
              gain: float, clamp: float, outputs: Tuple[trtp.Tensor], stream: int) -> None:
        import torch

        from gandapt.plugins_trt.modulated_conv.ops import fused_modconv

        attrs = _attrs(up, demodulate, rank1, activation, gain, clamp)
        with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
            ins = [torch.as_tensor(t, device="cuda")
                   for t in (x, weight, styles, in_scale, out_scale, r1_out, r1_in, r1_k, noise, bias)]
            fused_modconv(*ins, attrs=attrs, out=torch.as_tensor(outputs[0], device="cuda"))

    @trtp.aot_impl(PLUGIN_ID)
    def _aot_impl(x: trtp.TensorDesc, weight: trtp.TensorDesc, styles: trtp.TensorDesc,
                  in_scale: trtp.TensorDesc, out_scale: trtp.TensorDesc, r1_out: trtp.TensorDesc,
                  r1_in: trtp.TensorDesc, r1_k: trtp.TensorDesc, noise: trtp.TensorDesc, bias: trtp.TensorDesc,
                  up: int, demodulate: int, rank1: int, activation: str, gain: float, clamp: float,
                  outputs: Tuple[trtp.TensorDesc], tactic: int
                  ) -> Tuple[Union[str, bytes], Union[str, bytes], trtp.KernelLaunchParams, trtp.SymExprs]:
        from gandapt.plugins_trt.modulated_conv.aot import compile_variant
        from gandapt.plugins_trt.modulated_conv.kernel import BLOCK_O, BLOCK_P

        attrs = _attrs(up, demodulate, rank1, activation, gain, clamp)  # baked in: AOT plugins keep no attributes
        dtype = "float16" if x.dtype == trt.float16 else "float32"
        variant = compile_variant(attrs, dtype, target=None)  # the build GPU
        xs, ws = x.shape_expr, weight.shape_expr
        params = trtp.KernelLaunchParams()
        params.grid_x = xs[0] * trtp.cdiv(xs[2] * xs[3], BLOCK_P)
        params.grid_y = trtp.cdiv(ws[0], BLOCK_O)
        params.block_x = variant.num_warps * 32
        params.shared_mem = variant.shared
        # The kernel's int arguments, in order: N, I, O, H, W and the row count of each per-sample input.
        rows = [t.shape_expr[0] for t in (styles, in_scale, out_scale, r1_out, r1_in, r1_k, noise)]
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(e) for e in (xs[0], xs[1], ws[0], xs[2], xs[3], *rows)])
        return variant.name, variant.ptx, params, extra

    _registered = True
