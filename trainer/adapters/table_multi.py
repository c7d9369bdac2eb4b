"""The multi-domain rows of the adaptation table: HyperDomainNet, DynaGAN, Domain Expansion, DEGAN.

Each method trains **one** model over the table's three targets at once (one reference image each,
the same one-shot references as the single-domain rows) and is then measured per domain with the same
metrics. The methods that can make a domain for an image they never saw — the HyperDomainNet mapper
(a new image set's embedding in, a domain out) and the DEGAN encoder (a reference image in, a domain out)
— are also measured on held-out targets (``colorshift``, ``pixel``) that no run trained on, as the
papers do for unseen domains. DEGAN learns from a folder of domain images: the three targets' held-out
images except the references (every image is its own domain while it trains).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from gandapt.errors import GandaptError
from gandapt.trainer.adapters import table as single

HELD_OUT_TARGETS = ("colorshift", "pixel")  # never trained on: domains made by the mapper / the encoder
DEGAN_IMAGES_PER_TARGET = 48                 # DEGAN's training images per seen style (references excluded)


@dataclass(frozen=True)
class MultiRow:
    """One multi-domain method configuration: trained once over all the table's targets."""

    label: str
    method: str
    options: Dict[str, Any] = field(default_factory=dict)
    held_out: bool = False  # can make domains for unseen images without training


# Step budgets: each run trains one model for all three domains; on 2 CPU cores with the VGG embedder a
# step costs ~1-2 s (HDN/DynaGAN/expansion: 4 latents; DEGAN: 4 references × 2 latents).
MULTI_ROWS = (
    MultiRow("hyperdomainnet", "hyperdomainnet", {"steps": 300}, held_out=True),
    # DynaGAN with its identity loss fixed (the released code's has no gradient), the inversion encoder standing
    # in for ArcFace: without it the three domains collapse onto one look (ink +98%, painting +131%).
    MultiRow("dynagan", "dynagan", {"steps": 300, "lambda_id": 3.0}),
    MultiRow("expansion", "expansion", {"steps": 200}),
    # DEGAN at a quarter of the thesis' lr 1e-3: at 1e-3 it overshot ink/painting (+7.5%/+5.1% paired L1);
    # at 2.5e-4 only the held-out pixel stays above the unadapted model (adaptation_discussion.md).
    MultiRow("degan", "degan", {"steps": 300, "lr": 0.00025}, held_out=True),
)


def multi_run_dir(work: Path, row: MultiRow) -> Path:
    return work / "runs" / f"{row.label}-multi-1shot"


def reference(folder: Path) -> Path:
    """The one-shot reference of a target folder: its first image (what ``--shots 1`` trains on)."""
    from gandapt.trainer.metrics.evaluate import list_images

    return list_images(folder)[0]


def degan_data(work: Path, targets: Dict[str, Path]) -> Path:
    """DEGAN's training images: per seen target, its images after the reference (made once)."""
    from gandapt.trainer.metrics.evaluate import list_images

    dst = work / "degan-data"
    if not dst.is_dir():
        tmp = work / ".degan-data.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        for name, folder in targets.items():
            (tmp / name).mkdir(parents=True)
            for f in list_images(folder)[1:1 + DEGAN_IMAGES_PER_TARGET]:
                shutil.copy2(f, tmp / name / f.name)
        tmp.rename(dst)
    return dst


def _options(row: MultiRow, model: str, out: Path, work: Path, seen: Dict[str, Path], unseen: Dict[str, Path],
             threads: Optional[int], encoder: Optional[str] = None, id_encoder: Optional[str] = None):
    common = {"model": model, "out": str(out), "threads": threads, "progress": False}
    if row.method in ("hyperdomainnet", "dynagan"):
        from gandapt.trainer.multidomain.options import MultiDomainTrainOptions

        enc = {"encoder": encoder, "id_encoder": id_encoder} if row.method == "dynagan" else {}
        return MultiDomainTrainOptions(method=row.method, targets=tuple(str(p) for p in seen.values()),
                                       names=tuple(seen), shots=1, **common, **enc, **row.options)
    if row.method == "expansion":
        from gandapt.trainer.expansion.options import ExpansionOptions

        return ExpansionOptions(targets=tuple(f"{n}={p}" for n, p in seen.items()), shots=1, **common, **row.options)
    from gandapt.trainer.degan.options import DeganOptions

    refs = {**seen, **unseen} if row.held_out else seen
    return DeganOptions(data=str(degan_data(work, seen)), references=tuple(f"{n}={reference(p)}" for n, p in refs.items()),
                        **common, **row.options)


def _train(row: MultiRow, opts) -> None:
    if row.method in ("hyperdomainnet", "dynagan"):
        from gandapt.trainer.multidomain.loop import train_multidomain

        train_multidomain(opts, force=True)
    elif row.method == "expansion":
        from gandapt.trainer.expansion.loop import train_expansion

        train_expansion(opts, force=True)
    else:
        from gandapt.trainer.degan.loop import train_degan

        train_degan(opts, force=True)


def _held_out_pack(row: MultiRow, out: Path, unseen: Dict[str, Path]) -> Optional[Path]:
    """HyperDomainNet's domains for the held-out targets, made from one image each without training."""
    if row.method != "hyperdomainnet" or not row.held_out:
        return None
    path = out / "heldout.safetensors"
    if not path.is_file():
        import gandapt
        from gandapt.pack import DomainPack, save_pack
        from gandapt.trainer.adapters.targets import load_targets
        from gandapt.trainer.multidomain.model import domain_from_images, load_hypermodel

        ck = gandapt.load(out / "model.pt", with_d=False)
        m = load_hypermodel(ck)
        doms = [domain_from_images(m, load_targets(str(p), ck.G.img_resolution, shots=1), name)
                for name, p in unseen.items()]
        save_pack(DomainPack(doms, ck.config, ck.fingerprint, meta={"made_by": "hyperdomainnet, held out"}),
                  path, force=True)
    return path


def train_multi_runs(model: str, work: Path, seen: Dict[str, Path], unseen: Dict[str, Path], retrain: bool = False,
                     threads: Optional[int] = None, encoder: Optional[str] = None,
                     id_encoder: Optional[str] = None, only: Optional[Set[str]] = None) -> None:
    """Train every multi-domain run the work folder lacks (or all, with ``retrain``); ``encoder`` gives
    dynagan the references' inversions as its directions' sources, as it does the single-domain rows;
    ``id_encoder`` (:func:`identity_encoder`) is dynagan's identity network; ``only``: just those row labels."""
    for i, row in enumerate(MULTI_ROWS):
        if only is not None and row.label not in only:
            continue
        out = multi_run_dir(work, row)
        opts = _options(row, model, out, work, seen, unseen, threads, encoder, id_encoder)
        if not (out / "model.pt").is_file() or retrain or single._stale(out, opts):
            print(f"[multi {i + 1}/{len(MULTI_ROWS)}] training {out.name}", flush=True)
            _train(row, opts)
            for f in out.glob("eval-*.json"):
                f.unlink()
            (out / "heldout.safetensors").unlink(missing_ok=True)
        _held_out_pack(row, out, unseen)


def _evaluate(model: str, out: Path, row: MultiRow, name: str, folder: Path, n_fid: int, paired_n: int,
              pack: Optional[Path]) -> dict:
    """One domain's metrics (cached in ``eval-NAME.json``). Paired error is always against T(G(w)) of the
    original base: for expansion the adapted images come from the expanded base + the domain's shift."""
    from gandapt.trainer.adapters.evaluate import evaluate_domain, load_domain, paired_error

    cache = out / f"eval-{name}.json"
    if not single._cached(cache, n_fid, paired_n):
        expansion = row.method == "expansion"  # its own base is the expanded one; pair against the original
        r = evaluate_domain(str(out / "model.pt"), domain=name, pack=str(pack) if pack else None,
                            transform=None if expansion else name, target_set=str(folder), n_fid=n_fid,
                            paired_n=paired_n)
        if expansion:
            G_d, _, _ = load_domain(str(out / "model.pt"), domain=name)
            _, G, _ = load_domain(model, base=model)
            r.update(paired_error(G_d, G, name, paired_n))
        single._write_json(cache, r)
    return json.loads(cache.read_text())


def _cost(row: MultiRow, out: Path) -> Tuple[int, int, float, Any]:
    """(steps, trainable params, train seconds, the pack) of a run."""
    import gandapt
    from gandapt.export.bundle import _resolve_pack

    ck = gandapt.load(out / "model.pt", with_d=False)
    if row.method == "degan":
        from gandapt.trainer.degan.file import load_domain_encoder

        enc = load_domain_encoder(out / "degan.pt")
        params = sum(p.numel() for p in enc.E.parameters())
        steps = int(enc.extra.get("steps", ck.extra["steps"]))
    else:
        params, steps = int(ck.extra["adapter"]["trainable_params"]), int(ck.extra["steps"])
    return steps, params, single._train_seconds(out, ck.extra), _resolve_pack(ck, None)


def evaluate_multi_runs(model: str, work: Path, seen: Dict[str, Path], unseen: Dict[str, Path], n_fid: int,
                        paired_n: int, only: Optional[Set[str]] = None) -> List[dict]:
    """Rows for every trained multi-domain run (``only``: of those row labels): one per (method, domain),
    held-out domains flagged."""
    from gandapt.pack import load_pack

    results = []
    for row in MULTI_ROWS:
        out = multi_run_dir(work, row)
        if not (out / "model.pt").is_file() or (only is not None and row.label not in only):
            continue
        steps, params, seconds, pack = _cost(row, out)
        domains = {**seen, **(unseen if row.held_out else {})}
        for name, folder in domains.items():
            extra_pack = _held_out_pack(row, out, unseen) if name in unseen else None
            dom = (pack if extra_pack is None else load_pack(extra_pack))[name]
            size = int(sum(v.size for v in dom.tensors.values())) * 4
            results.append({"method": row.label, "target": name, "shots": 1, "steps": steps, "lr": single.saved_lr(out),
                            "threads": single.saved_threads(out), "train_seconds": seconds,
                            "trainable_params": params, "bytes_per_domain": size,
                            "held_out": name in unseen, "domains_in_model": len(seen),
                            **_evaluate(model, out, row, name, folder, n_fid, paired_n, extra_pack)})
    return results


def identity_encoder(model: str, id_encoder: Optional[str]) -> str:
    """The inversion encoder the dynagan row's identity loss uses (its resolved path, so a run's saved options
    do not depend on how the path was written): ``id_encoder``, checked to invert into ``model``, or the
    shipped encoder when ``model`` is the shipped base model.

    Raises:
        GandaptError: ``id_encoder`` missing, unreadable or made for another model; another model and no
            ``id_encoder``.
    """
    import gandapt
    from gandapt import samples
    from gandapt.checkpoint import load_encoder
    from gandapt.trainer.adapters.loop import checked_encoder

    fingerprint = gandapt.load(model, with_d=False).fingerprint
    if id_encoder is not None:
        checked_encoder(id_encoder, fingerprint, flag="--id-encoder")
        return str(Path(id_encoder).resolve())
    shipped = samples.encoder()
    if fingerprint == load_encoder(str(shipped)).base_fingerprint:
        return str(shipped)
    raise GandaptError(f"the dynagan row's identity loss needs the inversion encoder of --model {model}: pass "
                       "--id-encoder FILE (gandapt-train encoder trains one)")


def held_out_targets(data: Path, work: Path) -> Dict[str, Path]:
    """The held-out transforms of the held-out avatars (made once, like the seen targets)."""
    return single.prepare_targets(data, work, HELD_OUT_TARGETS)


def unadapted_rows(model: str, work: Path, targets: Dict[str, Path], n_fid: int, paired_n: int) -> List[dict]:
    """The unadapted model on each held-out target: the row every method must beat."""
    return [{**single.unadapted_row(model, work, t, folder, n_fid, paired_n), "held_out": True}
            for t, folder in targets.items()]
