"""GPU benchmark: the fused Triton kernel vs PyTorch (cuDNN) per synthesis-conv shape, fp32 and fp16.

For each modulated 3×3 conv of the StyleGAN2 256/512/1024 configs (FFHQ config-f widths: 512 up to
64 px, then 256/128/64/32), it times:

* ``triton``: :func:`.ops.fused_modconv` (the kernel TensorRT's plugin runs);
* ``torch_decomposed``: :func:`.ops.reference_modconv` with ``form='decomposed'`` (scale activations,
  cuDNN conv with the constant weight, demodulation from a small matmul, then noise/bias/act) — the
  ONNX default path in PyTorch;
* ``torch_grouped``: the same with per-sample kernels through a grouped cuDNN conv (NVlabs "fused").

and checks the Triton output against fp32 ``torch_decomposed``. Importing this module needs no GPU
(torch and triton load inside the function); running it without CUDA fails with one line.

    python -m gandapt.plugins_trt.modulated_conv.bench_gpu --out benchmarks/results/modconv_kernel.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from gandapt.errors import GandaptError

# (resolution, in_channels, out_channels, up) of every modulated 3×3 conv, config-f widths.
_WIDTH = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}


def layer_shapes(resolution: int) -> List[Tuple[int, int, int, int]]:
    """``(out_res, I, O, up)`` of each synthesis conv of a ``resolution`` generator (config-f widths)."""
    if resolution not in (256, 512, 1024):
        raise GandaptError(f"benchmark configs are 256, 512 and 1024, not {resolution}")
    shapes, res = [(4, 512, 512, 0)], 8
    while res <= resolution:
        shapes += [(res, _WIDTH[res // 2], _WIDTH[res], 1), (res, _WIDTH[res], _WIDTH[res], 0)]
        res *= 2
    return shapes


def _time(fn, repeats: int, warmup: int) -> Dict[str, float]:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return {"p50_ms": times[len(times) // 2], "p90_ms": times[int(len(times) * 0.9)], "min_ms": times[0]}


def run_kernel_benchmark(
    resolutions: Sequence[int] = (256, 512, 1024),
    dtypes: Sequence[str] = ("fp32", "fp16"),
    batch: int = 1,
    repeats: int = 50,
    warmup: int = 10,
    rank1: bool = False,
    out: Optional[Path] = None,
) -> Dict[str, Any]:
    """Time the Triton kernel against PyTorch per layer shape; optionally write the JSON to ``out``.

    Args:
        resolutions: generator configs (256, 512, 1024); shared layer shapes are timed once.
        dtypes: 'fp32' and/or 'fp16'.
        batch: samples per call.
        repeats, warmup: timed and untimed calls per measurement (CUDA events).
        rank1: include the rank-1 residual (DynaGAN) in every layer.
        out: JSON file to write (parent folders are created); None = do not write.

    Returns:
        ``{"device", "versions", "config", "layers": [{res, I, O, up, dtype, triton, torch_decomposed,
        torch_grouped (p50/p90/min ms), speedup_vs_decomposed, max_abs_diff}]}``.

    Raises:
        GandaptError: no CUDA device, or triton / torch missing.
    """
    try:
        import torch
    except ImportError:
        raise GandaptError("the kernel benchmark needs torch with CUDA") from None
    if not torch.cuda.is_available():
        raise GandaptError("the kernel benchmark needs a CUDA GPU (torch.cuda.is_available() is False); "
                           "run it on the GPU machine")
    try:
        import triton
    except ImportError:
        raise GandaptError("triton is not installed: pip install 'gandapt[kernels]'") from None
    from gandapt.plugins_trt.modulated_conv.ops import fused_modconv, reference_modconv
    from gandapt.plugins_trt.modulated_conv.spec import Attributes

    kinds = {"fp32": torch.float32, "fp16": torch.float16}
    bad = [d for d in dtypes if d not in kinds]
    if bad:
        raise GandaptError(f"unknown dtype(s) {', '.join(bad)}; use fp32 and/or fp16")
    shapes = sorted({s for r in resolutions for s in layer_shapes(r)})
    g = torch.Generator(device="cuda").manual_seed(0)
    rows: List[Dict[str, Any]] = []
    for res, i, o, up in shapes:
        h = res // 2 if up else res
        attrs = Attributes(up=up, rank1=int(rank1), clamp=256.0)

        def randn(*shape, scale=1.0, offset=0.0):
            return torch.randn(*shape, generator=g, device="cuda") * scale + offset

        base = [randn(batch, i, h, h), randn(o, i, 3, 3, scale=1 / 3), randn(batch, i, scale=0.5, offset=1.0),
                randn(1, i, scale=0.1, offset=1.0), randn(1, o, scale=0.1, offset=1.0), randn(1, o, scale=0.1),
                randn(1, i), randn(1, 3, 3), randn(1, 1, res, res, scale=0.1), randn(o, scale=0.1)]
        with torch.no_grad():
            expected = reference_modconv(*base, attrs=attrs, form="decomposed")
            for name in dtypes:
                ins = [t.to(kinds[name]) for t in base]
                row: Dict[str, Any] = {"resolution": res, "in_channels": i, "out_channels": o, "up": up, "dtype": name,
                                       "batch": batch}
                row["triton"] = _time(lambda: fused_modconv(*ins, attrs=attrs), repeats, warmup)
                row["torch_decomposed"] = _time(lambda: reference_modconv(*ins, attrs=attrs, form="decomposed"),
                                                repeats, warmup)
                row["torch_grouped"] = _time(lambda: reference_modconv(*ins, attrs=attrs, form="grouped"),
                                             repeats, warmup)
                got = fused_modconv(*ins, attrs=attrs).float()
                row["max_abs_diff"] = float((got - expected).abs().max())
                row["scale"] = float(expected.abs().max())
                row["speedup_vs_decomposed"] = row["torch_decomposed"]["p50_ms"] / row["triton"]["p50_ms"]
                rows.append(row)
    result = {
        "benchmark": "modconv_kernel",
        "device": torch.cuda.get_device_name(),
        "compute_capability": ".".join(map(str, torch.cuda.get_device_capability())),
        "versions": {"torch": torch.__version__, "triton": triton.__version__, "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version(), "python": platform.python_version()},
        "config": {"resolutions": list(resolutions), "dtypes": list(dtypes), "batch": batch, "repeats": repeats,
                   "warmup": warmup, "rank1": rank1},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "layers": rows,
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line: ``python -m gandapt.plugins_trt.modulated_conv.bench_gpu [--out FILE] ...``."""
    p = argparse.ArgumentParser(description="Time the gandapt::ModulatedConv2d Triton kernel against PyTorch/cuDNN.")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/modconv_kernel.json"))
    p.add_argument("--resolutions", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--dtypes", nargs="+", default=["fp32", "fp16"])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--rank1", action="store_true")
    a = p.parse_args(argv)
    try:
        result = run_kernel_benchmark(a.resolutions, a.dtypes, a.batch, a.repeats, rank1=a.rank1, out=a.out)
    except GandaptError as e:
        raise SystemExit(f"error: {e}") from None
    for r in result["layers"]:
        print(f"{r['resolution']:>5} {r['in_channels']:>4}->{r['out_channels']:<4} up={r['up']} {r['dtype']}: "
              f"triton {r['triton']['p50_ms']:.3f} ms, decomposed {r['torch_decomposed']['p50_ms']:.3f} ms "
              f"(x{r['speedup_vs_decomposed']:.2f}), max|diff| {r['max_abs_diff']:.2e}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
