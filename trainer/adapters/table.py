"""The adaptation results table: every method vs finetune vs the unadapted model, on avatar targets.

``gandapt-train table --model M --data AVATARS --work DIR`` trains each (method, target, shots) run
that DIR does not hold yet (``--retrain`` reruns them all), evaluates every run once (cached in the
run folder) and renders ``adaptation.json``, ``adaptation.md`` and ``adaptation.png`` (sample rows:
base, the transform's ground truth, each method) into ``benchmarks/results/``. Targets are known
transforms of held-out avatars, so every run also has a paired error. ``--only`` re-measures some rows and
carries the others over (:mod:`.table_carry`).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from gandapt.errors import GandaptError
from gandapt.io import atomic_write_bytes
from gandapt.trainer.adapters.table_carry import (carried_note, carried_rows, check_same_baseline, check_same_targets,
                                                  library_versions, targets_fingerprint)

TARGETS = ("sketch", "ink", "painting")
# 10-shot runs only on these targets: every run costs ~5 min on 2 CPU cores (200 steps + metrics), and the
# 1-shot runs on every target already cover every method; 10-shot shows what more shots buy.
TEN_SHOT_TARGETS = ("sketch",)
HELD_OUT = 500  # the avatar set's last images: targets and FID sets, never seen by the base model's encoder


@dataclass(frozen=True)
class Row:
    """One method configuration of the table (its run options beyond the target)."""

    label: str
    method: str
    options: Dict[str, Any] = field(default_factory=dict)
    shots: Tuple[int, ...] = (1, 10)


# Learning rates are a quarter to a fifth of the papers' (the CLI defaults: finetune 0.002, domain-mod 0.02,
# stylespace 0.05). On this 64-px model those overshoot ink within 10-25 steps (paired L1 +6-13%), and
# domain-mod does so even when trained along the exact paired direction; the smaller steps still move
# every target towards T(G(w)) (benchmarks/results/adaptation_discussion.md has both tables).
ROWS = (
    Row("finetune", "finetune", {"steps": 150, "lr": 0.0005}),
    Row("domain-mod", "domain-mod", {"steps": 150, "lr": 0.004}),
    Row("stylespace", "stylespace", {"steps": 150, "variant": "conv", "lr": 0.01}),
    Row("stylespace-sparse", "stylespace", {"steps": 150, "variant": "conv", "sparse": 0.2, "lr": 0.01}),
    Row("genda", "genda", {"steps": 300}, shots=(1,)),
)


def prepare_targets(data: Path, work: Path, targets=TARGETS) -> Dict[str, Path]:
    """Transform the held-out avatars into each target domain (once)."""
    from gandapt.trainer.data.transforms import transform_dataset
    from gandapt.trainer.metrics.evaluate import list_images

    src = work / "heldout"
    if not src.is_dir():
        files = list_images(data)[-HELD_OUT:]
        tmp = work / ".heldout.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, tmp / f.name)
        tmp.rename(src)
    out = {}
    for name in targets:
        dst = work / "targets" / name
        if not (dst / "dataset.json").is_file():
            transform_dataset(name, src, dst, force=dst.exists(), progress=False)
        out[name] = dst
    return out


def run_dir(work: Path, row: Row, target: str, shots: int) -> Path:
    return work / "runs" / f"{row.label}-{target}-{shots}shot"


def plan(targets: Dict[str, Path], only: Optional[Set[str]] = None) -> List[Tuple[Row, str, int]]:
    """Every (row, target, shots) run, one-shot runs first so a partial table covers every method;
    ``only`` keeps the rows with those labels."""
    return [(row, target, shots) for n in (1, 10) for row in ROWS if only is None or row.label in only
            for target in targets for shots in row.shots if shots == n and (shots == 1 or target in TEN_SHOT_TARGETS)]


def train_runs(model: str, work: Path, targets: Dict[str, Path], retrain: bool = False,
               embedder: str = "vgg", threads: Optional[int] = None, n_fid: int = 250,
               paired_n: int = 128, encoder: Optional[str] = None, only: Optional[Set[str]] = None) -> None:
    """Train every run the work folder lacks (or all, with ``retrain``), evaluating each right after;
    ``only``: just the rows with those labels."""
    from gandapt.trainer.adapters.loop import train_adapter
    from gandapt.trainer.adapters.options import AdapterTrainOptions

    runs = plan(targets, only)
    for i, (row, target, shots) in enumerate(runs):
        out = run_dir(work, row, target, shots)
        enc = None if row.method == "genda" else encoder  # genda has no image direction
        opts = AdapterTrainOptions(method=row.method, model=model, out=str(out), target=str(targets[target]),
                                   shots=shots, name=target, embedder=embedder, threads=threads,
                                   encoder=enc, progress=False, **row.options)
        if not (out / "model.pt").is_file() or retrain or _stale(out, opts):
            print(f"[{i + 1}/{len(runs)}] training {out.name}", flush=True)
            train_adapter(opts, force=True)
            (out / "eval.json").unlink(missing_ok=True)
        _evaluate_run(out, target, targets[target], n_fid, paired_n)


def _stale(out: Path, opts) -> bool:
    """True when the saved run was trained with other options than the table asks for now."""
    saved_path = out / "training_options.json"
    if not saved_path.is_file():
        return True
    try:  # an option added since the run was trained takes its default, which is what the run used
        saved = type(opts).from_dict(json.loads(saved_path.read_text()))
    except (GandaptError, TypeError, ValueError):
        return True

    def plain(o) -> dict:
        return json.loads(json.dumps((o.resolved() if hasattr(o, "resolved") else o).to_dict()))

    ignore = {"out", "model", "progress", "threads", "checkpoint_minutes", "device"}
    old = plain(saved)
    return any(old.get(k) != v for k, v in plain(opts).items() if k not in ignore)


def _evaluate_run(out: Path, target: str, folder: Path, n_fid: int, paired_n: int) -> dict:
    """The run's metrics, computed once and cached in ``eval.json``."""
    from gandapt.trainer.adapters.evaluate import evaluate_domain

    if not _cached(out / "eval.json", n_fid, paired_n):
        _write_json(out / "eval.json", evaluate_domain(str(out / "model.pt"), transform=target,
                                                       target_set=str(folder), n_fid=n_fid, paired_n=paired_n))
    return json.loads((out / "eval.json").read_text())


def _cached(path: Path, n_fid: int, paired_n: int) -> bool:
    """True when ``path`` holds metrics measured with these sample counts."""
    if not path.is_file():
        return False
    r = json.loads(path.read_text())
    return r.get("n_fake") == n_fid and r.get("paired_n") == paired_n


def evaluate_runs(model: str, work: Path, targets: Dict[str, Path], n_fid: int, paired_n: int,
                  only: Optional[Set[str]] = None) -> List[dict]:
    """Metrics of every run (cached in ``eval.json``; ``only``: of the rows with those labels) plus the
    unadapted model per target."""
    import gandapt

    results = []
    for target, folder in targets.items():
        results.append(unadapted_row(model, work, target, folder, n_fid, paired_n))
        for row in (r for r in ROWS if only is None or r.label in only):
            for shots in row.shots:
                out = run_dir(work, row, target, shots)
                if not (out / "model.pt").is_file():
                    continue
                metrics = _evaluate_run(out, target, folder, n_fid, paired_n)
                ck = gandapt.load(out / "model.pt", with_d=False)
                adapter = ck.extra["adapter"]
                if row.method == "finetune":
                    size = sum(v.numel() * 4 for k, v in ck.G.state_dict().items() if k.startswith("synthesis."))
                else:
                    size = int(np.count_nonzero(adapter["values"].numpy() - _identity(ck, adapter))) * 4
                results.append({"method": row.label, "target": target, "shots": shots,
                                "steps": ck.extra["steps"], "lr": saved_lr(out),
                                "train_seconds": _train_seconds(out, ck.extra), "threads": saved_threads(out),
                                "trainable_params": int(adapter["trainable_params"]), "bytes_per_domain": size,
                                **metrics})
    return results


def unadapted_row(model: str, work: Path, target: str, folder: Path, n_fid: int, paired_n: int) -> dict:
    """The unadapted model on one target (cached in ``runs/unadapted-TARGET.json``): the row to beat."""
    from gandapt.trainer.adapters.evaluate import evaluate_domain

    cache = work / "runs" / f"unadapted-{target}.json"
    if not _cached(cache, n_fid, paired_n):
        _write_json(cache, evaluate_domain(model, base=model, transform=target, target_set=str(folder), n_fid=n_fid,
                                           paired_n=paired_n))
    return {"method": "unadapted", "target": target, "shots": 0, "steps": 0, "train_seconds": 0.0,
            "trainable_params": 0, "bytes_per_domain": 0, **json.loads(cache.read_text())}


def saved_option(out: Path, key: str) -> Any:
    """One setting a run was trained with (its ``training_options.json``); None when unknown."""
    path = out / "training_options.json"
    return json.loads(path.read_text()).get(key) if path.is_file() else None


def saved_lr(out: Path) -> Optional[float]:
    """The learning rate a run was trained with; None when unknown."""
    return saved_option(out, "lr")


def saved_threads(out: Path) -> Optional[str]:
    """The CPU threads a run trained with, as the table shows them: a number, "all" (torch's default),
    or None when the run records no options."""
    if not (out / "training_options.json").is_file():
        return None
    threads = saved_option(out, "threads")
    return str(threads) if threads else "all"


def _train_seconds(out: Path, extra: dict) -> float:
    """Steps × the median step time of the run's log: robust to other work sharing the CPU now and then
    (the wall-clock total, ``extra['train_seconds']``, is not); the total when there is no log."""
    log = out / "log.jsonl"
    if not log.is_file():
        return float(extra["train_seconds"])
    dts = [json.loads(line)["sec_per_step"] for line in log.read_text().splitlines() if line.strip()]
    return float(np.median(dts) * extra["steps"]) if dts else float(extra["train_seconds"])


def _identity(ck, adapter) -> np.ndarray:
    layout = ck.G.layout
    return np.concatenate([layout.identity()[layout.slice(n)] for n in adapter["entries"]])


COLUMNS = (("method", "method", "{}"), ("target", "target", "{}"), ("shots", "shots", "{}"),
           ("steps", "steps", "{}"), ("lr", "lr", "{:g}"), ("train s", "train_seconds", "{:.0f}"),
           ("threads", "threads", "{}"), ("params", "trainable_params", "{:,}"),
           ("bytes/domain", "bytes_per_domain", "{:,}"),
           ("paired L1 ↓", "paired_l1", "{:.4f}"), ("FID ↓", "fid", "{:.1f}"), ("KID×1e3 ↓", "kid", "{:.2f}"),
           ("precision", "precision", "{:.3f}"), ("recall", "recall", "{:.3f}"),
           ("quality", "quality", "{:.3f}"), ("diversity", "diversity", "{:.3f}"))


def render_markdown(results: List[dict], meta: Dict[str, Any]) -> str:
    cols = COLUMNS[:10] + (("vs unadapted", "delta_paired", "{:+.1%}"),) + COLUMNS[10:]
    head = "| " + " | ".join(c[0] for c in cols) + " |\n| " + " | ".join("---" for _ in cols) + " |\n"
    base = {r["target"]: r["paired_l1"] for r in results if r["method"] == "unadapted"}
    lines = []
    for r in results:
        r = {**r, "delta_paired": r["paired_l1"] / base[r["target"]] - 1 if r["target"] in base else None}
        if r.get("held_out"):
            r["target"] = f"{r['target']} (held out)"
        cells = []
        for _, key, fmt in cols:
            v = r.get(key)
            v = v * 1e3 if key == "kid" and v is not None else v
            cells.append("–" if v is None or (key == "delta_paired" and r["method"] == "unadapted") else fmt.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    n = next((r.get("n_fake") for r in results if r.get("n_fake")), "?")
    return (f"# Adaptation results\n\nBase model `{meta['model']}`; targets are held-out avatars through each "
            f"transform; FID/KID/precision/recall with N = {n} generated vs {n} target images; paired L1 on "
            f"[0, 1] over {meta['paired_n']} latents (ψ = 0.7) against T(G(w)) (\"vs unadapted\": its change "
            f"from the unadapted model's paired L1 on that target; negative is better); quality/diversity with "
            f"the VGG19 style embedder; train s = steps × median step time with the CPU threads shown (all: "
            f"torch's default). Machine: {meta['machine']}. "
            f"Regenerate with `{meta['command']}`.\n\n"
            "Multi-domain rows (hyperdomainnet, dynagan, expansion, degan) come from one model per method trained "
            "over all three targets at once, one reference image each (the single-domain rows' one-shot "
            "references); their steps, train s and params are that one model's. \"(held out)\" targets were "
            "never trained on: the hyperdomainnet mapper and the degan encoder made those domains from one "
            "image in one forward pass.\n\n"
            + carried_note(meta) + head + "\n".join(lines) + "\n" + render_cost(results)
            + (f"\nNot trained yet (the command above trains them): {', '.join(meta['missing'])}.\n"
               if meta.get("missing") else ""))


def render_cost(results: List[dict]) -> str:
    """One multi-domain model vs N separately trained single-domain models (HDN/DynaGAN's cost figure)."""
    multi = {}
    for r in results:
        if r.get("domains_in_model") and not r.get("held_out"):
            multi.setdefault(r["method"], r)
    singles = {m: [r for r in results if r["method"] == m and r["shots"] == 1 and not r.get("domains_in_model")]
               for m in ("domain-mod", "finetune")}
    if not multi:
        return ""
    lines = ["", "## One model for N domains vs N single-domain models", "",
             "| approach | N | trainable params | train s | bytes per domain |", "| --- | --- | --- | --- | --- |"]
    n = next(iter(multi.values()))["domains_in_model"]
    for m, rows in singles.items():
        if rows:
            t = float(np.mean([x["train_seconds"] for x in rows]))
            lines.append(f"| {n} × {m} | {n} | {n * rows[0]['trainable_params']:,} | {n * t:.0f} | "
                         f"{rows[0]['bytes_per_domain']:,} |")
    for method, r in multi.items():
        extra = " + an expanded base" if method == "expansion" else ""
        lines.append(f"| {method} (one model) | {r['domains_in_model']} | {r['trainable_params']:,} | "
                     f"{r['train_seconds']:.0f} | {r['bytes_per_domain']:,}{extra} |")
    return "\n".join(lines) + "\n\nA new domain costs the single-domain methods a training run; hyperdomainnet and degan " \
        "make one for a new image in a forward pass (the held-out rows); dynagan and expansion need retraining.\n"


def render_figure(model: str, work: Path, targets: Dict[str, Path], path: Path, n: int = 6) -> None:
    """Rows per target: base, T(base) (ground truth), then each method's 1-shot domain, same latents."""
    import cv2
    import torch

    from gandapt.trainer.adapters import table_multi as multi
    from gandapt.trainer.adapters.evaluate import load_domain
    from gandapt.trainer.data.transforms import apply_transform

    blocks = []
    _, G, _ = load_domain(model, base=model)
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ws = G.G.mapping(z, truncation_psi=0.7)
        base = _uint8(G.synthesis(ws))
    for target in targets:
        rows = [("base", base), (f"T={target}", np.stack([apply_transform(target, b) for b in base]))]
        for row in ROWS:
            out = run_dir(work, row, target, 1)
            if (out / "model.pt").is_file():
                G_d, _, _ = load_domain(str(out / "model.pt"), base=model if row.method == "finetune" else None)
                with torch.no_grad():
                    rows.append((row.label, _uint8(G_d.synthesis(ws))))
        for row in multi.MULTI_ROWS:  # one model per method; its domain for this target (own pack or held out)
            out = multi.multi_run_dir(work, row)
            held = out / "heldout.safetensors"
            pack = str(held) if target in multi.HELD_OUT_TARGETS and held.is_file() else None
            if (out / "model.pt").is_file() and (target in TARGETS or row.held_out):
                G_d, _, _ = load_domain(str(out / "model.pt"), domain=target, pack=pack)
                with torch.no_grad():
                    rows.append((row.label, _uint8(G_d.synthesis(ws))))
        for label, imgs in rows:
            strip = np.concatenate(list(imgs), axis=1)
            pad = np.full((strip.shape[0], 150, 3), 255, np.uint8)
            cv2.putText(pad, label, (4, strip.shape[0] // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
            blocks.append(np.concatenate([pad, strip], axis=1))
    ok, buf = cv2.imencode(".png", np.concatenate(blocks, axis=0)[:, :, ::-1])
    atomic_write_bytes(path, buf.tobytes(), force=True)


def _uint8(x) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def build_table(model: str, data: str, work: str, out: str = "benchmarks/results", retrain: bool = False,
                train: bool = True, n_fid: int = 250, paired_n: int = 128, threads: Optional[int] = None,
                encoder: Optional[str] = None, id_encoder: Optional[str] = None, only: Tuple[str, ...] = ()) -> Path:
    """Train what is missing (unless ``train`` is False), evaluate, and write the table files.

    ``id_encoder`` is dynagan's identity network (default: the shipped encoder for the shipped base model).
    ``only`` (row labels) trains and measures just those rows and carries every other row over unchanged
    from the ``adaptation.json`` already in ``out`` (:func:`carried_rows`); the figure is then redrawn only when
    ``work`` holds every run it shows (:func:`figure_runs`).

    Returns:
        Path of ``adaptation.md``.
    """
    import platform

    work_p, out_p = Path(work), Path(out)
    if not Path(model).is_file():
        raise GandaptError(f"--model {model} is not a file; give the base model the table adapts "
                           "(e.g. samples/data/avatars64.pt)")
    if not Path(data).is_dir():
        raise GandaptError(f"--data {data} is not a folder; give the avatar set the base model was trained on")
    from gandapt.trainer.adapters import table_multi as multi

    keep = set(only) if only else None
    labels = {r.label for r in ROWS} | {r.label for r in multi.MULTI_ROWS}
    previous, old_meta = (carried_rows(out_p / "adaptation.json", model, n_fid, paired_n, keep, labels) if keep
                          else ([], {}))
    given_id_encoder = id_encoder
    if train and any(row.method == "dynagan" and (keep is None or row.label in keep) for row in multi.MULTI_ROWS):
        id_encoder = multi.identity_encoder(model, id_encoder)  # a missing or foreign one fails before any run
    targets = prepare_targets(Path(data), work_p)
    unseen = multi.held_out_targets(Path(data), work_p)
    shas = targets_fingerprint({**targets, **unseen})
    if keep:  # before any training: rows measured on other targets or against another bar cannot be carried
        check_same_targets(old_meta, shas, out_p / "adaptation.json")
        stray = sorted({r["target"] for r in previous} - set(targets) - set(unseen))
        if stray:
            raise GandaptError(f"{out_p / 'adaptation.json'} has rows for targets this table no longer has "
                               f"({', '.join(stray)}); build the whole table without --only")
        bar = [unadapted_row(model, work_p, t, f, n_fid, paired_n) for t, f in targets.items()]
        drift = check_same_baseline(previous, bar + multi.unadapted_rows(model, work_p, unseen, n_fid, paired_n))
    t0 = time.perf_counter()
    if train:
        train_runs(model, work_p, targets, retrain=retrain, threads=threads, n_fid=n_fid, paired_n=paired_n,
                   encoder=encoder, only=keep)
        multi.train_multi_runs(model, work_p, targets, unseen, retrain=retrain, threads=threads, encoder=encoder,
                               id_encoder=id_encoder, only=keep)
    results = evaluate_runs(model, work_p, targets, n_fid, paired_n, keep)
    results += multi.unadapted_rows(model, work_p, unseen, n_fid, paired_n)
    results += multi.evaluate_multi_runs(model, work_p, targets, unseen, n_fid, paired_n, keep)
    if keep:
        results += [r for r in previous if r["method"] != "unadapted"]
    order = list(targets) + list(unseen)
    methods = ["unadapted"] + [r.label for r in ROWS] + [r.label for r in multi.MULTI_ROWS]
    results.sort(key=lambda r: (order.index(r["target"]), methods.index(r["method"]), r["shots"]))
    meta = {"model": str(model), "data": str(data), "n_fid": n_fid, "paired_n": paired_n,
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs",
            # carried rows whose target images were never fingerprinted keep the table unverifiable
            "targets_sha": shas if not keep or old_meta.get("targets_sha") else None,
            "versions": library_versions(),
            "encoder": encoder, "id_encoder": id_encoder,
            "command": f"gandapt-train table --model {model} --data {data} --work {work}"
                       + (f" --encoder {encoder}" if encoder else "")
                       + (f" --id-encoder {given_id_encoder}" if given_id_encoder else ""),
            "seconds": round(time.perf_counter() - t0, 1),
            "missing": [run_dir(work_p, row, target, shots).name for row, target, shots in plan(targets, keep)
                        if not (run_dir(work_p, row, target, shots) / "model.pt").is_file()]
                       + [multi.multi_run_dir(work_p, row).name for row in multi.MULTI_ROWS
                          if (keep is None or row.label in keep)
                          and not (multi.multi_run_dir(work_p, row) / "model.pt").is_file()]}
    # the figure shows every method's 1-shot run: with --only it is redrawn only when the work folder has them all
    redraw = not keep or all((d / "model.pt").is_file() for d in figure_runs(work_p, targets))
    if keep:
        meta["updated"] = sorted(keep)
        meta["carried"] = sorted({r["method"] for r in previous if r["method"] != "unadapted"})
        meta["unadapted_fid_drift"] = drift
        meta["figure_redrawn"] = redraw
        meta["carried_targets_checked"] = bool(old_meta.get("targets_sha"))
        meta["carried_versions"] = old_meta.get("versions")
    out_p.mkdir(parents=True, exist_ok=True)
    _write_json(out_p / "adaptation.json", {"meta": meta, "results": results})
    atomic_write_bytes(out_p / "adaptation.md", render_markdown(results, meta).encode(), force=True)
    if redraw:
        render_figure(model, work_p, {**targets, **unseen}, out_p / "adaptation.png")
    return out_p / "adaptation.md"


def figure_runs(work: Path, targets: Dict[str, Path]) -> List[Path]:
    """The run folders whose domains the figure draws: every row's 1-shot runs and every multi-domain model."""
    from gandapt.trainer.adapters import table_multi as multi

    return ([run_dir(work, row, t, 1) for row in ROWS for t in targets if 1 in row.shots]
            + [multi.multi_run_dir(work, row) for row in multi.MULTI_ROWS])


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=float) + "\n").encode(), force=True)
