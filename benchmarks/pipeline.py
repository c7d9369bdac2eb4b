"""End to end: ``gandapt-run`` on the shipped clip, headless, recording to a file; and the peer
comparison: the same weights through the PyTorch eager reference path and the best exported path.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from gandapt.benchmarks.timing import measure_interleaved, ratio


def run_pipeline(bundle_path: Any, frames: int = 60, threads: Optional[int] = None, backend: str = "auto",
                 switch_every: Sequence = (0,)) -> Dict[str, Any]:
    """Run the live pipeline on the sample clip (looped) into a temporary MP4, once per ``switch_every``.

    Returns:
        ``{'runs': [{switch_every, fps, stages_ms, instance_ids_constant, ...}], 'frames': frames}``;
        each run's fields are :func:`gandapt.runtime.pipeline.run`'s summary.
    """
    from gandapt.runtime.pipeline import RunOptions, run

    runs: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gandapt-bench-run-") as tmp:
        for every in switch_every:
            options = RunOptions(bundle=str(bundle_path), source="sample", frames=frames, loop=True,
                                 output=str(Path(tmp) / f"run-{every}.mp4"), window=False, backend=backend,
                                 threads=threads, switch_every=every, force=True)
            with contextlib.redirect_stderr(io.StringIO()):  # the run's own stats table; we keep the numbers
                summary = run(options)
            summary.pop("output", None)
            runs.append({"switch_every": every, **summary})
    return {"source": "sample (the shipped clip, looped)", "frames": frames, "runs": runs}


def run_peer(ws: Any, spec: Any, best: Optional[Dict[str, Any]], target_s: float = 4.0) -> Dict[str, Any]:
    """Time torch eager (reference and decomposed forms) against the best exported path, interleaved.

    Args:
        ws: the :class:`~gandapt.benchmarks.runners.Workspace`.
        spec: the model (same weights for every contender).
        best: the latency row of the fastest exported path (None: onnxruntime-cpu decomposed fp32).
        target_s: seconds of interleaved rounds.

    Returns:
        Per contender p50/p99/FPS, and ``ratio_reference`` / ``ratio_decomposed`` = eager p50 over the
        exported path's p50 (how many times faster the exported path is), at batch 1.
    """
    from gandapt.benchmarks.latency import Cell, _runner

    best = best or {"backend": "onnxruntime-cpu", "form": "decomposed", "precision": "fp32"}
    exported = Cell(best["backend"], best["form"], best["precision"], (1,))
    fns = {
        "torch-eager-reference": _runner(ws, spec, Cell("torch-eager", "reference", "fp32", (1,)), 1)[0],
        "torch-eager-decomposed": _runner(ws, spec, Cell("torch-eager", "decomposed", "fp32", (1,)), 1)[0],
        "exported": _runner(ws, spec, exported, 1)[0],
    }
    stats = measure_interleaved(fns, batch=1, target_s=target_s)
    ws.drop(spec)
    p50 = {k: v["p50_ms"] for k, v in stats.items()}
    return {"model": spec.name, "batch": 1, "exported": {"backend": exported.backend, "form": exported.form,
                                                         "precision": exported.precision},
            "stats": stats, "ratio_reference": ratio(p50["torch-eager-reference"], p50["exported"]),
            "ratio_decomposed": ratio(p50["torch-eager-decomposed"], p50["exported"])}
