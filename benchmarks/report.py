"""The Markdown summary and the plots, regenerated from the JSON files in a results folder.

``summary.md`` shows the newest run of each (benchmark, device kind, mode), full runs first; the plots
(``latency_vs_resolution.png``, ``memory_vs_domains.png``, and ``gpu_latency.png`` when a GPU run
exists) come from the newest full run, else the newest quick one. Nothing here measures anything, so
``gandapt-bench --report-only`` can rebuild them at any time. Other JSON files in the folder (the
adaptation table, the training-step profile) are left alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from gandapt.errors import GandaptError
from gandapt.io import atomic_write_bytes

SUMMARY = "summary.md"
BENCHMARKS = ("gandapt-bench", "gandapt-bench-gpu")
PLOTS = ("latency_vs_resolution.png", "memory_vs_domains.png", "gpu_latency.png")


def load_runs(folder: Path) -> List[Dict[str, Any]]:
    """Every gandapt-bench JSON in ``folder`` (newest first), each with its ``_file`` name."""
    runs = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("benchmark") in BENCHMARKS:
            data["_file"] = path.name
            runs.append(data)
    return sorted(runs, key=lambda r: (r.get("created", ""), r["_file"]), reverse=True)


def latest(runs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The newest run of each (benchmark, kind, mode): full runs first, then quick, GPU script last."""
    seen, out = set(), []
    for r in runs:
        key = (r["benchmark"], r.get("machine", {}).get("kind"), r.get("mode"))
        if key not in seen:
            seen.add(key)
            out.append(r)
    order = {"full": 0, "quick": 1}
    return sorted(out, key=lambda r: (r["benchmark"] != "gandapt-bench", order.get(r.get("mode"), 2)))


def write_report(folder: Path, plots: bool = True) -> List[Path]:
    """Write ``summary.md`` (and the plots) into ``folder``; returns the files written."""
    folder = Path(folder)
    runs = latest(load_runs(folder))
    if not runs:
        raise GandaptError(f"{folder} holds no gandapt-bench results (gandapt-bench-*.json); run gandapt-bench "
                           "first, or give the --out folder it wrote to")
    written: List[Path] = []
    notes: List[str] = []
    if plots and runs:
        try:
            from gandapt.benchmarks.plots import write_plots

            written += write_plots(folder, runs)
        except ImportError:
            notes.append("Plots not written: matplotlib is not installed (`pip install matplotlib`).")
    shown = [name for name in PLOTS if (folder / name).is_file()]  # just written, or from an earlier run
    text = render(runs, shown, notes)
    written.insert(0, atomic_write_bytes(folder / SUMMARY, text.encode(), force=True))
    return written


# ---- Markdown ---------------------------------------------------------------------------------------
def fmt_bytes(n: Optional[float]) -> str:
    if n is None:
        return "–"
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{int(n)} B"


def fmt(x: Optional[float], digits: int = 2, suffix: str = "") -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}{suffix}"


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> List[str]:
    header = list(header)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out + [""]


def render(runs: List[Dict[str, Any]], plot_files: List[str], notes: List[str]) -> str:
    lines = ["# gandapt-bench results", "",
             "Regenerated from the JSON files in this folder by `gandapt-bench` (or `gandapt-bench --report-only`); "
             "do not edit by hand. Numbers hold only for the machine and load recorded with each run; compare "
             "runs only on the same device kind.", ""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    for name in plot_files:
        lines += [f"![{name}]({name})", ""]
    if not runs:
        lines.append("No results yet: run `gandapt-bench --quick` (or the full `gandapt-bench`).")
    for run in runs:
        lines += (render_gpu(run) if run["benchmark"] == "gandapt-bench-gpu" else render_run(run))
    return "\n".join(lines).rstrip() + "\n"


def machine_line(run: Dict[str, Any]) -> str:
    m = run.get("machine", {})
    v = m.get("versions", {})
    gpu = (m.get("gpu") or {}).get("name")
    return (f"Machine: {m.get('cpu')}{' + ' + gpu if gpu else ''}, {m.get('threads')} threads of "
            f"{m.get('cpu_threads_available')}, load average {m.get('load_average_start')} → {m.get('load_average_end')}; "
            f"torch {v.get('torch')}, onnxruntime {v.get('onnxruntime') or v.get('onnxruntime-gpu')}, "
            f"gandapt {v.get('gandapt')} ({m.get('git') or 'no git'}); file `{run['_file']}`, {run.get('wall_s')} s.")


def render_run(run: Dict[str, Any]) -> List[str]:
    s = run.get("sections", {})
    lines = [f"## {run['machine'].get('kind', '?').upper()} {run.get('mode')} run, {run.get('created')}", "",
             machine_line(run), ""]
    lines += headline(s)
    for name, fn in (("latency", latency_md), ("switching", switching_md), ("memory", memory_md),
                     ("pipeline", pipeline_md), ("peer", peer_md)):
        sec = s.get(name)
        if sec is None:
            continue
        if sec.get("status") == "failed":
            lines += [f"### {name}", "", f"Failed: {sec.get('reason')}", ""]
            continue
        lines += fn(sec)
    return lines


def headline(s: Dict[str, Any]) -> List[str]:
    out = []
    for p in (s.get("peer") or {}).get("models", []):
        e = p["exported"]
        out.append(f"- {p['model']}, batch 1: {e['backend']} {e['form']} {e['precision']} is "
                   f"{fmt(p['ratio_decomposed'])}× torch eager (decomposed form) and {fmt(p['ratio_reference'])}× "
                   "the eager reference form, measured side by side.")
    rows = [r for r in (s.get("latency") or {}).get("rows", []) if r.get("status") == "ok" and r.get("x_floor")]
    if rows:
        big = max(r["resolution"] for r in rows)
        best = min((r for r in rows if r["resolution"] == big and r["batch"] == 1), key=lambda r: r["x_floor"], default=None)
        if best:
            out.append(f"- Closest to the compute floor at {big} px, batch 1: {best['backend']} {best['form']} "
                       f"{best['precision']} at {fmt(best['x_floor'], 1)}× the floor ({fmt(best['p50_ms'])} ms).")
    sw = s.get("switching") or {}
    if "switch" in sw:
        out.append(f"- Domain switch: p50 {fmt(sw['switch']['p50_us'], 1)} µs, p99 {fmt(sw['switch']['p99_us'], 1)} µs "
                   f"({sw['backend']}); zero re-initialisation: {sw['proof']['zero_reinit']}.")
    mem = s.get("memory") or {}
    if "disk_bytes_per_domain" in mem:
        ff = mem["ffhq1024"]
        out.append(f"- Bytes per domain on disk: {fmt_bytes(mem['disk_bytes_per_domain'])} vs "
                   f"{fmt_bytes(mem['disk_bytes_per_copy'])} per fine-tuned copy (embedded model); FFHQ-1024: "
                   f"{fmt_bytes(ff['bytes_per_domain'])} vs {fmt_bytes(ff['bytes_per_copy'])}.")
    return out + [""] if out else []


def latency_md(sec: Dict[str, Any]) -> List[str]:
    floor = sec.get("floor", {}).get("fp32", {})
    lines = ["### Latency (synthesis graph, domain stages " + ", ".join(sec.get("stages", [])) + ")", "",
             f"Compute floor: {fmt(floor.get('best_gflops'), 1)} GFLOP/s measured (matmul {fmt(floor.get('matmul_gflops'), 1)}, "
             f"3×3 conv {fmt(floor.get('conv_gflops'), 1)}, onnxruntime 3×3 conv {fmt(floor.get('ort_conv_gflops'), 1)}, {floor.get('device')}, {floor.get('threads')} threads); "
             "FLOPs per image from the layer table:", ""]
    lines += table(["model", "resolution", "channels", "GFLOP/img (impl)", "GFLOP/img (nominal)", "note"],
                   [[m["name"], m["config"]["img_resolution"], ",".join(map(str, m["config"]["channels"])),
                     fmt(m["flops"]["impl_total"] / 1e9, 3), fmt(m["flops"]["nominal_total"] / 1e9, 3), m.get("note", "")]
                    for m in sec.get("models", [])])
    ok = [r for r in sec.get("rows", []) if r.get("status") == "ok"]
    lines += table(["model", "backend", "form", "precision", "batch", "p50 ms", "p90 ms", "p99 ms", "img/s", "× floor",
                    "× eager", "max diff"],
                   [[r["model"], r["backend"], r["form"], r["precision"], r["batch"], fmt(r["p50_ms"]), fmt(r["p90_ms"]),
                     fmt(r["p99_ms"]), fmt(r["fps"], 1), fmt(r.get("x_floor"), 1), fmt(r.get("vs_eager")),
                     "–" if r.get("max_abs_diff") is None else f"{r['max_abs_diff']:.1e}"] for r in ok])
    other = [r for r in sec.get("rows", []) if r.get("status") != "ok"]
    if other:
        lines += ["Not measured:", ""]
        lines += [f"- {r['model']} {r['backend']} {r['form']} {r['precision']} b{r['batch']}: {r['status']} — {r['reason']}"
                  for r in other] + [""]
    return lines


def switching_md(sec: Dict[str, Any]) -> List[str]:
    p, t = sec["proof"], sec["throughput"]
    lines = [f"### Domain switching ({sec['backend']}, D = {sec['D']}, {fmt_bytes(sec['vector_bytes'])} per vector)", ""]
    lines += table(["operation", "p50 µs", "p90 µs", "p99 µs", "n"],
                   [[name, fmt(sec[key]["p50_us"], 1), fmt(sec[key]["p90_us"], 1), fmt(sec[key]["p99_us"], 1), sec[key]["n"]]
                    for name, key in (("in-place update of the bound input", "update"),
                                      ("switch (controller + update)", "switch"), ("blend (controller + update)", "blend"))])
    lines += [f"Frames: {fmt(t['no_switch_fps'], 1)} FPS without switching vs {fmt(t['switch_every_frame_fps'], 1)} FPS "
              f"with a switch every frame (ratio {fmt(t['ratio'], 3)}, interleaved).",
              f"Zero re-initialisation: instance id constant {p['instance_id_constant']}, sessions created "
              f"{p['sessions_created']}, switched output equals fed domain {p['switch_matches_fed']} "
              f"(max diff {p['switched_vs_fed_max_abs_diff']:.1e}), resident memory growth {p['rss_growth_mb']} MiB.", ""]
    return lines


def memory_md(sec: Dict[str, Any]) -> List[str]:
    ff = {r["n"]: r for r in sec["ffhq1024"]["rows"]}
    copies = {r["n"]: r for r in sec["copies"]}
    lines = [f"### Memory scaling (embedded model, D = {sec['D']} floats per domain)", ""]
    rows = []
    for d in sec["domains"]:
        c = copies.get(d["n"], {})
        mark = "" if c.get("measured", True) else " *"
        rows.append([d["n"], fmt_bytes(d["disk_bytes"]), fmt_bytes(d["memory_bytes"]), fmt(d["load_s"] * 1e3, 1),
                     fmt_bytes(c.get("disk_bytes")) + mark, fmt_bytes(c.get("memory_bytes")) + mark,
                     fmt(c.get("load_s", 0) * 1e3, 1) + mark, fmt_bytes(ff.get(d["n"], {}).get("domains_bytes")),
                     fmt_bytes(ff.get(d["n"], {}).get("copies_bytes"))])
    lines += table(["N", "domains: disk", "domains: memory", "domains: load ms", "copies: disk", "copies: memory",
                    "copies: load ms", "FFHQ-1024 domains", "FFHQ-1024 copies"], rows)
    lines += [f"\\* computed from the largest measured N ({sec['max_measured_copies']} copies); FFHQ-1024 columns are "
              f"computed: {sec['ffhq1024']['params']:,} parameters + {sec['ffhq1024']['buffers']:,} buffer values per "
              f"copy vs D = {sec['ffhq1024']['D']} floats per domain, fp32.", ""]
    return lines


def pipeline_md(sec: Dict[str, Any]) -> List[str]:
    lines = [f"### Pipeline (`gandapt-run`, {sec['source']}, {sec['frames']} frames, headless)", ""]
    rows = []
    for r in sec["runs"]:
        st = r.get("stages_ms", {})
        rows.append([r["switch_every"] or "never", fmt(r.get("fps"), 1), r.get("backend")]
                    + [fmt(st.get(k, {}).get("p50")) for k in ("capture", "crop", "encode", "synthesize", "output")]
                    + [r.get("instance_ids_constant")])
    lines += table(["switch every", "FPS end to end", "backend", "capture p50 ms", "crop", "encode", "synthesize",
                    "output", "instance ids constant"], rows)
    return lines


def peer_md(sec: Dict[str, Any]) -> List[str]:
    lines = ["### Peer: PyTorch eager vs the best exported path (same weights, interleaved, batch 1)", ""]
    rows = []
    for p in sec.get("models", []):
        for name, st in p["stats"].items():
            rows.append([p["model"], name if name != "exported" else
                         f"exported ({p['exported']['backend']} {p['exported']['form']} {p['exported']['precision']})",
                         fmt(st["p50_ms"]), fmt(st["p99_ms"]), fmt(st["fps"], 1)])
        rows.append([p["model"], "**eager decomposed / exported**", f"**{fmt(p['ratio_decomposed'])}×**", "", ""])
        rows.append([p["model"], "**eager reference / exported**", f"**{fmt(p['ratio_reference'])}×**", "", ""])
    return lines + table(["model", "path", "p50 ms", "p99 ms", "img/s"], rows)


def render_gpu(run: Dict[str, Any]) -> List[str]:
    lines = [f"## GPU script run ({run['machine'].get('gpu', {}).get('name', '?')}), {run.get('created')}", "",
             machine_line(run), ""]
    lines += table(["resolution", "precision", "batch", "eager p50 ms", "CUDA graph p50 ms", "graph speed-up", "status"],
                   [[r["resolution"], r["precision"], r["batch"], fmt(r.get("eager", {}).get("p50_ms")),
                     fmt(r.get("cuda_graph", {}).get("p50_ms")), fmt(r.get("speedup")), r.get("status", "ok")]
                    for r in run.get("rows", [])])
    k = run.get("plugin_kernel", {})
    lines += [f"Plugin kernel benchmark: {k.get('status')}" + (f" — {k.get('reason')}" if k.get("reason") else ""), ""]
    return lines
