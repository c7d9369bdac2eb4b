"""Shared pieces of the checkpoint loaders: the result types and one-line error helpers.

Every reader turns its file into :class:`NetworkStates`: gandapt (= NVlabs minus ``resample_filter``)
state dicts plus configs, checked against the architecture. :func:`gandapt.checkpoint.load` then builds
the torch modules from them and returns a :class:`Checkpoint`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import torch

from gandapt.config import DiscriminatorConfig, GeneratorConfig
from gandapt.errors import CheckpointError
from gandapt.errors import one_line as _one_line

PathLike = Union[str, os.PathLike]
StateDict = Dict[str, torch.Tensor]

#: What :func:`gandapt.checkpoint.load` accepts, as listed in error messages.
SUPPORTED_FORMATS = (
    "rosinality stylegan2-pytorch .pt (g_ema/latent_avg)",
    "NVlabs stylegan2-ada-pytorch network pickle .pkl",
    "NVlabs state-dict file (G_ema/G/D/init_kwargs)",
    "gandapt native model .pt",
)

FORMATS = ("nvlabs-pkl", "nvlabs-state-dict", "rosinality", "gandapt")


@dataclass
class NetworkStates:
    """A checkpoint read to the state-dict level: tensors and configs, no modules yet.

    Attributes:
        g_state: inference (EMA) generator state dict, gandapt/NVlabs keys, no ``resample_filter``.
        config: the generator's architecture.
        d_state: discriminator state dict, or None when the file has none.
        d_config: the discriminator's architecture, or None.
        format: one of :data:`FORMATS`.
        path: the file it came from.
        extra: format-specific plain data (hyper-parameters, training settings, user data).
    """

    g_state: StateDict
    config: GeneratorConfig
    d_state: Optional[StateDict]
    d_config: Optional[DiscriminatorConfig]
    format: str
    path: Path
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        G: the inference generator (EMA weights where the file has both), in eval mode.
        D: the discriminator in eval mode, or None.
        config: ``G``'s :class:`~gandapt.config.GeneratorConfig`.
        d_config: ``D``'s :class:`~gandapt.config.DiscriminatorConfig`, or None.
        format: ``'nvlabs-pkl'``, ``'nvlabs-state-dict'``, ``'rosinality'`` or ``'gandapt'``.
        path: the file it was loaded from.
        extra: format-specific plain data (see each reader).
    """

    G: torch.nn.Module = field(repr=False)
    D: Optional[torch.nn.Module] = field(repr=False)
    config: GeneratorConfig
    d_config: Optional[DiscriminatorConfig]
    format: str
    path: Path
    extra: Dict[str, Any] = field(default_factory=dict)
    _fingerprint: Optional[str] = field(default=None, init=False, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """Base-model fingerprint of ``G`` (computed on first use; see :mod:`gandapt.fingerprint`)."""
        if self._fingerprint is None:
            from gandapt.fingerprint import fingerprint

            state = {k: v.detach().cpu().numpy() for k, v in self.G.state_dict().items()}
            self._fingerprint = fingerprint(self.config, state)
        return self._fingerprint


def one_line(text: Any, limit: int = 300) -> str:
    """One line of at most ``limit`` characters (for wrapped third-party errors)."""
    return _one_line(text, limit)


def reason(err: BaseException, limit: int = 160) -> str:
    """A short one-line reason from a library exception: its type and first sentence."""
    text = str(err).split(". ")[0].strip() or "no details"
    return one_line(f"{type(err).__name__}: {text}", limit)


def fail(message: str) -> CheckpointError:
    """A :class:`CheckpointError` with ``message`` forced onto one line (callers ``raise`` it)."""
    return CheckpointError(str(message).replace("\r", " ").replace("\n", " "))


def fmt_shape(shape: Sequence[int]) -> str:
    """``[64, 3, 3]``; a 0-d tensor is ``[]``."""
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def plain(value: Any) -> Any:
    """Deep-convert read data to plain Python: dict subclasses → dict, numpy scalars → numbers.

    Tensors and other leaves are kept. Used for hyper-parameters and settings put in ``extra``.
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        return item()
    return value
