"""gandapt's native model file: plain containers only, so ``torch.load(weights_only=True)`` reads it.

Layout (``format_version`` 1)::

    {'gandapt_format': 'gandapt.model', 'format_version': 1,
     'G': {'config': GeneratorConfig.to_dict(), 'state_dict': {key: Tensor}},
     'D': {'config': DiscriminatorConfig.to_dict(), 'state_dict': {...}} or None,
     'extra': {...}}          # str keys; dicts, lists, tuples, tensors, numbers, strings, None

Files are written through :func:`gandapt.io.atomic_path`: a crash never leaves a half-written model
under the final name, and an existing file is kept unless ``force``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from gandapt.checkpoint.common import NetworkStates, PathLike, fail
from gandapt.checkpoint.infer import Source, check_state, discriminator_shapes, generator_shapes
from gandapt.checkpoint.nvlabs import check_same_resolution, tensor_dict
from gandapt.config import DiscriminatorConfig, GeneratorConfig
from gandapt.errors import GandaptError
from gandapt.io import atomic_path

FORMAT_NAME = "gandapt.model"
FORMAT_VERSION = 1

_LEAVES = (str, int, float, bool, type(None), torch.Tensor)


def _check_plain(value: Any, where: str) -> None:
    """Refuse values ``torch.load(weights_only=True)`` could not read back."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise GandaptError(f"save_native: {where} has a key of type {type(k).__name__}; use str keys")
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(value, _LEAVES):
        raise GandaptError(
            f"save_native: {where} is a {type(value).__name__}; extra may hold only dicts, lists, tuples, "
            "tensors, numbers, strings and None (so the file loads with weights_only=True)"
        )


def _network(module: torch.nn.Module, cls, what: str, dtype: Optional[torch.dtype] = None) -> dict:
    config = getattr(module, "config", None)
    if not isinstance(config, cls):
        raise GandaptError(f"save_native: {what} has no .config of type {cls.__name__}; pass a gandapt network")
    state = {}
    for k, v in module.state_dict().items():
        v = v.detach().cpu().contiguous()
        state[k] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
    return {"config": config.to_dict(), "state_dict": state}


def save_native(
    path: PathLike,
    G: torch.nn.Module,
    D: Optional[torch.nn.Module] = None,
    extra: Optional[Mapping[str, Any]] = None,
    force: bool = False,
    dtype: Optional[torch.dtype] = None,
) -> Path:
    """Write ``G`` (and ``D``) in gandapt's native format, atomically.

    Args:
        path: target file (conventionally ``model.pt``).
        G: a :class:`~gandapt.generator.Generator` (anything with a ``GeneratorConfig`` ``.config``).
        D: a :class:`~gandapt.discriminator.Discriminator`, or None.
        extra: plain data stored alongside (adapter state, domain pack, training settings).
        force: overwrite an existing file.
        dtype: store the networks' floating-point tensors in this dtype (``torch.float16`` halves a
            shipped model; loading casts back to fp32).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        GandaptError: ``path`` exists (without ``force``) or is a directory, or ``extra``/the networks
            hold something that would not load with ``weights_only=True``.
    """
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    payload = {
        "gandapt_format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "G": _network(G, GeneratorConfig, "G", dtype),
        "D": _network(D, DiscriminatorConfig, "D", dtype) if D is not None else None,
        "extra": extra,
    }
    with atomic_path(path, force=force) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _section(obj: Mapping, name: str, cls, shapes, path: Path):
    entry = obj.get(name)
    if not isinstance(entry, Mapping) or "config" not in entry or "state_dict" not in entry:
        raise fail(f"checkpoint {path}: entry '{name}' is not a {{'config', 'state_dict'}} dict; the file is corrupt")
    if not isinstance(entry["config"], Mapping):
        raise fail(f"checkpoint {path}: {name}['config'] is not a dict; the file is corrupt")
    try:
        config = cls.from_dict(entry["config"])
    except GandaptError as e:
        raise fail(f"checkpoint {path}: {name} config is invalid ({e})") from None
    state = tensor_dict(entry["state_dict"], path, f"{name}['state_dict']")
    check_state(state, shapes(config), Source(path, f"{name}['state_dict']", basis=f"the {name} config stored in the file"))
    return config, state


def read_native(obj: Mapping[str, Any], path: Path) -> NetworkStates:
    """Read a torch-loaded native model dict (see the module docstring for the layout).

    Raises:
        CheckpointError: a newer ``format_version``, a malformed entry or a state dict that does not fit
            its config.
    """
    if obj.get("gandapt_format") != FORMAT_NAME:
        raise fail(
            f"{path} is a gandapt file of kind {obj.get('gandapt_format')!r}, not a model "
            f"({FORMAT_NAME!r}); pass a model file"
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise fail(f"checkpoint {path}: format_version is {version!r}, not a positive integer; the file is corrupt")
    if version > FORMAT_VERSION:
        raise fail(
            f"checkpoint {path} has format_version {version}, newer than this gandapt reads "
            f"({FORMAT_VERSION}); upgrade gandapt"
        )
    config, g_state = _section(obj, "G", GeneratorConfig, generator_shapes, path)
    d_config = d_state = None
    if obj.get("D") is not None:
        d_config, d_state = _section(obj, "D", DiscriminatorConfig, discriminator_shapes, path)
        check_same_resolution(config, d_config, path)
    extra = obj.get("extra") or {}
    if not isinstance(extra, dict):
        raise fail(f"checkpoint {path}: extra is a {type(extra).__name__}, not a dict; the file is corrupt")
    return NetworkStates(g_state, config, d_state, d_config, "gandapt", Path(path), dict(extra))
