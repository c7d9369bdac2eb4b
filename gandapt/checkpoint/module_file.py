"""Files that hold one network: a versioned dict of plain containers, read with ``weights_only=True``.

The inversion encoder (:mod:`gandapt.checkpoint.encoder_file`) and DEGAN's domain encoder
(:mod:`gandapt.trainer.degan.file`) share this shape::

    {'gandapt_format': NAME, 'format_version': N, 'config': {...}, 'state_dict': {key: Tensor},
     'base_fingerprint': 'g2:…', ..., 'extra': {...}}

This module writes and validates the envelope; each file kind builds its own network from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from gandapt.checkpoint.common import PathLike, fail, reason
from gandapt.checkpoint.native import _check_plain
from gandapt.io import atomic_path


def save_module_file(path: PathLike, format_name: str, format_version: int, module: nn.Module,
                     fields: Mapping[str, Any], extra: Optional[Mapping[str, Any]] = None,
                     dtype: Optional[torch.dtype] = None, force: bool = False) -> Path:
    """Write ``module``'s weights with ``fields`` (its config, base fingerprint, ...) atomically.

    Args:
        path: target file (kept unless ``force``).
        format_name, format_version: the envelope's ``gandapt_format`` and ``format_version``.
        module: the network; its ``state_dict`` is stored on CPU.
        fields: plain top-level entries (``config``, ``base_fingerprint``, ...).
        extra: plain data stored alongside (checked to be plain containers).
        dtype: store floating-point tensors in this dtype (e.g. ``torch.float16``).
        force: overwrite an existing file.
    """
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    state = {}
    for k, v in module.state_dict().items():
        v = v.detach().cpu().contiguous()
        state[k] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
    payload = {"gandapt_format": format_name, "format_version": format_version, **fields,
               "state_dict": state, "extra": extra}
    with atomic_path(path, force=force) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def read_module_file(path: PathLike, format_name: str, format_version: int, what: str, written_by: str) -> dict:
    """The validated envelope of a file :func:`save_module_file` wrote.

    Args:
        path: the file.
        format_name, format_version: the expected kind and the newest version this gandapt reads.
        what: the kind in words, for messages (``"encoder"``, ``"domain encoder"``).
        written_by: what to pass instead, e.g. ``"the encoder.pt written by gandapt-train encoder"``.

    Returns:
        The file's dict, with ``state_dict`` tensors as stored (callers convert and load them).

    Raises:
        CheckpointError: missing or unreadable file, another kind of file, a corrupt or newer version.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(f"{path} does not exist or is not a file; give {written_by}")
    if path.stat().st_size == 0:
        raise fail(f"{path} is empty (0 bytes); give {written_by}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unpickling failure is a bad file)
        raise fail(f"{path} is not a readable {what} file ({reason(err)}); give {written_by}") from None
    if not isinstance(obj, Mapping) or obj.get("gandapt_format") != format_name:
        kind = obj.get("gandapt_format") if isinstance(obj, Mapping) else None
        raise fail(f"{path} is {'a gandapt ' + repr(kind) + ' file' if kind else 'not a gandapt file'}, not "
                   f"{'an' if what[0] in 'aeiou' else 'a'} {what}; pass {written_by}")
    version = obj.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise fail(f"{what} {path}: format_version is {version!r}; the file is corrupt")
    if version > format_version:
        raise fail(f"{what} {path} has format_version {version}, newer than this gandapt reads "
                   f"({format_version}); upgrade gandapt")
    return dict(obj)


def float_state(state: Mapping[str, torch.Tensor]) -> dict:
    """A stored state dict with floating-point tensors back in fp32."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
