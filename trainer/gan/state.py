"""Training checkpoints: a native model file (G_ema + D) whose ``extra['train']`` holds the rest.

Because the checkpoint is an ordinary gandapt model file, ``gandapt.load(run/checkpoint.pt)`` gives
the current EMA generator and discriminator at any time, while ``--resume`` restores the exact
training state (G, optimisers, step, RNG states).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from gandapt.errors import GandaptError
from gandapt.trainer.gan.options import BaseTrainOptions

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainState:
    """Mutable state of a run besides the networks."""

    step: int = 0
    images_seen: int = 0
    seconds: float = 0.0


def rng_state(data_gen: torch.Generator, aug_gen: torch.Generator) -> Dict[str, Any]:
    """All RNG states as plain containers (weights_only-loadable)."""
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": data_gen.get_state(),
        "augment": aug_gen.get_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def set_rng_state(s: Dict[str, Any], data_gen: torch.Generator, aug_gen: torch.Generator) -> None:
    torch.set_rng_state(s["torch"])
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    data_gen.set_state(s["data"])
    aug_gen.set_state(s["augment"])
    random.setstate((s["python"][0], tuple(s["python"][1]), s["python"][2]))
    n = s["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))


def save_checkpoint(path: Path, G, G_ema, D, G_opt, D_opt, state: TrainState,
                    options: BaseTrainOptions, rng: Dict[str, Any]) -> Path:
    """Write the run's checkpoint atomically (overwrites the previous one)."""
    from gandapt.checkpoint import save_native

    extra = {"train": {
        "G": {k: v.detach().cpu() for k, v in G.state_dict().items()},
        "G_opt": G_opt.state_dict(),
        "D_opt": D_opt.state_dict(),
        "step": state.step,
        "images_seen": state.images_seen,
        "seconds": state.seconds,
        "options": options.to_dict(),
        "rng": rng,
    }}
    return save_native(path, G_ema, D, extra=extra, force=True)


def load_checkpoint(path: Path, options: BaseTrainOptions):
    """Read a run checkpoint for ``--resume`` and check it belongs to the same configuration.

    Returns:
        (checkpoint object from :func:`gandapt.load`, the ``extra['train']`` dict).

    Raises:
        GandaptError: no checkpoint, or one made with options that change what is trained.
    """
    import gandapt

    if not path.exists():
        raise GandaptError(f"--resume: no {CHECKPOINT} in {path.parent}; start a new run without --resume")
    ckpt = gandapt.load(path)
    train = ckpt.extra.get("train")
    if not isinstance(train, dict) or "G_opt" not in train:
        raise GandaptError(f"--resume: {path} is a model file without training state; it cannot be resumed")
    saved = BaseTrainOptions.from_dict(train["options"])
    diff = options.incompatible_with(saved)
    if diff:
        detail = ", ".join(f"{k}: {saved.to_dict()[k]!r} → {options.to_dict()[k]!r}" for k in diff[:4])
        raise GandaptError(
            f"--resume: the checkpoint in {path.parent} was made with other settings ({detail}); "
            "use the original settings or a new --out"
        )
    return ckpt, train
