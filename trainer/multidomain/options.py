"""Options of a multi-domain hypernetwork run (frozen; the resolved copy is saved with the run)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from gandapt.errors import GandaptError
from gandapt.trainer.run_options import RunOptions

RESUMABLE_CHANGES = frozenset({"out", "steps", "checkpoint_minutes", "threads", "progress", "device"})

# method -> defaults. HDN's multi-domain configs use lr 5e-5 for 10k steps at 1024 px (methods.md
# §2.3); a few hundred CPU steps need a larger step: 2e-4 moves d about as fast per step as
# domain-mod's lr 0.02 on d itself. DynaGAN: Adam lr 0.002, betas (0, 0.99), batch 4 (§4.2).
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "hyperdomainnet": {"steps": 400, "batch": 4, "lr": 2e-4, "hidden": 256, "depth": 2,
                       "lambda_direction": 1.0, "lambda_indomain": 0.0, "lambda_tt": 0.4, "lambda_norm": 0.5,
                       "lambda_contrast": 0.0, "lambda_id": 3.0, "mixing": 0.5},
    "dynagan": {"steps": 400, "batch": 4, "lr": 2e-3, "hidden": 128, "depth": 2,
                "lambda_direction": 1.0, "lambda_indomain": 0.0, "lambda_tt": 0.0, "lambda_norm": 0.0,
                "lambda_contrast": 1.0, "lambda_id": 3.0, "mixing": 0.0},
}
# The identity weight applies only with an identity network (--id-encoder); without one the term is off,
# as DynaGAN's released code leaves it and as HyperDomainNet has none (objectives.py).
METHODS = tuple(DEFAULTS)
CONTRAST_SPACES = ("embedding", "direction")


@dataclass(frozen=True)
class MultiDomainTrainOptions(RunOptions):
    """Everything that defines a ``gandapt-train hyperdomainnet|dynagan`` run (CLI flags mirror it).

    Fields left as None take the method's :data:`DEFAULTS`; :meth:`resolved` fills them in.
    """

    resumable = RESUMABLE_CHANGES  # not a field: no annotation

    method: str                                  # hyperdomainnet | dynagan
    model: str                                   # frozen base model (any checkpoint format)
    out: str                                     # run directory
    targets: Tuple[str, ...] = ()                # one image folder per domain
    texts: Tuple[str, ...] = ()                  # or one prompt per domain (hyperdomainnet, needs CLIP)
    names: Tuple[str, ...] = ()                  # domain names (default: folder names / prompts)
    shots: Optional[int] = None                  # use the first N images of each folder
    source_text: str = "photo"                   # source prompt of the text directions
    embedder: str = "vgg"                        # vgg | disc | inception | clip
    clip: Optional[str] = None                   # local open_clip checkpoint
    clip_arch: str = "ViT-B-32"
    clip_config: Optional[str] = None
    steps: Optional[int] = None
    batch: Optional[int] = None
    lr: Optional[float] = None
    hidden: Optional[int] = None                 # hypernetwork width
    depth: Optional[int] = None                  # HDN: backbone blocks (1 = one linear layer)
    lambda_direction: Optional[float] = None     # NADA / MindTheGap-across direction loss
    lambda_indomain: Optional[float] = None      # HDN in-domain angle
    lambda_tt: Optional[float] = None            # HDN target-target direction
    lambda_norm: Optional[float] = None          # HDN domain-norm (offsets_l2)
    lambda_contrast: Optional[float] = None      # DynaGAN contrastive adaptation
    lambda_id: Optional[float] = None            # identity loss (default 3 with id_encoder, else 0: as released)
    mixing: Optional[float] = None               # HDN: fraction of samples on a random convex mix of domains
    temperature: float = 1.0                     # DynaGAN contrastive temperature
    contrast_space: str = "embedding"            # DynaGAN: contrast embeddings (paper) or directions from G(w)
    encoder: Optional[str] = None                # DynaGAN: directions start at the references' inversions G(E(x))
    id_encoder: Optional[str] = None             # inversion encoder as the identity loss's network
    truncation: float = 0.7
    n_source: int = 64                           # G samples whose mean embedding is the source
    seed: int = 0
    checkpoint_minutes: float = 2.0
    threads: Optional[int] = None
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets or ()))
        object.__setattr__(self, "texts", tuple(self.texts or ()))
        object.__setattr__(self, "names", tuple(self.names or ()))
        if self.method not in DEFAULTS:
            raise GandaptError(f"unknown multi-domain method {self.method!r}; choose from {', '.join(METHODS)}")
        if bool(self.targets) == bool(self.texts):
            raise GandaptError("give the domains either as --target FOLDER (repeated) or as --text PROMPT "
                               "(repeated, needs --clip), not both or neither")
        if self.texts and self.method == "dynagan":
            raise GandaptError("dynagan adapts to target images (one-hot domain codes); give --target folders")
        if self.texts and not self.clip:
            raise GandaptError("text domains need CLIP: pass --clip PATH (a local open_clip checkpoint); "
                               "without CLIP give image folders with --target")
        if self.texts and self.embedder != "clip":
            object.__setattr__(self, "embedder", "clip")  # only CLIP embeds text
        given = self.targets or self.texts
        keys = [str(Path(t).resolve()) for t in self.targets] if self.targets else [t.strip().lower() for t in self.texts]
        dup = sorted({given[i] for i, k in enumerate(keys) if keys.index(k) != i})
        if dup:
            raise GandaptError(f"duplicate domain(s) {', '.join(map(repr, dup))}; list each domain once")
        if len(given) < 2:
            raise GandaptError(f"{self.method} learns several domains at once and needs at least 2 (got "
                               f"{len(given)}); for one domain use gandapt-train domain-mod")
        if self.names and len(self.names) != len(given):
            raise GandaptError(f"--name given {len(self.names)} times for {len(given)} domains; give one per domain")
        names = self.domain_names()
        if len(set(names)) != len(names):
            raise GandaptError(f"duplicate domain names {names}; pass a distinct --name per domain")
        if self.shots is not None and self.shots < 1:
            raise GandaptError("--shots must be >= 1")
        if self.encoder is not None and self.method != "dynagan":
            raise GandaptError("--encoder applies to dynagan (its directions start at each reference's inversion); "
                               "hyperdomainnet conditions on embeddings and has one source for every domain")
        if self.lambda_id and self.id_encoder is None:
            raise GandaptError(f"--lambda-id {self.lambda_id} needs an identity network: pass --id-encoder FILE (the "
                               "base model's inversion encoder; gandapt.samples.encoder() for the embedded model), or "
                               "leave --lambda-id out")
        if self.contrast_space not in CONTRAST_SPACES:
            raise GandaptError(f"--contrast-space must be one of {', '.join(CONTRAST_SPACES)}, "
                               f"got {self.contrast_space!r}")
        if self.contrast_space != "embedding" and self.method != "dynagan":
            raise GandaptError("--contrast-space applies to dynagan's contrastive loss; hyperdomainnet has none")
        if self.mixing is not None and not 0 <= self.mixing <= 1:
            raise GandaptError(f"--mixing must lie in [0, 1], got {self.mixing}")
        self.check_ranges(positive=("steps", "batch", "lr", "hidden", "depth", "temperature", "truncation", "n_source"),
                          non_negative=("checkpoint_minutes",))

    def resolved(self) -> "MultiDomainTrainOptions":
        """A copy with every None default replaced by the method's value."""
        fill = dict(DEFAULTS[self.method])
        if self.id_encoder is None:
            fill["lambda_id"] = 0.0
        return dataclasses.replace(self, **{k: v for k, v in fill.items() if getattr(self, k) is None})

    def domain_names(self) -> Tuple[str, ...]:
        if self.names:
            return self.names
        if self.targets:
            return tuple(Path(t).name or str(t) for t in self.targets)
        return tuple(t.strip().replace(" ", "_").replace("/", "_") for t in self.texts)

