"""GPU script: PyTorch eager vs CUDA graphs at 256/512/1024 px, fp32/fp16, batch 1, plus the plugin
kernel benchmark when it is importable.

Needs only PyTorch (and Triton, if the plugin kernel benchmark uses it): no TensorRT, no
onnxruntime-gpu. Run it on a GPU machine from the repository root::

    python -m gandapt.benchmarks.gpu                   # JSON into benchmarks/results/, summary regenerated
    python -m gandapt.benchmarks.gpu --resolutions 256 --precisions fp16

The CUDA graph captures the whole synthesis once with static ``ws`` and ``domain`` tensors; a domain
switch is a ``copy_`` into the static ``domain`` tensor followed by a replay (no recapture), which the
script checks against eager on the new domain.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Sequence

import click

from gandapt.cli.errors import user_errors
from gandapt.errors import GandaptError, one_line

BENCHMARK = "gandapt-bench-gpu"
NO_CUDA = ("no CUDA GPU visible to PyTorch (torch.cuda.is_available() is False); run this script on a GPU machine "
           "with a CUDA build of torch, or use gandapt-bench on the CPU")


def bench_config(config: Any, device: str, precision: str, batch: int = 1, cuda_graphs: bool = True,
                 target_s: float = 2.0, seed: int = 0) -> Dict[str, Any]:
    """Eager (and CUDA-graph) latency of a random-weight generator's synthesis with a domain input.

    Args:
        config: the :class:`~gandapt.config.GeneratorConfig`.
        device: ``'cuda'`` (``'cpu'`` works without ``cuda_graphs``, for tests).
        precision: ``'fp32'`` or ``'fp16'``.
        batch: images per call.
        cuda_graphs: also capture and time a CUDA graph.
        target_s: seconds of timed calls per path.

    Returns:
        ``{resolution, precision, batch, eager, cuda_graph, speedup, graph_max_abs_diff, switch_max_abs_diff}``.
    """
    import torch

    from gandapt.benchmarks.runners import STAGES
    from gandapt.benchmarks.timing import measure, ratio
    from gandapt.generator import Generator

    dtype = torch.float16 if precision == "fp16" else torch.float32
    torch.manual_seed(seed)
    G = Generator(config).eval().requires_grad_(False)
    layout = G.synthesis.set_domain_stages(STAGES)
    G.synthesis.set_modconv_form("decomposed")
    G = G.to(device=device, dtype=dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        ws = G.mapping(torch.randn(batch, config.z_dim, generator=g).to(device, dtype), truncation_psi=0.7)
    domain = torch.from_numpy(layout.identity(batch)).to(device, dtype)
    other = domain.clone()
    other[:, : layout.size // 2] *= 1.2  # another "domain" for the switch check
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def eager(dom=domain) -> Any:
        with torch.inference_mode():
            img = G.synthesis(ws, domain=dom)
        sync()
        return img

    row: Dict[str, Any] = {"resolution": config.img_resolution, "precision": precision, "batch": batch,
                           "channels": list(config.channels), "status": "ok"}
    row["eager"], ref = measure(eager, batch, target_s=target_s)
    if cuda_graphs:
        static_ws, static_domain = ws.clone(), domain.clone()
        with torch.inference_mode():
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):  # warm up on a side stream, as torch.cuda.graphs documents
                for _ in range(3):
                    G.synthesis(static_ws, domain=static_domain)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_img = G.synthesis(static_ws, domain=static_domain)

        def replay() -> Any:
            graph.replay()
            sync()
            return static_img.clone()

        row["cuda_graph"], out = measure(replay, batch, target_s=target_s)
        row["speedup"] = ratio(row["eager"]["p50_ms"], row["cuda_graph"]["p50_ms"])
        row["graph_max_abs_diff"] = float((out.float() - ref.float()).abs().max())
        static_domain.copy_(other)  # a domain switch: same addresses, no recapture
        switched = replay()
        row["switch_max_abs_diff"] = float((switched.float() - eager(other).float()).abs().max())
    return row


def plugin_kernel() -> Dict[str, Any]:
    """The plugin issue's kernel benchmark, or why it cannot run (imported lazily)."""
    try:
        from gandapt.plugins_trt.modulated_conv.bench_gpu import run_kernel_benchmark
    except ImportError as err:
        return {"status": "unavailable", "reason": f"gandapt.plugins_trt.modulated_conv.bench_gpu: {one_line(err, 200)}"}
    try:
        result = run_kernel_benchmark()
    except Exception as err:  # noqa: BLE001 - another component's benchmark; its failure is a result here
        return {"status": "failed", "reason": f"{type(err).__name__}: {one_line(err, 300)}"}
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        result = repr(result)
    return {"status": "ok", "result": result}


def run_gpu(out: Path, resolutions: Sequence[int] = (256, 512, 1024), precisions: Sequence[str] = ("fp32", "fp16"),
            target_s: float = 2.0, plots: bool = True, log=lambda s: print(s, file=sys.stderr, flush=True)) -> Path:
    """Run the GPU script; returns the JSON written into ``out`` (the summary is regenerated).

    Raises:
        GandaptError: no CUDA GPU, an unknown precision.
    """
    try:
        import torch
    except ImportError:
        raise GandaptError("the GPU script needs PyTorch with CUDA: pip install torch") from None
    if not torch.cuda.is_available():
        raise GandaptError(NO_CUDA)
    bad = [p for p in precisions if p not in ("fp32", "fp16")]
    if bad:
        raise GandaptError(f"unknown precision(s) {', '.join(bad)}; use fp32 and/or fp16")
    from gandapt.benchmarks.flops import random_config
    from gandapt.benchmarks.machine import load_average, machine_info
    from gandapt.benchmarks.report import write_report
    from gandapt.benchmarks.suite import _json_path, _jsonable
    from gandapt.io import atomic_write_bytes

    machine = machine_info(torch.get_num_threads())
    rows = []
    for res in resolutions:
        for prec in precisions:
            try:
                row = bench_config(random_config(res), "cuda", prec, target_s=target_s)
            except torch.cuda.OutOfMemoryError as err:
                row = {"resolution": res, "precision": prec, "batch": 1, "status": "failed", "reason": one_line(err, 200)}
            finally:
                torch.cuda.empty_cache()
            rows.append(row)
            if row["status"] == "ok":
                log(f"[gpu] {res} px {prec}: eager p50 {row['eager']['p50_ms']:.2f} ms, CUDA graph "
                    f"{row['cuda_graph']['p50_ms']:.2f} ms ({row['speedup']:.2f}x)")
    kernel = plugin_kernel()
    log(f"[gpu] plugin kernel benchmark: {kernel['status']}")
    machine["load_average_end"] = load_average()
    result = {"benchmark": BENCHMARK, "schema": 1, "mode": "gpu", "created": machine["date"], "machine": machine,
              "settings": {"resolutions": list(resolutions), "precisions": list(precisions), "target_s": target_s,
                           "graph": "synthesis", "batch": 1},
              "rows": rows, "plugin_kernel": kernel}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = _json_path(out, "cuda", "gpu")
    atomic_write_bytes(path, (json.dumps(result, indent=1, default=_jsonable) + "\n").encode())
    write_report(out, plots=plots)
    return path


@click.command("gandapt-bench-gpu", context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("benchmarks/results"),
              help="Results folder (the summary and plots there are regenerated).")
@click.option("--resolutions", default="256,512,1024", help="Random-weight configs to run.")
@click.option("--precisions", default="fp32,fp16", help="fp32 and/or fp16.")
@click.option("--seconds", type=click.FloatRange(min=0.1), default=2.0, help="Timed seconds per path.")
@click.option("--no-plots", is_flag=True, help="Do not write the PNG plots.")
@user_errors()
def main(out: Path, resolutions: str, precisions: str, seconds: float, no_plots: bool) -> None:
    """PyTorch eager vs CUDA graphs on the GPU (256/512/1024 px, fp32/fp16, batch 1) and the plugin kernel."""
    from gandapt.benchmarks.flops import parse_resolutions

    path = run_gpu(out, parse_resolutions(resolutions), tuple(p.strip() for p in precisions.split(",") if p.strip()),
                   seconds, plots=not no_plots)
    click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()
