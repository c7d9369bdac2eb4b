"""Timing loops: warm-up, then repeats of timed calls; p50/p90/p99 as the median over repeats.

Every call is timed on its own with ``time.perf_counter`` (a GPU callable must synchronise before it
returns). The number of calls adapts to the callable's cost: about ``target_s`` seconds in all, never
fewer than ``min_iters`` nor more than ``max_iters``, so a 10 ms graph gets hundreds of samples and a
5 s one gets three. With enough samples they are split into ``repeats`` consecutive groups and each
percentile is the median of the groups' percentiles, which keeps one disturbed stretch (another
process waking up) from moving the result.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

MIN_PER_REPEAT = 5  # fewer samples than repeats × this: one group


def percentiles(ms: Sequence[float]) -> Dict[str, float]:
    """p50/p90/p99/mean/min of ``ms``."""
    a = np.asarray(ms, dtype=np.float64)
    return {"p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean()), "min_ms": float(a.min())}


def summarize(ms: Sequence[float], batch: int = 1, repeats: int = 3) -> Dict[str, Any]:
    """Stats of per-call times ``ms``: median over ``repeats`` groups of each percentile, FPS at p50.

    Returns:
        ``{p50_ms, p90_ms, p99_ms, mean_ms, min_ms, fps, n, repeats}``; ``fps`` is images per second
        (``batch`` images per call).
    """
    ms = list(ms)
    if not ms:
        raise ValueError("no samples")
    groups = repeats if len(ms) >= repeats * MIN_PER_REPEAT else 1
    parts = [percentiles(g) for g in np.array_split(np.asarray(ms), groups)]
    out: Dict[str, Any] = {k: float(np.median([p[k] for p in parts])) for k in parts[0]}
    out["fps"] = batch * 1e3 / out["p50_ms"] if out["p50_ms"] > 0 else None
    out["n"], out["repeats"] = len(ms), groups
    return out


def _timed(fn: Callable[[], Any]) -> Tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1e3, out


def measure(fn: Callable[[], Any], batch: int = 1, target_s: float = 2.0, min_iters: int = 3,
            max_iters: int = 200, repeats: int = 3, warmup_s: float = 0.3, max_warmup: int = 5) -> Tuple[Dict[str, Any], Any]:
    """Warm ``fn`` up, then time about ``target_s`` seconds of calls.

    Args:
        fn: the call to time (no arguments); its return value of the first call is handed back.
        batch: images per call, for FPS.
        target_s: time to spend on timed calls.
        min_iters, max_iters: bounds on the number of timed calls.
        repeats: groups the timed calls are split into (see the module docstring).
        warmup_s: warm-up calls continue until this much time has passed (at least one call, at most
            ``max_warmup``).

    Returns:
        ``(stats, first_output)``: :func:`summarize`'s dict plus ``first_call_ms`` and ``warmup``.
    """
    first_ms, first_out = _timed(fn)
    est, n_warm, spent = first_ms, 1, first_ms / 1e3
    while n_warm < max_warmup and spent < warmup_s:
        est, _ = _timed(fn)
        n_warm += 1
        spent += est / 1e3
    n = int(min(max_iters, max(min_iters, target_s * 1e3 // max(est, 1e-3))))
    ms = [_timed(fn)[0] for _ in range(n)]
    stats = summarize(ms, batch, repeats)
    stats.update(first_call_ms=first_ms, warmup=n_warm)
    return stats, first_out


def measure_interleaved(fns: Mapping[str, Callable[[], Any]], batch: int = 1, target_s: float = 4.0,
                        min_iters: int = 3, max_iters: int = 200, repeats: int = 3) -> Dict[str, Dict[str, Any]]:
    """Time several callables side by side: one call of each per round, the order rotating each round.

    Whatever else the machine does affects every contender alike, so their ratio is meaningful even
    when the absolute numbers are not.

    Returns:
        ``{name: stats}`` as :func:`summarize`.
    """
    names = list(fns)
    est = 0.0
    for name in names:  # warm-up: two calls each
        for _ in range(2):
            ms, _ = _timed(fns[name])
        est += ms
    n = int(min(max_iters, max(min_iters, target_s * 1e3 // max(est, 1e-3))))
    samples: Dict[str, List[float]] = {name: [] for name in names}
    for i in range(n):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            samples[name].append(_timed(fns[name])[0])
    return {name: summarize(samples[name], batch, repeats) for name in names}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """``a / b``, or None when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return float(a) / float(b)
