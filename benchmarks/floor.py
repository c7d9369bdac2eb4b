"""The machine's measured arithmetic throughput: the denominator of the compute floor.

Timed with the same loop as the generator: a square matrix multiply and a 3×3 convolution shaped
like the generator's mid-resolution layers in torch, and on a CPU the same convolution in onnxruntime
(its own kernels, and a second opinion when torch's thread pool is disturbed). The floor of a model is
its FLOPs per image (:mod:`gandapt.benchmarks.flops`) divided by the best of these rates, so "3× the
floor" means the generator runs at a third of what this machine's best dense kernel sustains. Each rate
comes from the kernel's fastest call (not its median): the floor is what the machine can do at best,
so a disturbed call should not lower it.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Dict, Optional

import numpy as np

from gandapt.benchmarks.timing import measure


def ort_conv_gflops(batch: int, c: int, hw: int, threads: int, target_s: float) -> Optional[float]:
    """GFLOP/s of a 3×3 fp32 conv in onnxruntime's CPU provider (None without onnxruntime)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from gandapt.runtime.backends.ort import session_options

    w = np.random.default_rng(0).standard_normal((c, c, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, c, hw, hw])],
        initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((batch, c, hw, hw)).astype(np.float32)
    stats, _ = measure(lambda: sess.run(None, {"x": x}), target_s=target_s)
    return 2 * batch * c * c * 9 * hw * hw / (stats["min_ms"] * 1e-3) / 1e9


def throughput(device: str = "cpu", precision: str = "fp32", quick: bool = False) -> Dict[str, Any]:
    """Measured GFLOP/s of a matmul and a conv on ``device``.

    Args:
        device: ``'cpu'`` or ``'cuda'``.
        precision: ``'fp32'`` or ``'fp16'`` (fp16 only on CUDA).
        quick: smaller problems and less time (``--quick``).

    Returns:
        ``{'matmul_gflops', 'conv_gflops', 'best_gflops', 'device', 'precision', 'shapes'}``.
    """
    import torch
    import torch.nn.functional as F

    dtype = torch.float16 if precision == "fp16" else torch.float32
    g = torch.Generator().manual_seed(0)
    n = 512 if quick and device == "cpu" else (2048 if device == "cpu" else 8192)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    c, hw, batch = (128, 32, 2) if quick and device == "cpu" else ((512, 32, 2) if device == "cpu" else (512, 64, 16))
    x = torch.randn(batch, c, hw, hw, generator=g).to(device, dtype)
    w = torch.randn(c, c, 3, 3, generator=g).to(device, dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def mm():
        out = a @ b
        sync()
        return out

    def conv():
        out = F.conv2d(x, w, padding=1)
        sync()
        return out

    target = 0.5 if quick else 2.0
    with torch.inference_mode():
        mm_stats, _ = measure(mm, target_s=target)
        conv_stats, _ = measure(conv, target_s=target)
    mm_gflops = 2 * n ** 3 / (mm_stats["min_ms"] * 1e-3) / 1e9
    conv_gflops = 2 * batch * c * c * 9 * hw * hw / (conv_stats["min_ms"] * 1e-3) / 1e9
    ort_gflops = ort_conv_gflops(batch, c, hw, torch.get_num_threads(), target) if device == "cpu" else None
    rates = [r for r in (mm_gflops, conv_gflops, ort_gflops) if r]
    return {"matmul_gflops": round(mm_gflops, 2), "conv_gflops": round(conv_gflops, 2),
            "ort_conv_gflops": None if ort_gflops is None else round(ort_gflops, 2),
            "best_gflops": round(max(rates), 2), "device": device, "precision": precision,
            "threads": torch.get_num_threads(),
            "shapes": {"matmul": [n, n, n], "conv": {"batch": batch, "channels": c, "size": hw, "kernel": 3}}}
