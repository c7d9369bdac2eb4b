"""gandapt: adapt a pretrained StyleGAN2 to new domains with small adapters and switch them live.

Importing ``gandapt`` is cheap and imports no torch (DESIGN §1): an edge box runs the runtime with
numpy, opencv and onnxruntime only. Heavier names load on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gandapt.lazy import lazy_exports

__version__ = "0.1.0"

# Names served lazily from their modules; gandapt.layout needs numpy, gandapt.checkpoint needs torch.
_LAZY = {
    "GandaptError": "gandapt.errors",
    "CheckpointError": "gandapt.errors",
    "DomainError": "gandapt.errors",
    "GeneratorConfig": "gandapt.config",
    "DomainLayout": "gandapt.layout",
}

__all__ = ["__version__", "load", "load_encoder", *_LAZY]


def load(path: Any, *args: Any, **kwargs: Any) -> Any:
    """Load a checkpoint of any supported format; see :func:`gandapt.checkpoint.load`.

    Args:
        path: rosinality ``.pt``, NVlabs ``.pkl`` or state-dict file, or a gandapt native ``.pt``.
        *args: passed on to :func:`gandapt.checkpoint.load`.
        **kwargs: passed on to :func:`gandapt.checkpoint.load`.

    Returns:
        The loaded checkpoint (generator, discriminator when present, config, format, fingerprint).
    """
    from gandapt.checkpoint import load as _load  # torch is imported only here

    return _load(path, *args, **kwargs)


def load_encoder(path: Any, *args: Any, **kwargs: Any) -> Any:
    """Load a W+ inversion encoder; see :func:`gandapt.checkpoint.load_encoder`.

    Returns:
        An :class:`~gandapt.checkpoint.EncoderFile` (``.E`` maps images [N, 3, R, R] in [-1, 1] to
        ws [N, num_ws, w_dim]; ``.base_fingerprint`` names the generator it inverts into).
    """
    from gandapt.checkpoint import load_encoder as _load_encoder

    return _load_encoder(path, *args, **kwargs)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


# In a source checkout the other folders of the design card stand beside gandapt/ (DESIGN §1). When
# this checkout is imported directly (Python started in the repository root) rather than through an
# installed copy, let gandapt.trainer, gandapt.runtime, ... resolve to those folders too.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "setup.cfg").is_file() and (_checkout / "runtime" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (module __path__)
