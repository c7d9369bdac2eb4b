"""A CPU reference of the ``gandapt::ModulatedConv2d`` node for onnxruntime (onnxruntime-extensions).

Plugin-form graphs contain a node onnxruntime does not know. :func:`session_options` registers a
Python implementation of it (the PyTorch reference, decomposed form, via
:func:`..ops.reference_modconv`) through onnxruntime-extensions' ``onnx_op``, so such graphs run on
CPU: that is how the exporter validates them and how the tests check the node's wiring, attributes
and input order without TensorRT. It is a reference, not a fast path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gandapt.errors import GandaptError
from gandapt.plugins_trt.modulated_conv.spec import INPUT_NAMES, PLUGIN_ID, Attributes

NO_EXTENSIONS = ("onnxruntime-extensions is not installed: pip install 'gandapt[kernels]' "
                 "(plugin-form graphs run on CPU through it)")
_registered = False


def _compute(*arrays: np.ndarray, **attributes: Any) -> np.ndarray:
    """The node on numpy inputs (the onnxruntime-extensions callback)."""
    import torch

    from gandapt.plugins_trt.modulated_conv.ops import reference_modconv

    attrs = Attributes.from_mapping(attributes)
    with torch.no_grad():
        ins = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays]
        return reference_modconv(*ins, attrs=attrs, form="decomposed").numpy()


def register() -> None:
    """Register the node with onnxruntime-extensions (once per process; float32 graphs).

    Raises:
        GandaptError: onnxruntime-extensions is missing.
    """
    global _registered
    if _registered:
        return
    try:
        from onnxruntime_extensions import PyCustomOpDef, onnx_op
    except ImportError:
        raise GandaptError(NO_EXTENSIONS) from None
    attrs = {"up": PyCustomOpDef.dt_int64, "demodulate": PyCustomOpDef.dt_int64, "rank1": PyCustomOpDef.dt_int64,
             "activation": PyCustomOpDef.dt_string, "gain": PyCustomOpDef.dt_float,
             "clamp": PyCustomOpDef.dt_float, "plugin_namespace": PyCustomOpDef.dt_string,
             "plugin_version": PyCustomOpDef.dt_string, "aot": PyCustomOpDef.dt_int64}
    # float32 only: the Python custom-op API of onnxruntime-extensions 0.15 aborts the process on float16
    # ("Type float16 not supported by python customops api"), so fp16 plugin graphs are not exported.
    onnx_op(op_type=PLUGIN_ID, inputs=[PyCustomOpDef.dt_float] * len(INPUT_NAMES),
            outputs=[PyCustomOpDef.dt_float], attrs=attrs)(_compute)
    _registered = True


def session_options(threads: int = 2) -> Any:
    """onnxruntime ``SessionOptions`` with the custom-op library that holds the node (CPU).

    Raises:
        GandaptError: onnxruntime-extensions is missing.
    """
    import onnxruntime as ort

    register()
    from onnxruntime_extensions import get_library_path

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.register_custom_ops_library(get_library_path())
    return opts
