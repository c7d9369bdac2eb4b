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
from gandapt.checkpoint.native import _check_plain
from gandapt.encoder import Encoder, EncoderConfig
from gandapt.errors import GandaptError
from gandapt.io import atomic_path

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
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    state = {}
    for k, v in E.state_dict().items():
        v = v.detach().cpu().contiguous()
        state[k] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
    payload = {"gandapt_format": FORMAT_NAME, "format_version": FORMAT_VERSION,
               "config": E.config.to_dict(), "state_dict": state,
               "base_fingerprint": str(base_fingerprint), "extra": extra}
    with atomic_path(path, force=force) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_encoder(path: PathLike, device: str = "cpu") -> EncoderFile:
    """Load an encoder file written by :func:`save_encoder`.

    Raises:
        CheckpointError: missing/unreadable file, another kind of gandapt file, a newer format, or
            weights that do not fit the stored config.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(f"{path} does not exist or is not a file; give the path of an encoder (.pt) "
                   "written by gandapt-train encoder")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unpickling failure is a bad file)
        raise fail(f"{path} is not a readable encoder file ({reason(err)})") from None
    if not isinstance(obj, Mapping) or obj.get("gandapt_format") != FORMAT_NAME:
        kind = obj.get("gandapt_format") if isinstance(obj, Mapping) else None
        raise fail(f"{path} is {'a gandapt ' + repr(kind) + ' file' if kind else 'not a gandapt encoder'}, "
                   "not an encoder; pass the encoder.pt written by gandapt-train encoder")
    version = obj.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise fail(f"encoder {path}: format_version is {version!r}; the file is corrupt")
    if version > FORMAT_VERSION:
        raise fail(f"encoder {path} has format_version {version}, newer than this gandapt reads "
                   f"({FORMAT_VERSION}); upgrade gandapt")
    try:
        config = EncoderConfig.from_dict(obj["config"])
        E = Encoder(config)
        state = {k: v.float() if v.is_floating_point() else v for k, v in obj["state_dict"].items()}
        E.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError, GandaptError) as err:
        raise fail(f"encoder {path} does not match its stored config ({reason(err)}); the file is corrupt") from None
    return EncoderFile(E.eval().to(device), config, str(obj.get("base_fingerprint", "")), path,
                       dict(obj.get("extra") or {}))
