"""Options of a single-domain adapter run (frozen; the resolved copy is saved with the run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from gandapt.errors import GandaptError
from gandapt.trainer.adapters.methods import METHODS
from gandapt.trainer.run_options import RunOptions

RESUMABLE_CHANGES = frozenset({"out", "steps", "checkpoint_minutes", "threads", "progress", "device", "sample_every"})


@dataclass(frozen=True)
class AdapterTrainOptions(RunOptions):
    """Everything that defines a ``gandapt-train domain-mod|stylespace`` run (CLI flags mirror it).

    ``steps``, ``lr``, ``batch`` and the loss weights left as None take the method's defaults
    (:data:`~gandapt.trainer.adapters.methods.METHODS`); :meth:`resolved` fills them in.
    """

    resumable = RESUMABLE_CHANGES  # not a field: no annotation

    method: str
    model: str                                   # base model (any checkpoint format; D needed for --embedder disc)
    out: str                                     # run directory
    target: Optional[str] = None                 # folder of target images (one-/few-shot)
    shots: Optional[int] = None                  # use the first N target images (None: all)
    text: Optional[str] = None                   # target prompt (CLIP only)
    source_text: str = "photo"                   # source prompt for the text direction
    name: Optional[str] = None                   # domain name (default: target folder name or the text)
    variant: Optional[str] = None                # method variant (stylespace: conv | all)
    sparse: float = 0.0                          # stylespace: keep this top fraction of |Δs| (0: dense)
    embedder: str = "vgg"                        # vgg | disc | inception | clip
    clip: Optional[str] = None                   # local open_clip checkpoint
    clip_arch: str = "ViT-B-32"
    clip_config: Optional[str] = None            # JSON config registering a custom arch
    steps: Optional[int] = None
    batch: Optional[int] = None
    lr: Optional[float] = None
    lambda_direction: Optional[float] = None
    lambda_indomain: Optional[float] = None
    lambda_l2: Optional[float] = None
    truncation: float = 0.7                      # ψ of the latents trained on
    n_source: int = 64                           # G samples whose mean embedding is the image direction's source
    encoder: Optional[str] = None                # inversion encoder: the source becomes G(E(targets)) (MindTheGap)
    lambda_rec: float = 0.0                      # MindTheGap reconstruction ‖G_d(E(x)) − x‖² (needs encoder)
    seed: int = 0
    checkpoint_minutes: float = 2.0
    sample_every: int = 0                        # before/after grid every N steps (0: only at the end)
    threads: Optional[int] = None
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise GandaptError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        m = METHODS[self.method]
        if (self.target is None) == (self.text is None):
            raise GandaptError("give exactly one target: --target FOLDER (images) or --text PROMPT (needs --clip)")
        if self.text is not None and self.embedder != "clip":
            object.__setattr__(self, "embedder", "clip")  # only CLIP embeds text
        if self.method == "genda":
            object.__setattr__(self, "embedder", "disc")  # GenDA's classifier sits on the frozen D
        if self.variant is not None and self.variant not in m.variants:
            raise GandaptError(f"{self.method} has no variant {self.variant!r}; choose from {', '.join(m.variants)}")
        if not 0 <= self.sparse < 1:
            raise GandaptError(f"--sparse must lie in [0, 1), got {self.sparse}")
        if self.sparse and self.method != "stylespace":
            raise GandaptError("--sparse applies to stylespace only")
        if self.shots is not None and self.shots < 1:
            raise GandaptError("--shots must be >= 1")
        if self.encoder is not None and self.target is None:
            raise GandaptError("--encoder inverts target images; it does not apply to --text targets")
        if self.lambda_rec and self.encoder is None:
            raise GandaptError("--lambda-rec reconstructs the references from their inversions: pass --encoder too")
        self.check_ranges(positive=("steps", "batch", "lr", "truncation", "n_source"),
                          non_negative=("checkpoint_minutes", "sample_every"))

    def resolved(self) -> "AdapterTrainOptions":
        """A copy with every None default replaced by the method's value."""
        m = METHODS[self.method]
        fill = {"steps": m.steps, "batch": m.batch, "lr": m.lr, "variant": m.variants[0],
                "lambda_direction": m.losses["direction"], "lambda_indomain": m.losses["indomain"],
                "lambda_l2": m.losses["l2"]}
        return dataclasses.replace(self, **{k: v for k, v in fill.items() if getattr(self, k) is None})

    def domain_name(self) -> str:
        from pathlib import Path

        if self.name:
            return self.name
        return Path(self.target).name if self.target else self.text.strip().replace(" ", "_")

