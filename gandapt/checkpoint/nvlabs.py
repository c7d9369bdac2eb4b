"""NVlabs stylegan2-ada-pytorch networks: state dicts + constructor kwargs → :class:`NetworkStates`.

Shared by the network-pickle reader (:mod:`gandapt.checkpoint.nvlabs_pickle`) and the state-dict file
layout ``{'G_ema', 'G', 'D', 'init_kwargs'}`` of the golden files. ``G`` there is the *training*
generator; the inference generator is ``G_ema``.

Provenance: the key names, defaults (``architecture='skip'`` for G, ``'resnet'`` for D,
``mbstd_group_size=4``, ``mbstd_num_channels=1``, mapping ``lr_multiplier=0.01``) and the
``resample_filter`` value are facts about NVlabs' checkpoint format (NVIDIA Source Code License,
non-commercial); gandapt copies no code from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from gandapt.checkpoint.common import NetworkStates, StateDict, fail, plain
from gandapt.checkpoint.infer import Source, infer_discriminator_config, infer_generator_config

_TAP = torch.tensor([1.0, 3.0, 3.0, 1.0])
#: Every NVlabs ``resample_filter`` buffer: outer([1,3,3,1])² / 64, which sums to 1.
RESAMPLE_FILTER = torch.outer(_TAP, _TAP) / 64.0

# Positional constructor arguments, for pickles whose networks were built with positional args.
G_INIT_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
D_INIT_ARGS = (
    "c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max", "num_fp16_res", "conv_clamp",
)


def tensor_dict(obj: Any, path: Path, section: str) -> StateDict:
    """Check that ``obj`` is a ``{str: Tensor}`` mapping and return it as a plain dict of detached tensors."""
    if not isinstance(obj, Mapping):
        raise fail(f"checkpoint {path}: entry '{section}' is a {type(obj).__name__}, not a state dict; the file is corrupt")
    out: StateDict = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise fail(
                f"checkpoint {path}: {section}[{key!r}] is a {type(value).__name__}, not a tensor; "
                "the file is corrupt or not a StyleGAN2 checkpoint"
            )
        out[key] = value.detach()
    return out


def strip_resample_filters(state: StateDict, src: Source) -> StateDict:
    """Drop the ``resample_filter`` buffers (gandapt rebuilds them), verifying they are the standard filter.

    Raises:
        CheckpointError: a filter is not outer([1,3,3,1])²/64, which gandapt's networks could not reproduce.
    """
    out: StateDict = {}
    for key, value in state.items():
        if key == "resample_filter" or key.endswith(".resample_filter"):
            if tuple(value.shape) != (4, 4) or not torch.allclose(value.float().cpu(), RESAMPLE_FILTER, atol=1e-6):
                raise fail(
                    f"checkpoint {src.path}: {src.key(key)} is not the standard [1,3,3,1] filter; gandapt "
                    "supports only StyleGAN2's default resample filter"
                )
            continue
        out[key] = value
    return out


def merge_init_kwargs(args: Any, kwargs: Any, names) -> dict:
    """Merge positional ``args`` (named by ``names``) into ``kwargs`` as one plain dict."""
    merged = dict(zip(names, args or ()))
    merged.update(plain(dict(kwargs or {})))
    return plain(merged)


def _check_unconditional(kwargs: Mapping, state: StateDict, path: Path, section: str) -> None:
    c_dim = int(kwargs.get("c_dim", 0) or 0)
    if c_dim > 0 or "mapping.embed.weight" in state:
        raise fail(
            f"checkpoint {path}: {section} is a conditional network (c_dim={c_dim or '>0'}); gandapt "
            "supports unconditional StyleGAN2 only — use an unconditional checkpoint"
        )


def nvlabs_states(
    g_state: StateDict,
    g_kwargs: Mapping,
    d_state: Optional[StateDict],
    d_kwargs: Optional[Mapping],
    path: Path,
    fmt: str,
    extra: Optional[dict] = None,
) -> NetworkStates:
    """Check NVlabs state dicts, read their configs and convert them to gandapt's keys.

    Args:
        g_state: ``G_ema``'s state dict (NVlabs keys, with ``resample_filter`` buffers).
        g_kwargs: ``G_ema``'s constructor kwargs (``c_dim``, ``mapping_kwargs``, ``synthesis_kwargs``).
        d_state: ``D``'s state dict, or None.
        d_kwargs: ``D``'s constructor kwargs (``architecture``, ``conv_clamp``, ``epilogue_kwargs``).
        path: the file (for messages).
        fmt: ``'nvlabs-pkl'`` or ``'nvlabs-state-dict'``.
        extra: plain data to keep in :attr:`Checkpoint.extra`.

    Raises:
        CheckpointError: conditional, StyleGAN3 or unsupported-architecture networks, or bad shapes.
    """
    src = Source(path, "G_ema")
    _check_unconditional(g_kwargs, g_state, path, "G_ema")
    if any(k.startswith("synthesis.input.") for k in g_state):
        raise fail(f"checkpoint {path}: G_ema is a StyleGAN3 generator; gandapt supports StyleGAN2 only")
    synth = dict(g_kwargs.get("synthesis_kwargs") or {})
    mapping = dict(g_kwargs.get("mapping_kwargs") or {})
    arch = synth.get("architecture", "skip")
    if arch != "skip":
        raise fail(
            f"checkpoint {path}: G_ema uses synthesis architecture '{arch}'; gandapt supports StyleGAN2's "
            "'skip' generator only"
        )
    g_state = strip_resample_filters(g_state, src)
    config = infer_generator_config(
        g_state, src, variant="nvlabs", conv_clamp=synth.get("conv_clamp"),
        mapping_lr_mul=float(mapping.get("lr_multiplier", 0.01)),
    )
    d_config = None
    if d_state is not None:
        d_kwargs = dict(d_kwargs or {})
        _check_unconditional(d_kwargs, d_state, path, "D")
        d_arch = d_kwargs.get("architecture", "resnet")
        if d_arch != "resnet":
            raise fail(
                f"checkpoint {path}: D uses architecture '{d_arch}'; gandapt supports StyleGAN2's 'resnet' "
                "discriminator only — load the generator from a file without D, or convert D"
            )
        epilogue = dict(d_kwargs.get("epilogue_kwargs") or {})
        group = epilogue.get("mbstd_group_size", 4)
        if not isinstance(group, int) or isinstance(group, bool) or group < 1:
            raise fail(f"checkpoint {path}: D has mbstd_group_size={group!r}; gandapt needs a positive integer")
        if int(epilogue.get("mbstd_num_channels", 1)) != 1:
            raise fail(f"checkpoint {path}: D uses mbstd_num_channels != 1, which gandapt does not support")
        d_src = Source(path, "D")
        d_state = strip_resample_filters(d_state, d_src)
        d_config = infer_discriminator_config(
            d_state, d_src, mbstd_group_size=group, conv_clamp=d_kwargs.get("conv_clamp")
        )
        check_same_resolution(config, d_config, path)
    return NetworkStates(g_state, config, d_state, d_config, fmt, Path(path), dict(extra or {}))


def check_same_resolution(config, d_config, path: Path) -> None:
    """G and D of one checkpoint must work at one resolution and image-channel count."""
    if (config.img_resolution, config.img_channels) != (d_config.img_resolution, d_config.img_channels):
        raise fail(
            f"checkpoint {path}: the generator makes {config.img_resolution} px images with "
            f"{config.img_channels} channels but the discriminator takes {d_config.img_resolution} px with "
            f"{d_config.img_channels}; the file mixes two networks"
        )


def read_nvlabs_state_dict(obj: Mapping, path: Path) -> NetworkStates:
    """Read the state-dict layout ``{'G_ema', 'G', 'D', 'init_kwargs'}`` (already torch-loaded).

    ``extra`` holds ``init_kwargs``. The training ``G`` is not loaded.
    """
    kwargs = obj.get("init_kwargs")
    if not isinstance(kwargs, Mapping) or not isinstance(kwargs.get("G_ema", kwargs.get("G")), Mapping):
        raise fail(
            f"checkpoint {path}: has G_ema but no init_kwargs['G_ema']; gandapt needs the constructor "
            "kwargs (conv_clamp, c_dim, ...) — save them beside the state dicts as init_kwargs"
        )
    g_kwargs = plain(dict(kwargs.get("G_ema", kwargs.get("G"))))
    g_state = tensor_dict(obj["G_ema"], path, "G_ema")
    d_state = tensor_dict(obj["D"], path, "D") if obj.get("D") is not None else None
    d_kwargs = plain(dict(kwargs.get("D") or {}))
    return nvlabs_states(
        g_state, g_kwargs, d_state, d_kwargs, path, "nvlabs-state-dict", {"init_kwargs": plain(dict(kwargs))}
    )
