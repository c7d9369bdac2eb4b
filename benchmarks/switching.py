"""Domain switching through the runtime: the cost of a switch and of a blend, proof that nothing is
re-initialised, and frame throughput with a switch every frame vs none.

It drives exactly what ``gandapt-run`` does per switch: :class:`~gandapt.runtime.controller.DomainController`
picks the vector, :meth:`Backend.update` copies it into the bound ``domain`` input in place. The proof
of zero re-initialisation is three observations made around the timed loops: the backend's
``instance_id`` (the id of its session or engine) is unchanged, no onnxruntime ``InferenceSession``
was constructed (its constructor is counted while the loops run), and after a switch the output equals
a run that is fed the same domain explicitly, so the switch did take effect.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Dict, Iterator, List

import numpy as np

from gandapt.benchmarks.timing import measure_interleaved, ratio, summarize
from gandapt.errors import GandaptError


@contextlib.contextmanager
def count_sessions() -> Iterator[List[int]]:
    """Count ``onnxruntime.InferenceSession`` constructions inside the block (``[count]``)."""
    counter = [0]
    try:
        import onnxruntime as ort
    except ImportError:
        yield counter
        return
    cls = ort.InferenceSession
    original = cls.__init__

    def counting(self, *args, **kwargs):
        counter[0] += 1
        return original(self, *args, **kwargs)

    cls.__init__ = counting
    try:
        yield counter
    finally:
        cls.__init__ = original


def _rss_mb() -> float:
    try:
        import os

        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def _us(ms: List[float]) -> Dict[str, float]:
    s = summarize(ms)
    return {"p50_us": s["p50_ms"] * 1e3, "p90_us": s["p90_ms"] * 1e3, "p99_us": s["p99_ms"] * 1e3,
            "mean_us": s["mean_ms"] * 1e3, "n": s["n"]}


def run_switching(bundle_path: Any, backend: str = "auto", threads: int = 1, switches: int = 2000,
                  frames_s: float = 3.0, seed: int = 0) -> Dict[str, Any]:
    """Measure switching on ``bundle_path``'s synthesis graph.

    Args:
        bundle_path: a bundle folder with at least two domains.
        backend: runtime backend name (``auto``: TensorRT when it can run, else onnxruntime).
        threads: inference threads.
        switches: timed switches (and as many blend changes).
        frames_s: seconds spent on the frames-with/without-switching comparison.
        seed: seed of the latents.

    Raises:
        GandaptError: a bundle without a domain input or with fewer than two domains.
    """
    from gandapt.runtime.backends import open_backend
    from gandapt.runtime.bundle import open_bundle
    from gandapt.runtime.controller import DomainController

    bundle = open_bundle(bundle_path)
    if bundle.domain_size == 0 or len(bundle.domain_names) < 2:
        raise GandaptError(f"bundle {bundle.path} has {len(bundle.domain_names)} domain(s); the switching benchmark "
                           "needs two or more: give --bundle with a domain pack")
    cfg = bundle.manifest.config
    rng = np.random.default_rng(seed)
    ws = (0.5 * rng.standard_normal((1, 2 * int(np.log2(cfg["img_resolution"])) - 2, cfg["w_dim"]))).astype(np.float32)
    controller = DomainController(bundle)
    out: Dict[str, Any] = {"bundle": str(bundle.path), "domains": bundle.domain_names, "D": bundle.domain_size,
                           "vector_bytes": bundle.domain_size * 4}
    with open_backend(backend, bundle, "synthesis", threads=threads) as synth:
        vec, _ = controller.vector()
        synth.bind("domain", vec[None])
        synth.infer({"ws": ws})  # warm-up; sessions exist from here on
        ident0, rss0 = synth.instance_id, _rss_mb()
        with count_sessions() as created:
            # A switch as the pipeline does it: controller step, vector, in-place update.
            update_ms, switch_ms, blend_ms = [], [], []
            names = bundle.domain_names
            for i in range(switches):
                v = bundle.vectors[names[i % len(names)]][None]
                t = time.perf_counter()
                synth.update("domain", v)
                update_ms.append((time.perf_counter() - t) * 1e3)
            for _ in range(switches):
                t = time.perf_counter()
                controller.step(1)
                v, _ = controller.vector()
                synth.update("domain", v[None])
                switch_ms.append((time.perf_counter() - t) * 1e3)
            controller.toggle_blend()
            for i in range(switches):
                t = time.perf_counter()
                controller.nudge(0.1 if (i // 10) % 2 == 0 else -0.1)
                v, _ = controller.vector()
                synth.update("domain", v[None])
                blend_ms.append((time.perf_counter() - t) * 1e3)
            controller.toggle_blend()
            out["throughput"] = _throughput(synth, bundle, ws, frames_s)
            out["proof"] = _proof(synth, bundle, ws)
        out["proof"].update(instance_id_constant=synth.instance_id == ident0, sessions_created=created[0],
                            rss_growth_mb=round(_rss_mb() - rss0, 2))
        out["proof"]["zero_reinit"] = bool(out["proof"]["instance_id_constant"] and created[0] == 0
                                           and out["proof"]["switch_matches_fed"])
        out["backend"] = synth.name
    out.update(update=_us(update_ms), switch=_us(switch_ms), blend=_us(blend_ms))
    return out


def _throughput(synth: Any, bundle: Any, ws: np.ndarray, seconds: float) -> Dict[str, Any]:
    """Frames per second with a switch before every frame vs none, measured side by side."""
    names = bundle.domain_names
    state = {"i": 0}

    def plain() -> Any:
        return synth.infer({"ws": ws})

    def switching() -> Any:
        state["i"] += 1
        synth.update("domain", bundle.vectors[names[state["i"] % len(names)]][None])
        return synth.infer({"ws": ws})

    stats = measure_interleaved({"no_switch": plain, "switch_every_frame": switching}, target_s=seconds)
    return {"no_switch_fps": stats["no_switch"]["fps"], "switch_every_frame_fps": stats["switch_every_frame"]["fps"],
            "no_switch_p50_ms": stats["no_switch"]["p50_ms"],
            "switch_every_frame_p50_ms": stats["switch_every_frame"]["p50_ms"],
            "ratio": ratio(stats["switch_every_frame"]["fps"], stats["no_switch"]["fps"]),
            "frames": stats["no_switch"]["n"]}


def _proof(synth: Any, bundle: Any, ws: np.ndarray) -> Dict[str, Any]:
    """A switch changes the output, and to exactly what feeding that domain gives."""
    a, b = bundle.domain_names[:2]
    synth.update("domain", bundle.vectors[a][None])
    img_a = synth.infer({"ws": ws})["img"]
    synth.update("domain", bundle.vectors[b][None])
    img_b = synth.infer({"ws": ws})["img"]
    fed_b = synth.infer({"ws": ws, "domain": bundle.vectors[b][None]})["img"]
    diff = float(np.abs(img_b - fed_b).max())
    return {"domains": [a, b], "switch_changes_output": float(np.abs(img_a - img_b).max()),
            "switched_vs_fed_max_abs_diff": diff, "switch_matches_fed": diff <= 1e-5}
