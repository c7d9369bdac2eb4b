"""``run_bench``: every section in one process, one JSON per run, then the summary and plots.

Sections: ``latency`` (with the compute floor), ``switching``, ``memory``, ``pipeline``, ``peer``.
A section that fails for a user-level reason (a bundle without domains, a missing file) records
``{"status": "failed", "reason": ...}`` and the others still run; a bug keeps its traceback.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from gandapt.errors import GandaptError, one_line

SECTIONS = ("latency", "switching", "memory", "pipeline", "peer")
SCHEMA = 1
BENCHMARK = "gandapt-bench"


@dataclass(frozen=True)
class BenchOptions:
    """Everything ``gandapt-bench`` takes (see its --help).

    Attributes:
        quick: the small run (embedded model, a narrow 256 px config, batches 1 and 4; under 2 minutes
            on 2 cores) instead of the full one.
        only: the sections to run.
        threads: CPU threads (None: every core this process may use).
        out: results folder (JSON, summary, plots).
        model: checkpoint of the "embedded" model (None: the shipped one).
        bundle: bundle of the switching and pipeline sections (None: the shipped one).
        resolutions: random-weight models (None: 256 narrow with ``quick``, else 256, 512, 1024).
        batches: batch sizes (None: 1, 4 with ``quick``, else 1, 4, 16).
        cell_budget: seconds a latency cell may take (None: 10 quick, 60 full).
        seed: seed of weights and inputs.
        plots: write the PNG plots.
        progress: one line per measurement on stderr.
    """

    quick: bool = False
    only: Tuple[str, ...] = SECTIONS
    threads: Optional[int] = None
    out: str = "benchmarks/results"
    model: Optional[str] = None
    bundle: Optional[str] = None
    resolutions: Optional[Tuple[int, ...]] = None
    batches: Optional[Tuple[int, ...]] = None
    cell_budget: Optional[float] = None
    seed: int = 0
    plots: bool = True
    progress: bool = True
    settings: Dict[str, Any] = field(default_factory=dict)  # test hooks: override a mode setting

    def __post_init__(self) -> None:
        unknown = [s for s in self.only if s not in SECTIONS]
        if unknown or not self.only:
            raise GandaptError(f"unknown section(s) {', '.join(unknown) or '(none given)'}; use some of {', '.join(SECTIONS)}")
        if self.threads is not None and self.threads < 1:
            raise GandaptError(f"--threads must be >= 1, got {self.threads}")
        if self.batches is not None and (not self.batches or min(self.batches) < 1):
            raise GandaptError("--batches must list sizes >= 1, e.g. 1,4,16")
        if self.cell_budget is not None and self.cell_budget <= 0:
            raise GandaptError(f"--cell-budget must be > 0 seconds, got {self.cell_budget}")


def mode_settings(options: BenchOptions) -> Dict[str, Any]:
    """The knobs each mode turns (recorded in the JSON)."""
    if options.quick:
        s = dict(resolutions=(256,), batches=(1, 4), target_s=0.5, cell_budget=10.0, variant_models=1,
                 compile=False, switches=500, frames_s=1.0, memory_counts=(1, 10, 100, 1000), max_copies=10,
                 pipeline_frames=60, switch_every=(0,), peer_models=1, peer_s=1.5)
    else:
        s = dict(resolutions=(256, 512, 1024), batches=(1, 4, 16), target_s=2.0, cell_budget=60.0, variant_models=2,
                 compile=True, switches=2000, frames_s=3.0, memory_counts=(1, 10, 100, 1000), max_copies=100,
                 pipeline_frames=150, switch_every=(0, 1), peer_models=2, peer_s=4.0)
    for key in ("resolutions", "batches"):
        if getattr(options, key) is not None:
            s[key] = tuple(getattr(options, key))
    if options.cell_budget is not None:
        s["cell_budget"] = float(options.cell_budget)
    s.update(options.settings)
    return s


def run_bench(options: BenchOptions) -> Path:
    """Run the selected sections, write the JSON, regenerate the summary and plots.

    Returns:
        The JSON file written.

    Raises:
        GandaptError: bad options, a missing model or bundle, an unwritable results folder.
    """
    from gandapt.benchmarks.machine import cpu_threads, load_average, machine_info
    from gandapt.benchmarks.report import write_report
    from gandapt.io import atomic_write_bytes

    t_start = time.perf_counter()
    threads = options.threads or cpu_threads()
    settings = mode_settings(options)
    model, bundle = _resolve_inputs(options)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if options.progress else (lambda s: None)

    from gandapt.benchmarks.runners import Workspace

    ws = Workspace(threads, options.seed)
    machine = machine_info(threads)
    result: Dict[str, Any] = {
        "benchmark": BENCHMARK, "schema": SCHEMA, "mode": "quick" if options.quick else "full",
        "created": machine["date"], "machine": machine,
        "options": {**asdict(replace(options, settings={})), "model": str(model), "bundle": str(bundle)},
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "sections": {}, "section_seconds": {},
    }
    try:
        for name in options.only:
            t = time.perf_counter()
            log(f"[{name}] ...")
            result["sections"][name] = _section(name, ws, options, settings, model, bundle, result, log)
            result["section_seconds"][name] = round(time.perf_counter() - t, 2)
    finally:
        ws.close()
    machine["load_average_end"] = load_average()
    result["wall_s"] = round(time.perf_counter() - t_start, 2)
    path = _json_path(out, machine["kind"], result["mode"])
    atomic_write_bytes(path, (json.dumps(result, indent=1, default=_jsonable) + "\n").encode())
    for written in write_report(out, plots=options.plots):
        log(f"wrote {written}")
    return path


def _section(name: str, ws: Any, options: BenchOptions, s: Dict[str, Any], model: Path, bundle: Path,
             result: Dict[str, Any], log: Callable[[str], None]) -> Dict[str, Any]:
    from gandapt.benchmarks.runners import Unavailable

    try:
        if name == "latency":
            return _latency(ws, options, s, model, log)
        if name == "switching":
            from gandapt.benchmarks.switching import run_switching

            return run_switching(bundle, threads=ws.threads, switches=s["switches"], frames_s=s["frames_s"],
                                 seed=options.seed)
        if name == "memory":
            from gandapt.benchmarks.memory import run_memory

            return run_memory(model, s["memory_counts"], s["max_copies"], options.seed)
        if name == "pipeline":
            from gandapt.benchmarks.pipeline import run_pipeline

            return run_pipeline(bundle, s["pipeline_frames"], ws.threads, switch_every=s["switch_every"])
        return _peer(ws, options, s, model, result)
    except (GandaptError, Unavailable) as err:
        log(f"[{name}] failed: {one_line(err)}")
        return {"status": "failed", "reason": one_line(err)}


def _models(options: BenchOptions, s: Dict[str, Any], model: Path) -> list:
    import gandapt
    from gandapt.benchmarks.flops import ModelSpec, random_spec

    embedded = ModelSpec("embedded", gandapt.load(model).config, str(model),
                         "the shipped avatar model" if options.model is None else "--model")
    return [embedded] + [random_spec(r, quick=options.quick) for r in s["resolutions"]]


def _latency(ws: Any, options: BenchOptions, s: Dict[str, Any], model: Path, log: Callable[[str], None]) -> Dict[str, Any]:
    from gandapt.benchmarks.floor import throughput
    from gandapt.benchmarks.latency import LatencyOptions, run_latency

    floor = {"fp32": throughput(ws.device, "fp32", quick=options.quick)}
    if ws.device == "cuda":
        floor["fp16"] = throughput(ws.device, "fp16", quick=options.quick)
    log(f"[floor] {floor['fp32']['best_gflops']:.1f} GFLOP/s fp32 ({ws.device}, {ws.threads} threads)")
    models = _models(options, s, model)
    lat = LatencyOptions(models, batches=s["batches"], variant_models=s["variant_models"], compile=s["compile"],
                         target_s=s["target_s"], cell_budget_s=s["cell_budget"],
                         cpu_max_batch={m.name: 1 for m in models if m.config.img_resolution >= 1024},
                         plugin_export=not options.quick)
    section = run_latency(ws, lat, floor, log)
    section["floor"] = floor
    return section


def _peer(ws: Any, options: BenchOptions, s: Dict[str, Any], model: Path, result: Dict[str, Any]) -> Dict[str, Any]:
    from gandapt.benchmarks.latency import best_exported
    from gandapt.benchmarks.pipeline import run_peer

    rows = (result["sections"].get("latency") or {}).get("rows", [])
    models = _models(options, s, model)[: s["peer_models"]]
    return {"models": [run_peer(ws, m, best_exported(rows, m.name), s["peer_s"]) for m in models]}


def _resolve_inputs(options: BenchOptions) -> Tuple[Path, Path]:
    from gandapt.samples import base_model, bundle

    model = Path(options.model) if options.model else base_model()
    if not model.is_file():
        raise GandaptError(f"model {model} not found; give a checkpoint with --model")
    if options.model:  # a user's file that is no generator fails here, not as a "failed" section
        from gandapt.checkpoint.detect import load

        load(model, with_d=False)
    needs_bundle = any(s in options.only for s in ("switching", "pipeline"))
    b = Path(options.bundle) if options.bundle else (bundle() if needs_bundle else Path("-"))
    if needs_bundle and not b.is_dir():
        raise GandaptError(f"bundle {b} not found; give a folder written by gandapt-export with --bundle")
    if needs_bundle:
        from gandapt.runtime.bundle import open_bundle

        open_bundle(b)  # a broken bundle (manifest, graphs, pack) fails here with its reason
    return model, b


def _json_path(out: Path, kind: str, mode: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{BENCHMARK}-{kind}-{mode}-{stamp}.json"
    k = 1
    while path.exists():  # never overwrite a result
        path = out / f"{BENCHMARK}-{kind}-{mode}-{stamp}-{k}.json"
        k += 1
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
