"""matplotlib plots of a results folder's newest runs (imported only when plotting; Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    from gandapt.io import atomic_path

    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def _finish(plt: Any, fig: Any, ax: Any, xlabel: str, ylabel: str, title: str, path: Path) -> Path:
    """Labels, grid and legend shared by every plot; save atomically and free the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def write_plots(folder: Path, runs: List[Dict[str, Any]]) -> List[Path]:
    """The plots of the newest full (else quick) gandapt-bench run and of the newest GPU script run."""
    out: List[Path] = []
    main = next((r for r in runs if r["benchmark"] == "gandapt-bench"), None)
    if main is not None:
        sec = main["sections"]
        if (sec.get("latency") or {}).get("rows"):
            out.append(latency_plot(sec["latency"], main, folder / "latency_vs_resolution.png"))
        if "domains" in (sec.get("memory") or {}):
            out.append(memory_plot(sec["memory"], main, folder / "memory_vs_domains.png"))
    gpu = next((r for r in runs if r["benchmark"] == "gandapt-bench-gpu" and r.get("rows")), None)
    if gpu is not None:
        out.append(gpu_plot(gpu, folder / "gpu_latency.png"))
    return out


def _title(run: Dict[str, Any], what: str) -> str:
    m = run["machine"]
    device = (m.get("gpu") or {}).get("name") or f"{m.get('cpu')}, {m.get('threads')} threads"
    return f"{what}\n{run.get('mode')} run {run.get('created', '')[:10]} — {device}"


def latency_plot(sec: Dict[str, Any], run: Dict[str, Any], path: Path) -> Path:
    """p50 latency at batch 1 vs resolution, one line per backend/form/precision, plus the floor."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    rows = [r for r in sec["rows"] if r.get("status") == "ok" and r["batch"] == 1]
    lines: Dict[str, List] = {}
    for r in rows:
        lines.setdefault(f"{r['backend']} {r['form']} {r['precision']}", []).append((r["resolution"], r["p50_ms"]))
    for label, pts in sorted(lines.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    floor = sorted({(r["resolution"], r["floor_ms"]) for r in sec["rows"] if r["batch"] == 1 and r.get("floor_ms")})
    if floor:
        ax.plot([p[0] for p in floor], [p[1] for p in floor], "k--", label="compute floor")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted({r["resolution"] for r in sec["rows"]}))
    ax.get_xaxis().set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax.get_yaxis().set_major_formatter(plt.matplotlib.ticker.FormatStrFormatter("%g"))
    return _finish(plt, fig, ax, "resolution (px)", "p50 latency, batch 1 (ms)", _title(run, "Generator latency vs resolution"), path)


def memory_plot(sec: Dict[str, Any], run: Dict[str, Any], path: Path) -> Path:
    """Bytes on disk vs number of domains: domain tensors vs fine-tuned copies (embedded; FFHQ computed)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    d = sec["domains"]
    ax.plot([r["n"] for r in d], [r["disk_bytes"] for r in d], "o-", color="C0", label="embedded: N domains (measured)")
    meas = [r for r in sec["copies"] if r["measured"]]
    comp = [r for r in sec["copies"] if not r["measured"]]
    ax.plot([r["n"] for r in meas], [r["disk_bytes"] for r in meas], "s-", color="C3", label="embedded: N copies (measured)")
    if comp:
        edge = meas[-1:] + comp
        ax.plot([r["n"] for r in edge], [r["disk_bytes"] for r in edge], "s--", color="C3", alpha=0.6,
                label="embedded: N copies (computed)")
    ff = sec["ffhq1024"]["rows"]
    ax.plot([r["n"] for r in ff], [r["domains_bytes"] for r in ff], ":", color="C0", label="FFHQ-1024: N domains (computed)")
    ax.plot([r["n"] for r in ff], [r["copies_bytes"] for r in ff], ":", color="C3", label="FFHQ-1024: N copies (computed)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return _finish(plt, fig, ax, "number of domains N", "bytes on disk", _title(run, "Memory vs number of domains"), path)


def gpu_plot(run: Dict[str, Any], path: Path) -> Path:
    """GPU script: eager vs CUDA-graph p50 per resolution and precision."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for prec in sorted({r["precision"] for r in run["rows"]}):
        rows = sorted((r for r in run["rows"] if r["precision"] == prec and r.get("status", "ok") == "ok"),
                      key=lambda r: r["resolution"])
        for mode, style in (("eager", "o-"), ("cuda_graph", "s--")):
            pts = [(r["resolution"], r[mode]["p50_ms"]) for r in rows if r.get(mode)]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"{mode} {prec}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    return _finish(plt, fig, ax, "resolution (px)", "p50 latency, batch 1 (ms)", _title(run, "PyTorch on the GPU: eager vs CUDA graphs"), path)
