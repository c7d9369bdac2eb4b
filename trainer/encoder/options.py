"""Options of an inversion-encoder run (frozen; the resolved copy is saved with the run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from gandapt.errors import GandaptError
from gandapt.trainer.run_options import RunOptions

# Fields that may change between a run and its resume.
RESUMABLE_CHANGES = frozenset({"out", "steps", "checkpoint_minutes", "threads", "progress", "eval_n",
                               "device", "sample_every"})


@dataclass(frozen=True)
class EncoderTrainOptions(RunOptions):
    """Everything that defines a ``gandapt-train encoder`` run (CLI flags mirror the fields)."""

    resumable = RESUMABLE_CHANGES  # not a field: no annotation

    model: str                                # base model the encoder inverts into (any checkpoint format)
    out: str                                  # run directory
    data: Optional[str] = None                # real images of the domain (e.g. the avatar set); None: G samples only
    holdout: int = 500                        # last N images of `data` never trained on (evaluation)
    steps: int = 6000
    batch: int = 16
    real_fraction: float = 0.5                # share of each batch drawn from `data` (image losses only)
    lr: float = 1e-3
    lambda_w: float = 1.0                     # latent loss on (G(w), w) pairs, normalised by Var[w]
    lambda_img: float = 1.0                   # image MSE of G(E(x)) against x
    lambda_delta: float = 1e-3                # e4e's L2 on per-row offsets (keeps inversions near W)
    psi_min: float = 0.6                      # sampled pairs use truncation ψ ~ U[psi_min, 1]
    style_mixing: float = 0.5                 # probability a sampled pair mixes two latents (W+ coverage)
    channels: Optional[Tuple[int, ...]] = None  # None: the encoder's default for the resolution
    head_channels: int = 32
    head_dim: int = 256
    eval_n: int = 256                         # held-out samples per evaluation set
    checkpoint_minutes: float = 5.0
    sample_every: int = 1000                  # reconstruction grid every N steps (0: only at the end)
    seed: int = 0
    threads: Optional[int] = None
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.batch < 2 or self.steps < 1:
            raise GandaptError("batch must be >= 2 and steps >= 1")
        if not 0 <= self.real_fraction <= 1:
            raise GandaptError(f"real_fraction must lie in [0, 1], got {self.real_fraction}")
        self.check_ranges(positive=("lr", "channels", "head_channels", "head_dim", "eval_n"),
                          non_negative=("checkpoint_minutes", "holdout", "sample_every"))
        if self.real_fraction > 0 and self.data is None:
            object.__setattr__(self, "real_fraction", 0.0)  # nothing real to draw from
        if not 0 < self.psi_min <= 1:
            raise GandaptError(f"psi_min must lie in (0, 1], got {self.psi_min}")

