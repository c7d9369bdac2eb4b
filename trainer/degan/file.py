"""The domain encoder's file: plain containers, read with ``torch.load(weights_only=True)``.

Layout (``format_version`` 1), following :mod:`gandapt.checkpoint.encoder_file`::

    {'gandapt_format': 'gandapt.domain-encoder', 'format_version': 1,
     'config': DomainEncoderConfig.to_dict(), 'state_dict': {key: Tensor},
     'base_fingerprint': 'g2:…',          # the generator whose StyleSpace the offsets are for
     'base_config': GeneratorConfig.to_dict(),
     'extra': {...}}                      # training options, resume state (plain data)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch

from gandapt.checkpoint.common import PathLike, fail, reason
from gandapt.checkpoint.native import _check_plain
from gandapt.config import GeneratorConfig
from gandapt.errors import GandaptError
from gandapt.io import atomic_path
from gandapt.trainer.degan.model import DomainEncoder, DomainEncoderConfig, check_generator

FORMAT_NAME = "gandapt.domain-encoder"
FORMAT_VERSION = 1


@dataclass(eq=False)
class DomainEncoderFile:
    """A loaded domain encoder.

    Attributes:
        E: the :class:`~gandapt.trainer.degan.model.DomainEncoder` in eval mode (fp32).
        config: its config.
        base_fingerprint: fingerprint of the generator it was trained for.
        base_config: that generator's config.
        path: the file it came from.
        extra: plain data stored with it.
    """

    E: DomainEncoder = field(repr=False)
    config: DomainEncoderConfig
    base_fingerprint: str
    base_config: GeneratorConfig
    path: Path
    extra: Dict[str, Any] = field(default_factory=dict)


def save_domain_encoder(path: PathLike, E: DomainEncoder, base_fingerprint: str, base_config: GeneratorConfig,
                        extra: Optional[Mapping[str, Any]] = None, force: bool = False) -> Path:
    """Write a domain encoder atomically (an existing file is kept unless ``force``).

    Args:
        path: target file.
        E: the encoder.
        base_fingerprint: fingerprint of the generator the offsets are for.
        base_config: that generator's config.
        extra: plain data stored alongside.
        force: overwrite an existing file.
    """
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    state = {k: v.detach().cpu().contiguous() for k, v in E.state_dict().items()}
    payload = {"gandapt_format": FORMAT_NAME, "format_version": FORMAT_VERSION, "config": E.config.to_dict(),
               "state_dict": state, "base_fingerprint": str(base_fingerprint),
               "base_config": base_config.to_dict(), "extra": extra}
    with atomic_path(path, force=force) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_domain_encoder(path: PathLike, device: str = "cpu") -> DomainEncoderFile:
    """Load a file written by :func:`save_domain_encoder`.

    Raises:
        CheckpointError: missing/unreadable file, another kind of file, a newer format, or weights
            that do not fit the stored config.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(f"{path} does not exist or is not a file; give a domain encoder (.pt) written by "
                   "gandapt-train degan")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unpickling failure is a bad file)
        raise fail(f"{path} is not a readable domain encoder file ({reason(err)})") from None
    if not isinstance(obj, Mapping) or obj.get("gandapt_format") != FORMAT_NAME:
        kind = obj.get("gandapt_format") if isinstance(obj, Mapping) else None
        raise fail(f"{path} is {'a gandapt ' + repr(kind) + ' file' if kind else 'not a gandapt file'}, not a domain "
                   "encoder; pass the degan.pt written by gandapt-train degan")
    version = obj.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise fail(f"domain encoder {path}: format_version is {version!r}; the file is corrupt")
    if version > FORMAT_VERSION:
        raise fail(f"domain encoder {path} has format_version {version}, newer than this gandapt reads "
                   f"({FORMAT_VERSION}); upgrade gandapt")
    try:
        config = DomainEncoderConfig.from_dict(obj["config"])
        base_config = GeneratorConfig.from_dict(obj["base_config"])
        check_generator(config, base_config)
        E = DomainEncoder(config)
        E.load_state_dict({k: v.float() for k, v in obj["state_dict"].items()})
    except (KeyError, TypeError, RuntimeError, GandaptError) as err:
        raise fail(f"domain encoder {path} does not match its stored config ({reason(err)}); "
                   "the file is corrupt") from None
    return DomainEncoderFile(E.eval().to(device), config, str(obj.get("base_fingerprint", "")), base_config, path,
                             dict(obj.get("extra") or {}))
