"""The domain encoder's file: plain containers, read with ``torch.load(weights_only=True)``.

Layout (``format_version`` 1), the envelope of :mod:`gandapt.checkpoint.module_file`::

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

from gandapt.checkpoint.common import PathLike, fail, reason
from gandapt.checkpoint.module_file import float_state, read_module_file, save_module_file
from gandapt.config import GeneratorConfig
from gandapt.errors import GandaptError
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
    return save_module_file(path, FORMAT_NAME, FORMAT_VERSION, E,
                            {"config": E.config.to_dict(), "base_fingerprint": str(base_fingerprint),
                             "base_config": base_config.to_dict()}, extra, force=force)


def load_domain_encoder(path: PathLike, device: str = "cpu") -> DomainEncoderFile:
    """Load a file written by :func:`save_domain_encoder`.

    Raises:
        CheckpointError: missing/unreadable file, another kind of file, a newer format, or weights
            that do not fit the stored config.
    """
    path = Path(path)
    obj = read_module_file(path, FORMAT_NAME, FORMAT_VERSION, "domain encoder",
                           "the degan.pt written by gandapt-train degan")
    try:
        config = DomainEncoderConfig.from_dict(obj["config"])
        base_config = GeneratorConfig.from_dict(obj["base_config"])
        check_generator(config, base_config)
        E = DomainEncoder(config)
        E.load_state_dict(float_state(obj["state_dict"]))
    except (KeyError, TypeError, RuntimeError, GandaptError) as err:
        raise fail(f"domain encoder {path} does not match its stored config ({reason(err)}); "
                   "the file is corrupt") from None
    return DomainEncoderFile(E.eval().to(device), config, str(obj.get("base_fingerprint", "")), base_config, path,
                             dict(obj.get("extra") or {}))
