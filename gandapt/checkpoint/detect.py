"""Format detection by content, and :func:`load`, the one entry point for every checkpoint format.

The file extension is never trusted: a zip archive is a ``torch.save`` file (loaded with
``weights_only=True``, allowing ``argparse.Namespace`` and nothing more) classified by its keys; a
pickle stream is an NVlabs network pickle (read with the restricted unpickler), except the pre-1.6
``torch.save`` format, which torch loads with ``weights_only=True`` too; a safetensors file
with gandapt metadata is a domain pack, which is not a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch

from gandapt.checkpoint.common import SUPPORTED_FORMATS, Checkpoint, NetworkStates, PathLike, fail, reason
from gandapt.checkpoint.native import read_native
from gandapt.checkpoint.nvlabs import read_nvlabs_state_dict
from gandapt.checkpoint.nvlabs_pickle import read_network_pickle, weights_only_refusal
from gandapt.checkpoint.rosinality import read_rosinality

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# torch.save's pre-1.6 format: a protocol-2 pickle of this LONG1 magic number comes first.
_TORCH_LEGACY = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
_SUPPORTED = "; ".join(SUPPORTED_FORMATS)


def _check_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise fail(f"checkpoint {path} not found; check the path")
    if path.is_dir():
        raise fail(f"checkpoint {path} is a directory; pass the checkpoint file inside it")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as e:
        raise fail(f"cannot read checkpoint {path}: {e.strerror or e}; check its permissions") from None
    if size == 0:
        raise fail(f"checkpoint {path} is empty (0 bytes); the download or copy failed, fetch it again")
    return path


def _safetensors_metadata(path: Path, head: bytes) -> Optional[Mapping]:
    """The ``__metadata__`` of a safetensors file ({} if none), or None if it is not safetensors."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (n,) = struct.unpack("<Q", head[:8])
    if n > min(100 << 20, path.stat().st_size - 8):
        return None
    with open(path, "rb") as f:
        f.seek(8)
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__")
    return meta if isinstance(meta, dict) else {}


def sniff(path: PathLike) -> str:
    """The container kind of ``path`` from its first bytes (no loading).

    Returns:
        ``'torch-zip'``, ``'torch-legacy'``, ``'pickle'``, ``'domain-pack'``, ``'safetensors'`` or
        ``'unknown'``.

    Raises:
        CheckpointError: the file is missing, a directory, unreadable or empty.
    """
    path = _check_file(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(_ZIP_MAGIC):
        return "torch-zip"
    if head.startswith(_TORCH_LEGACY):
        return "torch-legacy"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO opcode, protocols 2..5
        return "pickle"
    meta = _safetensors_metadata(path, head)
    if meta is not None:
        return "domain-pack" if str(meta.get("gandapt_format", "")).startswith("gandapt.") else "safetensors"
    return "unknown"


def _torch_load(path: Path) -> Any:
    try:
        # rosinality training checkpoints pickle their argparse.Namespace; allow exactly that class.
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        refusal = weights_only_refusal(e)
        if refusal:
            raise fail(f"refusing to load {path}: it {refusal} (gandapt never runs code from checkpoints)") from None
        raise fail(
            f"checkpoint {path} is truncated or corrupt ({reason(e)}); "
            "download or copy it again"
        ) from None


def _classify(obj: Any, path: Path) -> NetworkStates:
    if not isinstance(obj, dict):
        raise fail(f"{path} holds a {type(obj).__name__}, not a checkpoint; supported formats: {_SUPPORTED}")
    if "gandapt_format" in obj:
        return read_native(obj, path)
    if "G_ema" in obj:
        return read_nvlabs_state_dict(obj, path)
    if "g_ema" in obj:
        return read_rosinality(obj, path)
    if "g" in obj and "d" in obj:
        raise fail(f"checkpoint {path} has rosinality networks g/d but no g_ema; gandapt loads the EMA generator "
                   "g_ema — save it in the checkpoint")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise fail(f"{path} is a bare state dict with no config or wrapper; gandapt cannot tell which network "
                   f"it is — save the whole checkpoint (supported formats: {_SUPPORTED})")
    keys = ", ".join(repr(k) for k in list(obj)[:6]) + (", ..." if len(obj) > 6 else "")
    raise fail(f"{path} is a torch file with keys {keys or 'none'}, which is no known checkpoint format; "
               f"supported formats: {_SUPPORTED}")


def read_states(path: PathLike) -> NetworkStates:
    """Read any supported checkpoint to the state-dict level (no modules are built).

    Raises:
        CheckpointError: one line naming the file, the problem and the fix.
    """
    path = Path(path)
    kind = sniff(path)
    if kind in ("torch-zip", "torch-legacy"):
        return _classify(_torch_load(path), path)
    if kind == "pickle":
        return read_network_pickle(path)
    if kind == "domain-pack":
        raise fail(f"{path} is a domain pack, not a checkpoint; pass it with --domains (or load it with "
                   "gandapt.pack.load_pack) together with its base checkpoint")
    if kind == "safetensors":
        raise fail(f"{path} is a safetensors file without gandapt metadata, not a supported checkpoint; "
                   f"supported formats: {_SUPPORTED}")
    raise fail(f"{path} is not a checkpoint gandapt can read (unknown format); supported formats: {_SUPPORTED}")


def _module(cls, config, state, device) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):  # random init is overwritten; keep the caller's RNG stream
        module = cls(config)
    module.load_state_dict(state, strict=True)
    return module.eval().to(device)


def build(states: NetworkStates, device: Union[str, torch.device] = "cpu", with_d: bool = True) -> Checkpoint:
    """Build the torch modules of :class:`NetworkStates` and wrap them in a :class:`Checkpoint`."""
    from gandapt.discriminator import Discriminator
    from gandapt.generator import Generator

    G = _module(Generator, states.config, states.g_state, device)
    D = None
    if with_d and states.d_state is not None:
        D = _module(Discriminator, states.d_config, states.d_state, device)
    return Checkpoint(G, D, states.config, states.d_config if D is not None else None,
                      states.format, states.path, states.extra)


def load(path: PathLike, device: Union[str, torch.device] = "cpu", with_d: bool = True) -> Checkpoint:
    """Load a StyleGAN2 checkpoint of any supported format, detected from its content.

    Supported: rosinality ``.pt`` (``g_ema``, ``d``, ``latent_avg``), NVlabs stylegan2-ada-pytorch
    network pickles (read without running their code), NVlabs state-dict files
    (``G_ema``/``G``/``D``/``init_kwargs``) and gandapt native model files.

    Args:
        path: the checkpoint file.
        device: where the modules go.
        with_d: also build the discriminator when the file has one.

    Returns:
        A :class:`Checkpoint`: ``.G`` (EMA generator, eval mode), ``.D`` (or None), ``.config``,
        ``.d_config``, ``.format``, ``.path``, ``.extra`` and the lazy ``.fingerprint``.

    Raises:
        CheckpointError: one line naming the file, the problem and the fix (missing, empty, corrupt,
            unknown format, refused global, inconsistent shapes, unsupported network).
    """
    return build(read_states(os.fspath(path)), device=device, with_d=with_d)
