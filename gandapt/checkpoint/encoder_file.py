"""The inversion encoder's file: plain containers, read with ``torch.load(weights_only=True)``.

Layout (``format_version`` 1)::

    {'gandapt_format': 'gandapt.encoder', 'format_version': 1,
     'config': EncoderConfig.to_dict(), 'state_dict': {key: Tensor},
     'base_fingerprint': 'g2:…',     # the generator the encoder inverts into
     'extra': {...}}                 # training options, metrics (plain data)

Weights may be stored in fp16 (``dtype``); they load back as fp32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch

from gandapt.checkpoint.common import PathLike, fail, reason
from gandapt.checkpoint.module_file import float_state, read_module_file, save_module_file
from gandapt.encoder import Encoder, EncoderConfig
from gandapt.errors import GandaptError

FORMAT_NAME = "gandapt.encoder"
FORMAT_VERSION = 1


@dataclass(eq=False)
class EncoderFile:
    """A loaded encoder.

    Attributes:
        E: the :class:`~gandapt.encoder.Encoder` in eval mode (fp32).
        config: its :class:`~gandapt.encoder.EncoderConfig`.
        base_fingerprint: fingerprint of the generator it was trained for.
        path: the file it came from.
        extra: plain data stored with it (training options, metrics).
    """

    E: Encoder = field(repr=False)
    config: EncoderConfig
    base_fingerprint: str
    path: Path
    extra: Dict[str, Any] = field(default_factory=dict)


def save_encoder(path: PathLike, E: Encoder, base_fingerprint: str, extra: Optional[Mapping[str, Any]] = None,
                 dtype: Optional[torch.dtype] = None, force: bool = False) -> Path:
    """Write an encoder atomically (an existing file is kept unless ``force``).

    Args:
        path: target file.
        E: the encoder.
        base_fingerprint: fingerprint of the generator ``E`` inverts into (``Checkpoint.fingerprint``).
        extra: plain data stored alongside.
        dtype: store floating-point tensors in this dtype (e.g. ``torch.float16`` to halve the file).
        force: overwrite an existing file.
    """
    return save_module_file(path, FORMAT_NAME, FORMAT_VERSION, E,
                            {"config": E.config.to_dict(), "base_fingerprint": str(base_fingerprint)},
                            extra, dtype, force)


def load_encoder(path: PathLike, device: str = "cpu") -> EncoderFile:
    """Load an encoder file written by :func:`save_encoder`.

    Raises:
        CheckpointError: missing/unreadable file, another kind of gandapt file, a newer format, or
            weights that do not fit the stored config.
    """
    path = Path(path)
    obj = read_module_file(path, FORMAT_NAME, FORMAT_VERSION, "encoder",
                           "the encoder.pt written by gandapt-train encoder")
    try:
        config = EncoderConfig.from_dict(obj["config"])
        E = Encoder(config)
        E.load_state_dict(float_state(obj["state_dict"]))
    except (KeyError, TypeError, RuntimeError, GandaptError) as err:
        raise fail(f"encoder {path} does not match its stored config ({reason(err)}); the file is corrupt") from None
    return EncoderFile(E.eval().to(device), config, str(obj.get("base_fingerprint", "")), path,
                       dict(obj.get("extra") or {}))
