"""Options of a Domain Expansion run (frozen; the resolved copy is saved with the run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from gandapt.errors import GandaptError
from gandapt.trainer.run_options import RunOptions

RESUMABLE_CHANGES = frozenset({"out", "steps", "checkpoint_minutes", "threads", "progress", "device", "sample_every"})


@dataclass(frozen=True)
class DomainSpec:
    """One new domain: a name and its target (an image folder, or a prompt for CLIP)."""

    name: str
    kind: str      # 'images' | 'text'
    value: str     # the folder or the prompt


@dataclass(frozen=True)
class ExpansionOptions(RunOptions):
    """Everything that defines a ``gandapt-train expansion`` run (CLI flags mirror the fields).

    Defaults follow the paper's code (reference/methods.md §5.1: all synthesis weights trained,
    L_expand weight 1, L_recon 10 (MSE) + 10 (LPIPS; here the embedder's features), lr 0.001-0.002)
    scaled to CPU step budgets.
    """

    resumable = RESUMABLE_CHANGES  # not a field: no annotation

    model: str                                   # base model (any checkpoint format)
    out: str                                     # run directory
    targets: Tuple[str, ...] = ()                # image folders, each 'NAME=FOLDER' or 'FOLDER' (name = folder name)
    texts: Tuple[str, ...] = ()                  # prompts, each 'NAME=PROMPT' or 'PROMPT' (needs --clip)
    source_text: str = "photo"
    shots: Optional[int] = None                  # first N images of each target folder (None: all)
    embedder: str = "vgg"                        # vgg | disc | inception | clip
    clip: Optional[str] = None
    clip_arch: str = "ViT-B-32"
    clip_config: Optional[str] = None
    dormant_ratio: float = 0.1                   # dormant: std of w along it < ratio × the largest std
    basis_samples: int = 4096                    # latents of the PCA of W
    distance: float = 5.0                        # subspace distance s, in units of W's largest std
    steps: int = 300
    batch: int = 4                               # latents per step (domains are cycled over them)
    lr: float = 0.002
    lambda_expand: float = 1.0                   # NADA directional loss of the new domains
    lambda_recon: float = 10.0                   # pixel MSE G_exp(w) vs G(w) (base subspace kept)
    lambda_recon_feat: float = 10.0              # embedding distance G_exp(w) vs G(w) (the paper's LPIPS term)
    lambda_indomain: float = 0.5                 # HDN in-domain angle of each new domain
    truncation: float = 0.7
    n_source: int = 64                           # G samples whose mean embedding is the image direction's source
    seed: int = 0
    checkpoint_minutes: float = 2.0
    sample_every: int = 0
    threads: Optional[int] = None
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "texts", tuple(self.texts))
        if self.texts and self.embedder != "clip":
            object.__setattr__(self, "embedder", "clip")  # only CLIP embeds text
        if self.steps < 1 or self.batch < 2:
            raise GandaptError("--steps must be >= 1 and --batch >= 2")
        if self.distance <= 0:
            raise GandaptError(f"--distance must be > 0, got {self.distance}")
        if self.shots is not None and self.shots < 1:
            raise GandaptError("--shots must be >= 1")
        self.domains()  # validates names and duplicates up front
        self.check_ranges(positive=("lr", "basis_samples", "truncation", "n_source"),
                          non_negative=("checkpoint_minutes", "sample_every"))

    def domains(self) -> List[DomainSpec]:
        """The new domains in order (images first, then prompts).

        Raises:
            GandaptError: no domain, an empty name, or a duplicate name or target.
        """
        specs = [_spec(t, "images") for t in self.targets] + [_spec(t, "text") for t in self.texts]
        if not specs:
            raise GandaptError("give at least one new domain: --target [NAME=]FOLDER (images) or --text PROMPT")
        names = [s.name for s in specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise GandaptError(f"duplicate domain name(s) {', '.join(dup)}; each new domain needs its own "
                               "direction, so give each target once (or name them NAME=FOLDER)")
        values = [(s.kind, s.value) for s in specs]
        same = sorted({v for k, v in values if values.count((k, v)) > 1})
        if same:
            raise GandaptError(f"target(s) {', '.join(same)} given twice under different names; two domains "
                               "with one target would train the same style twice")
        return specs


def _spec(text: str, kind: str) -> DomainSpec:
    name, sep, value = text.partition("=")
    if not sep:
        value = text
        name = Path(text.rstrip("/")).name if kind == "images" else text.strip().replace(" ", "_")
    name, value = name.strip(), value.strip()
    if not name or not value or "/" in name:
        raise GandaptError(f"bad domain {text!r}; write NAME=FOLDER or NAME=PROMPT with a name without '/'")
    return DomainSpec(name, kind, value)
