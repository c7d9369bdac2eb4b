"""Run directories shared by every trainer: refuse to clobber, clear stale temp files, write JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Iterable, Optional

from gandapt.errors import GandaptError
from gandapt.io import atomic_write_bytes


def prepare_out(out: Path, resume: bool, force: bool, run_files: Iterable[str],
                checkpoint: Optional[str] = None) -> None:
    """Make ``out`` ready for a run (DESIGN §9: nothing is overwritten without --force).

    Args:
        out: the run directory.
        resume: continue the run there (with ``checkpoint``: that file must exist).
        force: start over: ``run_files`` and ``samples/`` of the old run are removed.
        run_files: file names a run writes.
        checkpoint: the checkpoint file name ``--resume`` needs, checked up front when given.
    """
    if out.exists() and not out.is_dir():
        raise GandaptError(f"--out {out} is a file; give a directory for the run")
    if out.exists() and any(out.iterdir()) and not (resume or force):
        raise GandaptError(f"--out {out} already holds a run; pass --resume to continue it or --force to start over")
    if resume and checkpoint and not (out / checkpoint).is_file():
        raise GandaptError(f"--resume: {out / checkpoint} does not exist; start the run without --resume")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp"):  # an atomic write cut short by a kill: never a valid file
        stale.unlink()
    if force and not resume:  # start over: nothing of the old run may be resumed or appended to
        for name in run_files:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "samples", ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    """Indented JSON, written atomically (replacing the previous file)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=float) + "\n").encode(), force=True)
