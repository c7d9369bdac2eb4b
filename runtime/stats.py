"""Per-stage timings of a run: capture, crop, encode, map, synthesize, output; printed and saved as JSON."""

from __future__ import annotations

import json
import threading
import time
from typing import Dict, List, Optional

import numpy as np

STAGES = ("capture", "crop", "encode", "map", "synthesize", "output")


class StageStats:
    """Thread-safe collector of stage durations (ms) and frame counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ms: Dict[str, List[float]] = {s: [] for s in STAGES}
        self.frames_in = self.frames_out = self.dropped = self.switches = 0
        self.t_start: Optional[float] = None
        self.t_end: Optional[float] = None

    def add(self, stage: str, ms: float) -> None:
        with self._lock:
            self.ms.setdefault(stage, []).append(float(ms))

    def count(self, field: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, field, getattr(self, field) + n)

    def start(self) -> None:
        self.t_start = time.perf_counter()

    def stop(self) -> None:
        self.t_end = time.perf_counter()

    @property
    def seconds(self) -> float:
        if self.t_start is None:
            return 0.0
        return (self.t_end or time.perf_counter()) - self.t_start

    def summary(self) -> Dict[str, object]:
        """JSON-ready: frames, drops, switches, end-to-end FPS, and p50/p90/p99/mean ms per stage."""
        with self._lock:
            stages = {}
            for name, values in self.ms.items():
                if values:
                    a = np.asarray(values)
                    stages[name] = {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 3),
                                    "p90": round(float(np.percentile(a, 90)), 3),
                                    "p99": round(float(np.percentile(a, 99)), 3), "mean": round(float(a.mean()), 3)}
            secs = self.seconds
            return {"frames_in": self.frames_in, "frames_out": self.frames_out, "dropped": self.dropped,
                    "switches": self.switches, "seconds": round(secs, 3),
                    "fps": round(self.frames_out / secs, 2) if secs > 0 else 0.0, "stages_ms": stages}

    def lines(self) -> List[str]:
        """A short human-readable table for stderr."""
        s = self.summary()
        out = [f"{s['frames_out']} frames in {s['seconds']:.1f} s: {s['fps']:.1f} FPS end to end"
               + (f", {s['dropped']} stale camera frames dropped" if s["dropped"] else "")
               + (f", {s['switches']} domain switches" if s["switches"] else "")]
        for name, st in s["stages_ms"].items():
            out.append(f"  {name:<11} p50 {st['p50']:8.2f} ms   p90 {st['p90']:8.2f} ms   p99 {st['p99']:8.2f} ms")
        return out

    def write(self, path: str, extra: Optional[dict] = None) -> None:
        from gandapt.io import atomic_write_bytes

        atomic_write_bytes(path, (json.dumps({**(extra or {}), **self.summary()}, indent=2) + "\n").encode(), force=True)
