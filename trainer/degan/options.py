"""Options of a DEGAN domain-encoder run (frozen; the resolved copy is saved with the run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from gandapt.errors import GandaptError
from gandapt.trainer.run_options import RunOptions

RESUMABLE_CHANGES = frozenset({"out", "steps", "checkpoint_minutes", "threads", "progress", "device", "sample_every",
                               "references"})


@dataclass(frozen=True)
class DeganOptions(RunOptions):
    """Everything that defines a ``gandapt-train degan`` run (CLI flags mirror the fields).

    Defaults follow the thesis' ``configs/train.yaml`` (reference/methods.md §6.2): Adam lr 1e-3,
    ExponentialLR γ 0.9999, grad-norm clip 100, direction 1 + tt-direction 1 + in-domain angle 12,
    fade-in of the offsets 0.1 → 1; batch 8 domain images × 4 latents scaled down to 4 × 2 for CPU.
    """

    resumable = RESUMABLE_CHANGES  # not a field: no annotation

    model: str                                   # frozen base model (any checkpoint format)
    out: str                                     # run directory
    data: str = ""                               # folder (searched recursively) of domain images to train on
    references: Tuple[str, ...] = ()             # images turned into domains after training, [NAME=]PATH
    embedder: str = "vgg"                        # vgg | disc | inception | clip (image tower only)
    clip: Optional[str] = None
    clip_arch: str = "ViT-B-32"
    clip_config: Optional[str] = None
    channels: Tuple[int, ...] = (32, 64, 128, 128)  # backbone stage widths
    hidden: int = 128                            # head MLP width (768 in the thesis)
    steps: int = 1000
    domains_per_step: int = 4                    # reference images per step (thesis: 8)
    latents_per_domain: int = 2                  # latents per reference (thesis: batch_expand_mult 4)
    lr: float = 1e-3
    lr_gamma: float = 0.9999                     # ExponentialLR per step
    grad_clip: float = 100.0
    fade_steps: int = 200                        # offsets scaled by m: 0.1 → 1 over these steps (thesis: 2000)
    lambda_direction: float = 1.0
    lambda_tt: float = 1.0
    lambda_indomain: float = 12.0
    truncation: float = 0.7
    n_source: int = 64                           # G samples whose mean embedding is ē_src (DiFa-style)
    seed: int = 0
    checkpoint_minutes: float = 2.0
    sample_every: int = 0
    threads: Optional[int] = None
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("references", "channels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.data:
            raise GandaptError("give --data FOLDER: the domain images the encoder learns from")
        if self.steps < 1 or self.domains_per_step < 1 or self.latents_per_domain < 1:
            raise GandaptError("--steps, --domains-per-step and --latents-per-domain must be >= 1")
        if self.domains_per_step * self.latents_per_domain < 2:
            raise GandaptError("a step needs at least 2 generated images (domains-per-step × latents-per-domain)")
        if self.fade_steps < 0:
            raise GandaptError(f"--fade-steps must be >= 0, got {self.fade_steps}")
        self.reference_names()
        self.check_ranges(positive=("channels", "hidden", "lr", "lr_gamma", "grad_clip", "truncation", "n_source"),
                          non_negative=("checkpoint_minutes", "sample_every"))

    def reference_names(self) -> Tuple[Tuple[str, str], ...]:
        """``((name, path), ...)`` of :attr:`references` (name: the file's stem unless NAME=PATH).

        Raises:
            GandaptError: a duplicate name.
        """
        from pathlib import Path

        out = []
        for ref in self.references:
            name, sep, path = ref.partition("=")
            if not sep:
                name, path = Path(ref).stem, ref
            out.append((name.strip(), path.strip()))
        names = [n for n, _ in out]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup or any(not n or "/" in n for n in names):
            raise GandaptError(f"reference names must be unique and non-empty without '/' "
                               f"(got {', '.join(dup) or names}); write NAME=PATH")
        return tuple(out)

    def fade(self, step: int) -> float:
        """The thesis' fade-in multiplier m at ``step`` (0-based): 0.1 → 1 linearly over ``fade_steps``."""
        if self.fade_steps == 0 or step >= self.fade_steps:
            return 1.0
        return 0.1 + 0.9 * step / self.fade_steps

