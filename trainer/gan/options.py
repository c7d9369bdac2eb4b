"""Options of a base-GAN training run (a frozen dataclass; the resolved copy is saved with the run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from gandapt.errors import GandaptError
from gandapt.trainer.run_options import RunOptions

# Widths per resolution 4, 8, ... chosen for 2 CPU cores (reference/cpu-training.md): narrow at
# 32–64 px where the FLOPs are, 128 channels below.
CHANNEL_PRESETS = {
    32: (128, 128, 128, 64),
    64: (128, 128, 128, 64, 32),
    128: (128, 128, 128, 64, 32, 16),
    256: (256, 256, 256, 128, 64, 32, 16),
}

# Fields that may change between a run and its resume (they do not change what is being trained).
RESUMABLE_CHANGES = frozenset({"out", "kimg", "steps", "checkpoint_minutes", "checkpoint_every",
                               "sample_every", "threads", "progress", "fid_every", "fid_n", "device", "strict"})


@dataclass(frozen=True)
class BaseTrainOptions(RunOptions):
    """Everything that defines a ``gandapt-train base`` run.

    Attributes mirror the CLI flags one-to-one; see ``gandapt-train base --help`` for the defaults.
    """

    resumable = RESUMABLE_CHANGES  # not a field: no annotation

    data: str                                # image folder (any images; avatars from `data avatars`)
    out: str                                 # run directory
    strict: bool = False                     # stop on an unreadable image instead of skipping it
    resolution: Optional[int] = None         # None: the dataset's resolution
    channels: Optional[Tuple[int, ...]] = None  # None: CHANNEL_PRESETS[resolution]
    z_dim: int = 256
    w_dim: int = 256
    mapping_layers: int = 4
    batch: int = 16                          # total over all processes
    g_lr: float = 0.002
    d_lr: float = 0.002
    beta2: float = 0.99                      # Adam (β1 = 0, as StyleGAN2)
    r1_gamma: float = 1.0
    r1_interval: int = 16
    ema_kimg: float = 5.0                    # EMA half-life in thousands of images
    ema_rampup: Optional[float] = 0.05       # EMA half-life ≤ rampup × images seen
    style_mixing: float = 0.9                # probability of mixing two latents in a batch
    augment: str = "color,translation,cutout"  # DiffAugment policy, or 'none'
    xflip: bool = True
    d_downsample: str = "avgpool"            # 'avgpool' (fast on CPU) or 'blur' (as the references)
    channels_last: bool = True
    kimg: float = 100.0                      # training length in thousands of real images shown
    steps: Optional[int] = None              # overrides kimg when set
    checkpoint_minutes: float = 10.0         # wall-clock checkpoint cadence
    checkpoint_every: int = 0                # also every N steps (0: off)
    sample_every: int = 500                  # sample grid every N steps (0: only at the end)
    fid_every: int = 0                       # FID every N steps (0: off)
    fid_n: int = 500
    seed: int = 0
    threads: Optional[int] = None            # torch intra-op threads (None: torch's default)
    device: str = "auto"                     # 'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ...
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch < 1 or self.r1_interval < 1:
            raise GandaptError("batch and r1_interval must be >= 1")
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.d_downsample not in ("avgpool", "blur"):
            raise GandaptError(f"unknown d_downsample {self.d_downsample!r}; use 'avgpool' or 'blur'")
        self.check_ranges(positive=("g_lr", "d_lr", "kimg", "steps", "ema_kimg", "channels", "fid_n"),
                          non_negative=("checkpoint_minutes", "r1_gamma", "checkpoint_every", "sample_every",
                                        "fid_every"))

    def resolved_channels(self, resolution: int) -> Tuple[int, ...]:
        """The channel table for ``resolution`` (explicit, or the preset)."""
        if self.channels is not None:
            return self.channels
        if resolution not in CHANNEL_PRESETS:
            raise GandaptError(
                f"no channel preset for {resolution} px; pass --channels with one width per resolution 4..{resolution}"
            )
        return CHANNEL_PRESETS[resolution]

    def total_steps(self) -> int:
        """Number of optimisation steps the run makes in total."""
        if self.steps is not None:
            return self.steps
        return max(1, int(self.kimg * 1000 // self.batch))

