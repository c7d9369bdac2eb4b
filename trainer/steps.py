"""The step loop the adapter, multi-domain, expansion, DEGAN and encoder trainers share.

Each trainer supplies one step's forward pass (its losses) and its parameter update; this module
owns what must behave the same everywhere: step timing, the NaN stop that keeps the last good
checkpoint, the ``log.jsonl`` line per step, the progress bar, periodic checkpoints, and Ctrl-C
turning into "checkpoint saved, continue with --resume".
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from gandapt.errors import GandaptError
from gandapt.io import atomic_write_bytes

StepFn = Callable[[int], Tuple[torch.Tensor, Dict[str, float]]]


@dataclass
class Counter:
    """Where a run stands; checkpoint functions read it, :func:`run_steps` advances it."""

    step: int = 0
    seconds: float = 0.0


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once; the last checkpoint stays valid
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def truncate_log(path: Path, step: int) -> None:
    """Drop log records past ``step`` (logged after the checkpoint a resume starts from)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
    atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode(), force=True)


def check_resume(out: Path, checkpoint: Path, changed: Sequence[str], saved_fingerprint: str,
                 fingerprint: str) -> None:
    """Refuse ``--resume`` of a run started with other options or for another base model.

    Raises:
        GandaptError: ``changed`` is non-empty, or the checkpoint's base fingerprint differs.
    """
    if changed:
        raise GandaptError(f"--resume: the run in {out} was started with different {', '.join(changed)}; "
                           "use the same options or --force to start over")
    if saved_fingerprint != fingerprint:
        raise GandaptError(f"--resume: {checkpoint} belongs to another base model; use --force to start over")


def adam_update(opt: torch.optim.Optimizer) -> Callable[[torch.Tensor], None]:
    """The plain update: zero the gradients, backpropagate ``loss``, take one optimiser step."""

    def update(loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return update


def loss_log(loss: torch.Tensor, losses: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """The weighted total and each term, rounded for ``log.jsonl``."""
    return {"loss": round(loss.item(), 6), **{k: round(v.item(), 6) for k, v in losses.items()}}


def latent_step_fn(G, objective, weights: Dict[str, float], batch: int, truncation: float,
                   gen: torch.Generator, device) -> StepFn:
    """The step of the trainers whose objective scores fresh latents: ``objective.losses(G, ws, gen)``
    on ``batch`` truncated W+ samples, weighted by ``weights`` (terms without a weight are only logged)."""

    def step_fn(step: int):
        z = torch.randn(batch, G.z_dim, generator=gen).to(device)
        ws = G.mapping(z, truncation_psi=truncation)                              # [B, num_ws, w_dim]
        losses = objective.losses(G, ws, gen)
        loss = sum(weights[k] * v for k, v in losses.items() if weights.get(k))
        return loss, loss_log(loss, losses)

    return step_fn


def run_steps(counter: Counter, total: int, step_fn: StepFn, update: Callable[[torch.Tensor], None], *,
              out: Path, desc: str, progress: bool, checkpoint: Callable[[], None], checkpoint_minutes: float,
              on_step: Optional[Callable[[int], None]] = None,
              after_step: Optional[Callable[[int], None]] = None,
              postfix: Callable[[Dict[str, float]], Dict[str, str]] = lambda log: {"loss": f"{log['loss']:.4f}"},
              ) -> None:
    """Run steps ``counter.step + 1 … total``, then checkpoint once more.

    Args:
        counter: advanced in place (``step`` by one, ``seconds`` by the step's wall time).
        total: the run's step budget.
        step_fn: ``step_fn(step) -> (loss, log)`` for the 0-based step about to run: the scalar to
            minimise and the values to log (plain floats).
        update: applies ``loss`` (backward and optimiser step, plus any clipping or schedule).
        out: run folder (``log.jsonl`` is appended there).
        desc: progress bar label.
        progress: show a tqdm bar.
        checkpoint: writes the resumable state (reads ``counter``).
        checkpoint_minutes: wall time between periodic checkpoints.
        on_step: called with the finished step number.
        after_step: trainer extras after each step (sample grids), before the checkpoint.
        postfix: the progress bar's postfix from a step's log.

    Raises:
        GandaptError: a non-finite loss (nothing is updated or saved past the last checkpoint), or an
            interruption (Ctrl-C / SIGTERM; the checkpoint is saved first).
    """
    truncate_log(Path(out) / "log.jsonl", counter.step)  # a resumed run drops steps logged past its checkpoint
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=counter.step, unit="step", desc=desc, dynamic_ncols=True)
    log = (Path(out) / "log.jsonl").open("a")
    last_ckpt = time.monotonic()
    stop = StopRequest()
    try:
        while counter.step < total and not stop.requested:
            t0 = time.perf_counter()
            loss, values = step_fn(counter.step)
            if not torch.isfinite(loss):
                raise GandaptError(f"the loss became {loss.item()} at step {counter.step + 1}; stopped, and the "
                                   f"last checkpoint in {out} is kept; lower --lr and --resume or --force")
            update(loss)
            counter.step += 1
            dt = time.perf_counter() - t0
            counter.seconds += dt
            log.write(json.dumps({"step": counter.step, "sec_per_step": round(dt, 4), **values}) + "\n")
            log.flush()  # a killed run keeps every logged step (a resume trims those past its checkpoint)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(postfix(values), refresh=False)
            if after_step is not None:
                after_step(counter.step)
            if (time.monotonic() - last_ckpt) / 60 >= checkpoint_minutes:
                checkpoint()
                last_ckpt = time.monotonic()
            if on_step is not None:
                on_step(counter.step)
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
        log.close()
    checkpoint()
    if stop.requested:
        raise GandaptError(f"interrupted after step {counter.step}; checkpoint saved, continue with --resume")
