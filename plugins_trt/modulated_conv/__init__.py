"""``gandapt::ModulatedConv2d``: the fused modulated-conv node, its Triton kernel and its TensorRT plugin.

Modules: :mod:`.spec` (the node's contract, no torch), :mod:`.ops` (Triton launcher and PyTorch
reference), :mod:`.kernel` (the Triton kernel; imports triton), :mod:`.aot` (ahead-of-time compile),
:mod:`.trt_plugin` (``tensorrt.plugin`` registration), :mod:`.ort_op` (onnxruntime-extensions CPU op),
:mod:`.bench_gpu` (GPU benchmark). See README.md beside this file.
"""

from gandapt.plugins_trt.modulated_conv.spec import NAME, NAMESPACE, PLUGIN_ID, VERSION, Attributes

__all__ = ["NAME", "NAMESPACE", "PLUGIN_ID", "VERSION", "Attributes"]
