"""Memory scaling: N domains as runtime tensors vs N fine-tuned generator copies.

Measured on the embedded model: a domain pack of N domains (random non-identity values in every entry
of the shipped pack's stages) is written, then loaded into the runtime's ``[N, D]`` float32 vectors;
N generator copies (every weight perturbed, as a full fine-tune changes them all) are written as
native model files, then loaded. Bytes on disk are the files' sizes; bytes in memory are the loaded
arrays' and parameters' own sizes (not the process's resident memory, which the allocator blurs);
load time is wall time until the tensors are usable.

Beyond the measured N (copies: ``max_copies``) and for FFHQ config-f, sizes and times are computed
from the measured per-item cost and marked ``measured: false``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from gandapt.benchmarks.runners import STAGES

COUNTS = (1, 10, 100, 1000)


def _pack_of(n: int, config: Any, fingerprint: Optional[str], layout: Any, rng: np.random.Generator) -> Any:
    from gandapt.pack import Domain, DomainPack

    domains = []
    for i in range(n):
        vec = layout.identity() + 0.01 * rng.standard_normal(layout.size).astype(np.float32)
        domains.append(Domain.from_vector(f"d{i}", layout, vec, {"method": "bench"}))
    return DomainPack(domains, config, fingerprint)


def measure_domains(model: Any, counts: Sequence[int], root: Path, seed: int = 0) -> List[Dict[str, Any]]:
    """Pack file size, in-memory vector bytes and load time for each N in ``counts``."""
    from gandapt.layout import DomainLayout
    from gandapt.pack import load_pack, save_pack

    layout = DomainLayout(model.config, STAGES)
    rng = np.random.default_rng(seed)
    rows = []
    for n in counts:
        path = root / f"pack-{n}.safetensors"
        save_pack(_pack_of(n, model.config, model.fingerprint, layout, rng), path, force=True)
        t = time.perf_counter()
        pack = load_pack(path)
        vectors = pack.vectors(layout=layout)  # [N, D]: what the runtime holds
        load_s = time.perf_counter() - t
        rows.append({"n": n, "disk_bytes": path.stat().st_size, "memory_bytes": int(vectors.nbytes),
                     "load_s": load_s, "measured": True})
        path.unlink()
    return rows


def measure_copies(model: Any, counts: Sequence[int], root: Path, seed: int = 0) -> List[Dict[str, Any]]:
    """Total file size, parameter bytes and load time of N fine-tuned generator copies for each N."""
    import torch

    import gandapt
    from gandapt.checkpoint import save_native

    g = torch.Generator().manual_seed(seed)
    G = model.G.eval().float()
    base = {k: v.clone() for k, v in G.state_dict().items()}
    files: List[Path] = []
    rows = []
    for n in sorted(counts):
        while len(files) < n:  # a distinct copy: every floating tensor moved a little
            with torch.no_grad():
                for k, v in G.state_dict().items():
                    if v.is_floating_point():
                        v.copy_(base[k] + 1e-3 * torch.randn(v.shape, generator=g))
            files.append(save_native(root / f"copy-{len(files)}.pt", G, force=True))
        t = time.perf_counter()
        loaded = [gandapt.load(f).G for f in files[:n]]
        load_s = time.perf_counter() - t
        mem = sum(int(p.numel() * p.element_size()) for G_ in loaded for p in list(G_.parameters()) + list(G_.buffers()))
        rows.append({"n": n, "disk_bytes": sum(f.stat().st_size for f in files[:n]), "memory_bytes": mem,
                     "load_s": load_s, "measured": True})
        del loaded
    with torch.no_grad():
        G.load_state_dict(base)
    for f in files:
        f.unlink()
    return rows


def extrapolate(rows: List[Dict[str, Any]], counts: Sequence[int]) -> List[Dict[str, Any]]:
    """Rows for the ``counts`` not measured, from the per-item cost of the largest measured N."""
    have = {r["n"]: r for r in rows}
    top = max(rows, key=lambda r: r["n"])
    out = list(rows)
    for n in counts:
        if n not in have:
            k = n / top["n"]
            out.append({"n": n, "disk_bytes": int(top["disk_bytes"] * k), "memory_bytes": int(top["memory_bytes"] * k),
                        "load_s": top["load_s"] * k, "measured": False})
    return sorted(out, key=lambda r: r["n"])


def ffhq_computed(counts: Sequence[int]) -> Dict[str, Any]:
    """FFHQ config-f sizes: N domain vectors (fp32, the same stages) vs N generator copies (fp32 weights)."""
    import torch

    from gandapt.config import ffhq1024_config
    from gandapt.generator import Generator
    from gandapt.layout import DomainLayout

    cfg = ffhq1024_config()
    with torch.device("meta"):  # shapes only: no 120 MB allocation
        G = Generator(cfg)
    params = sum(p.numel() for p in G.parameters())
    buffers = sum(b.numel() for b in G.buffers())
    layout = DomainLayout(cfg, STAGES)
    per_copy = (params + buffers) * 4
    per_domain = layout.size * 4
    return {"config": "ffhq1024 config-f", "params": int(params), "buffers": int(buffers), "D": layout.size,
            "stage_sizes": layout.stage_sizes, "bytes_per_copy": per_copy, "bytes_per_domain": per_domain,
            "rows": [{"n": n, "domains_bytes": n * per_domain, "copies_bytes": n * per_copy, "measured": False}
                     for n in counts]}


def run_memory(model_path: Any, counts: Sequence[int] = COUNTS, max_copies: int = 100, seed: int = 0) -> Dict[str, Any]:
    """The memory-scaling section: measured rows for the embedded model plus computed FFHQ rows."""
    import gandapt
    from gandapt.layout import DomainLayout

    model = gandapt.load(model_path)
    layout = DomainLayout(model.config, STAGES)
    with tempfile.TemporaryDirectory(prefix="gandapt-bench-mem-") as tmp:
        domains = measure_domains(model, counts, Path(tmp), seed)
        copies = measure_copies(model, [n for n in counts if n <= max_copies] or [1], Path(tmp), seed)
    copies = extrapolate(copies, counts)
    per_domain = domains[-1]["disk_bytes"] / domains[-1]["n"]
    per_copy = next(r for r in reversed(copies) if r["measured"])
    return {"model": str(model_path), "stages": list(STAGES), "D": layout.size, "stage_sizes": layout.stage_sizes,
            "domains": domains, "copies": copies, "max_measured_copies": max_copies,
            "disk_bytes_per_domain": per_domain,
            "disk_bytes_per_copy": per_copy["disk_bytes"] / per_copy["n"],
            "copy_over_domain": ratio_or_none(per_copy["disk_bytes"] / per_copy["n"], per_domain),
            "ffhq1024": ffhq_computed(counts)}


def ratio_or_none(a: float, b: float) -> Optional[float]:
    return a / b if b else None
