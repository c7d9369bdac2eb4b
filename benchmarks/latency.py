"""Generator latency over backends, modulated-conv forms, precisions, batches and models.

One row per measured cell (model × backend × form × precision × batch) with p50/p90/p99, FPS, the
cell's compute floor and its multiple of it, the largest difference from torch eager fp32 on the same
inputs, and the speed-up over torch eager at the same model and batch. A path that cannot run here
gets one row with ``status`` ``unavailable`` and the reason; a cell whose estimated cost exceeds
the cell budget gets ``skipped`` and the estimate.

What runs (the main comparison at every batch, the variants at batch 1 on the smaller models):

=====================  ===========================  ======================================
backend                forms / precisions            where
=====================  ===========================  ======================================
torch-eager            decomposed fp32 (+ fp16 GPU)  every model and batch
                       grouped fp32                  batch 1, variant models
torch-compile          decomposed fp32               first model, batch 1 (full run)
onnxruntime-cpu        decomposed fp32               every model and batch
                       decomposed fp16, grouped      batch 1, variant models
                       plugin                        first model: exported (full run) to show it
                                                     exists, recorded unavailable (TensorRT only)
onnxruntime-cuda,      decomposed fp32/fp16          every model and batch, when present
onnxruntime-tensorrt
tensorrt               decomposed fp32/fp16, plugin  every model and batch, when present
=====================  ===========================  ======================================
"""

from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from gandapt.benchmarks.flops import ModelSpec, floor_ms, synthesis_flops
from gandapt.benchmarks.runners import (STAGES, Unavailable, Workspace, ort_runner, tensorrt_runner,
                                        torch_runner)
from gandapt.benchmarks.timing import measure, ratio

GPU_BACKENDS = ("onnxruntime-cuda", "onnxruntime-tensorrt", "tensorrt")


@dataclass(frozen=True)
class Cell:
    """One (backend, form, precision) path and the batches it runs at for one model."""

    backend: str
    form: str
    precision: str
    batches: Tuple[int, ...]


@dataclass
class LatencyOptions:
    """Settings of the latency section.

    Attributes:
        models: the models, smallest first.
        batches: batch sizes of the main comparison.
        variant_models: how many of the first models also get the form/precision variants.
        compile: try torch.compile on the first model.
        target_s: seconds of timed calls per cell.
        cell_budget_s: skip a cell whose warm-up plus ``min_iters`` calls are estimated to take longer.
        min_iters: fewest timed calls of a cell.
        cpu_max_batch: per model name, the largest batch on the CPU (1024 px: 1).
        plugin_export: export the plugin form to check it (False: only ask ExportSpec whether it exists).
    """

    models: Sequence[ModelSpec]
    batches: Tuple[int, ...] = (1, 4, 16)
    variant_models: int = 2
    compile: bool = False
    target_s: float = 2.0
    cell_budget_s: float = 60.0
    min_iters: int = 3
    cpu_max_batch: Dict[str, int] = field(default_factory=dict)
    plugin_export: bool = True


def plan_cells(index: int, spec: ModelSpec, options: LatencyOptions, device: str) -> List[Cell]:
    """The cells of the ``index``-th model (see the module docstring)."""
    batches = options.batches
    if device == "cpu" and spec.name in options.cpu_max_batch:
        batches = tuple(b for b in batches if b <= options.cpu_max_batch[spec.name]) or (1,)
    variants = index < options.variant_models
    cells = [Cell("torch-eager", "decomposed", "fp32", batches)]
    if device == "cuda":
        cells.append(Cell("torch-eager", "decomposed", "fp16", batches))
    if variants:
        cells.append(Cell("torch-eager", "grouped", "fp32", (1,)))
    if index == 0:
        cells.append(Cell("torch-compile", "decomposed", "fp32", (1,)))  # compiling costs a minute per shape on a CPU
    cells.append(Cell("onnxruntime-cpu", "decomposed", "fp32", batches))
    if variants:
        cells += [Cell("onnxruntime-cpu", "decomposed", "fp16", (1,)), Cell("onnxruntime-cpu", "grouped", "fp32", (1,))]
    if index == 0:
        cells.append(Cell("onnxruntime-cpu", "plugin", "fp32", (1,)))
    for backend in GPU_BACKENDS:
        cells += [Cell(backend, "decomposed", p, options.batches) for p in ("fp32", "fp16")]
    cells.append(Cell("tensorrt", "plugin", "fp32", options.batches))
    return cells


def run_latency(ws: Workspace, options: LatencyOptions, floor: Optional[Dict[str, Any]],
                log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)) -> Dict[str, Any]:
    """Measure every cell of every model; returns the section's JSON (``rows``, ``models``, ...)."""
    rows: List[Dict[str, Any]] = []
    unavailable: Dict[str, str] = {}  # backend → reason, once it failed for a machine-wide cause
    for index, spec in enumerate(options.models):
        flops = synthesis_flops(spec.config)["impl_total"]
        ref: Optional[np.ndarray] = None
        for cell in plan_cells(index, spec, options, ws.device):
            if cell.backend in unavailable:
                continue
            gflops = _gflops(floor, cell.precision)
            est: Optional[float] = None  # estimated seconds per call, from the previous batch
            for batch in cell.batches:
                row = {"model": spec.name, "resolution": spec.config.img_resolution, "backend": cell.backend,
                       "device": _device(cell.backend, ws.device), "form": cell.form, "precision": cell.precision,
                       "batch": batch, "floor_ms": floor_ms(flops, gflops, batch)}
                reason = _skip_reason(cell, options, est, batch)
                if reason:
                    rows.append({**row, "status": "skipped", "reason": reason})
                    continue
                try:
                    fn, setup_s = _runner(ws, spec, cell, batch, options.plugin_export)
                except Unavailable as err:
                    rows.append({**row, "status": "unavailable", "reason": str(err)})
                    if cell.backend in GPU_BACKENDS and cell.form != "plugin":
                        unavailable[cell.backend] = str(err)
                    break
                stats, out = measure(fn, batch, target_s=options.target_s, min_iters=options.min_iters)
                del fn
                if ref is None and cell.backend == "torch-eager" and cell.precision == "fp32":
                    ref = out[:1]
                row.update(status="ok", setup_s=round(setup_s, 3), **stats,
                           x_floor=ratio(stats["p50_ms"], row["floor_ms"]),
                           max_abs_diff=None if ref is None else float(np.abs(out[:1] - ref).max()))
                rows.append(row)
                est = stats["p50_ms"] / 1e3
                log(_line(row))
            gc.collect()
        ws.drop(spec)
        gc.collect()
    _add_speedups(rows)
    return {"graph": "synthesis", "stages": list(STAGES), "models": [m.to_dict() for m in options.models],
            "batches": list(options.batches), "rows": rows,
            "unavailable": unavailable, "cell_budget_s": options.cell_budget_s, "target_s": options.target_s}


def _gflops(floor: Optional[Dict[str, Any]], precision: str) -> Optional[float]:
    """The floor's rate for ``precision`` (fp32's where that precision was not measured, as on a CPU)."""
    floor = floor or {}
    entry = floor.get(precision) or floor.get("fp32") or {}
    return entry.get("best_gflops")


def _device(backend: str, device: str) -> str:
    if backend in ("torch-eager", "torch-compile"):
        return device
    return "cpu" if backend == "onnxruntime-cpu" else "cuda"


def _skip_reason(cell: Cell, options: LatencyOptions, est: Optional[float], batch: int) -> Optional[str]:
    if cell.backend == "torch-compile" and not options.compile:
        return ("torch.compile runs only in the full run (it compiles for tens of seconds per shape on a CPU); "
                "drop --quick to measure it")
    if est is not None:
        cost = est * batch / max(1, _prev(cell.batches, batch)) * (options.min_iters + 1)
        if cost > options.cell_budget_s:
            return (f"estimated {cost:.0f} s for warm-up + {options.min_iters} calls exceeds the cell budget "
                    f"({options.cell_budget_s:.0f} s; raise --cell-budget)")
    return None


def _prev(batches: Tuple[int, ...], batch: int) -> int:
    smaller = [b for b in batches if b < batch]
    return smaller[-1] if smaller else batch


def _plugin_check(ws: Workspace, spec: ModelSpec, cell: Cell, batch: int, export: bool) -> None:
    """The plugin form on onnxruntime: find out whether it exports, then say why it is not timed here."""
    from gandapt.errors import GandaptError
    from gandapt.export.spec import ExportSpec

    try:
        ExportSpec(modconv="plugin", precision=cell.precision)
    except GandaptError as err:
        raise Unavailable(f"export refused: {err}") from None
    done = ""
    if export:
        _, seconds = ws.onnx(spec, "plugin", cell.precision, batch)
        done = f" and exported ({seconds:.1f} s)"
    raise Unavailable(f"the plugin form exists{done}, but only TensorRT runs its gandapt::ModulatedConv2d nodes "
                      "(the tensorrt backend times it on GPU machines)")


def _runner(ws: Workspace, spec: ModelSpec, cell: Cell, batch: int, export: bool = True) -> Tuple[Callable[[], np.ndarray], float]:
    """The callable of one cell and its setup time (export, session, compile or engine build)."""
    t = time.perf_counter()
    if cell.form == "plugin" and cell.backend.startswith("onnxruntime"):
        _plugin_check(ws, spec, cell, batch, export)
    inputs = ws.inputs(spec, batch)
    if cell.backend in ("torch-eager", "torch-compile"):
        fn = torch_runner(ws.generator(spec), inputs, device=ws.device, precision=cell.precision, form=cell.form,
                          compiled=cell.backend == "torch-compile")
        return fn, time.perf_counter() - t
    if cell.backend == "tensorrt":
        return (tensorrt_runner(spec, ws.generator(spec), inputs, cell.precision, ws.root, max(cell.batches), cell.form),
                time.perf_counter() - t)
    path, _ = ws.onnx(spec, cell.form, cell.precision, batch)
    return ort_runner(path, inputs, cell.backend, ws.threads), time.perf_counter() - t


def _add_speedups(rows: List[Dict[str, Any]]) -> None:
    """``vs_eager``: torch eager fp32 p50 at the same model, device and batch over this row's p50."""
    eager = {(r["model"], r["device"], r["batch"]): r["p50_ms"] for r in rows
             if r["status"] == "ok" and r["backend"] == "torch-eager" and r["form"] == "decomposed"
             and r["precision"] == "fp32"}
    for r in rows:
        if r["status"] == "ok":
            base = eager.get((r["model"], r["device"], r["batch"])) or eager.get((r["model"], "cpu", r["batch"]))
            r["vs_eager"] = ratio(base, r["p50_ms"])


def _line(r: Dict[str, Any]) -> str:
    floor = f", {r['x_floor']:.1f}x floor" if r.get("x_floor") else ""
    return (f"[latency] {r['model']} {r['backend']} {r['form']} {r['precision']} b{r['batch']}: "
            f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, {r['fps']:.1f} img/s{floor}")


def best_exported(rows: List[Dict[str, Any]], model: str, batch: int = 1) -> Optional[Dict[str, Any]]:
    """The fastest measured exported path (not torch) of ``model`` at ``batch``, fp32 first."""
    ok = [r for r in rows if r["status"] == "ok" and r["model"] == model and r["batch"] == batch
          and not r["backend"].startswith("torch")]
    fp32 = [r for r in ok if r["precision"] == "fp32"]
    pool = fp32 or ok
    return min(pool, key=lambda r: r["p50_ms"]) if pool else None
