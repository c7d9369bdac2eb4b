"""rosinality/stylegan2-pytorch checkpoints (``{'g_ema', 'g', 'd', 'latent_avg', ...}``) → gandapt keys.

The conversion follows the key table of /work/shared/golden/README.md ("rosinality ↔ NVlabs key
mapping"). Provenance: those key names and layouts are facts about rosinality/stylegan2-pytorch's
checkpoint format (MIT licence); no code of it is used.

* G: ``style.{i+1}`` → ``mapping.fc{i}``; ``input.input`` [1,C,4,4] → ``synthesis.b4.const``;
  ``conv1``/``to_rgb1`` → ``b4.conv1``/``b4.torgb``; ``convs.{2k}``/``convs.{2k+1}``/``to_rgbs.{k}`` →
  ``b{2^(k+3)}.conv0``/``conv1``/``torgb``; per layer ``conv.weight`` (leading 1 dropped),
  ``conv.modulation`` → ``affine``, ``noise.weight`` [1] → ``noise_strength`` [], ``activate.bias`` →
  ``bias``, ToRGB ``bias`` [1,3,1,1] → [3]; ``noises.noise_i`` [1,1,R,R] → the layer's ``noise_const``;
  ``latent_avg`` → ``mapping.w_avg``. Blur/upsample ``kernel`` buffers are verified, then dropped.
* D: ``convs.0`` → ``b{S}.fromrgb``; ``convs.{j}.conv1``/``conv2``/``skip`` → ``b{S/2^(j-1)}.conv0``/
  ``conv1``/``skip``; ``final_conv``/``final_linear.0``/``final_linear.1`` → ``b4.conv``/``fc``/``out``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from gandapt.checkpoint.common import NetworkStates, StateDict, fail, fmt_shape, plain
from gandapt.checkpoint.infer import Origin, Source, infer_discriminator_config, infer_generator_config
from gandapt.checkpoint.nvlabs import RESAMPLE_FILTER, check_same_resolution, tensor_dict

# layout transforms: (file shape → gandapt shape, or None if the file tensor does not have that form;
#                     gandapt shape → file shape)
_SAME = (lambda s: s, lambda s: s)
_LEAD1 = (lambda s: s[1:] if len(s) >= 1 and s[0] == 1 else None, lambda s: (1,) + s)
_SCALAR = (lambda s: () if s == (1,) else None, lambda s: (1,))
_NOISE = (lambda s: s[2:] if len(s) == 4 and s[:2] == (1, 1) else None, lambda s: (1, 1) + s)
_RGB_BIAS = (lambda s: s[1:2] if len(s) == 4 and s[0] == 1 and s[2:] == (1, 1) else None,
             lambda s: (1,) + s + (1, 1))

_G_LAYER = {  # rosinality suffix inside a StyledConv / ToRGB → (gandapt suffix, transform)
    "conv.weight": ("weight", _LEAD1),
    "conv.modulation.weight": ("affine.weight", _SAME),
    "conv.modulation.bias": ("affine.bias", _SAME),
    "noise.weight": ("noise_strength", _SCALAR),   # StyledConv only (ToRGB has no noise)
    "activate.bias": ("bias", _SAME),              # StyledConv only
    "bias": ("bias", _RGB_BIAS),                   # ToRGB only
}
_G_LAYER_COMMON = ("conv.weight", "conv.modulation.weight", "conv.modulation.bias")
_D_BLOCK = {
    "conv1.0.weight": "conv0.weight", "conv1.1.bias": "conv0.bias",
    "conv2.1.weight": "conv1.weight", "conv2.2.bias": "conv1.bias", "skip.1.weight": "skip.weight",
}
_D_HEAD = {
    "final_conv.0.weight": "b4.conv.weight", "final_conv.1.bias": "b4.conv.bias",
    "final_linear.0.weight": "b4.fc.weight", "final_linear.0.bias": "b4.fc.bias",
    "final_linear.1.weight": "b4.out.weight", "final_linear.1.bias": "b4.out.bias",
}
_G_KERNEL = RESAMPLE_FILTER * 4  # up-sampling blur: gain up² = 4
_D_KERNEL = RESAMPLE_FILTER


def _g_target(key: str) -> Optional[Tuple[str, tuple]]:
    """gandapt key and transform for a rosinality generator key (None: not a known key)."""
    if m := re.fullmatch(r"style\.(\d+)\.(weight|bias)", key):
        return (f"mapping.fc{int(m.group(1)) - 1}.{m.group(2)}", _SAME) if int(m.group(1)) >= 1 else None
    if key == "input.input":
        return "synthesis.b4.const", _LEAD1
    if m := re.fullmatch(r"noises\.noise_(\d+)", key):
        i = int(m.group(1))
        layer = "b4.conv1" if i == 0 else f"b{2 ** ((i - 1) // 2 + 3)}.conv{(i - 1) % 2}"
        return f"synthesis.{layer}.noise_const", _NOISE
    if m := re.fullmatch(r"(conv1|to_rgb1|convs\.(\d+)|to_rgbs\.(\d+))\.(.+)", key):
        head, conv_n, rgb_k, rest = m.groups()
        if head == "conv1":
            layer = "b4.conv1"
        elif head == "to_rgb1":
            layer = "b4.torgb"
        elif conv_n is not None:
            layer = f"b{2 ** (int(conv_n) // 2 + 3)}.conv{int(conv_n) % 2}"
        else:
            layer = f"b{2 ** (int(rgb_k) + 3)}.torgb"
        is_rgb = layer.endswith("torgb")
        if rest in _G_LAYER_COMMON or (rest in _G_LAYER and (rest == "bias") == is_rgb):
            suffix, tf = _G_LAYER[rest]
            return f"synthesis.{layer}.{suffix}", tf
    return None


def _d_target(key: str, size: int) -> Optional[Tuple[str, tuple]]:
    if key in _D_HEAD:
        return _D_HEAD[key], _SAME
    if key in ("convs.0.0.weight", "convs.0.1.bias"):  # fromRGB: 1x1 conv + FusedLeakyReLU bias
        return f"b{size}.fromrgb.{key.rsplit('.', 1)[1]}", _SAME
    if (m := re.fullmatch(r"convs\.(\d+)\.(.+)", key)) and int(m.group(1)) >= 1 and m.group(2) in _D_BLOCK:
        return f"b{size >> (int(m.group(1)) - 1)}.{_D_BLOCK[m.group(2)]}", _SAME
    return None


def rosinality_g_key(key: str) -> Optional[Tuple[str, Any]]:
    """rosinality's name for a gandapt generator key, and the map from gandapt shape to rosinality's.

    The inverse of the loader's key table (``mapping.w_avg`` is ``latent_avg``, outside ``g_ema``, and
    returns None like any unknown key).
    """
    if m := re.fullmatch(r"mapping\.fc(\d+)\.(weight|bias)", key):
        return f"style.{int(m.group(1)) + 1}.{m.group(2)}", _SAME[1]
    if key == "synthesis.b4.const":
        return "input.input", _LEAD1[1]
    m = re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)", key)
    if not m:
        return None
    res, layer, suffix = int(m.group(1)), m.group(2), m.group(3)
    k = res.bit_length() - 4  # block index: 0 at 8 px
    if res == 4:
        name, noise_i = ("to_rgb1" if layer == "torgb" else "conv1"), 0
    elif layer == "torgb":
        name, noise_i = f"to_rgbs.{k}", None
    else:
        n = 2 * k + int(layer[-1])
        name, noise_i = f"convs.{n}", n + 1
    if suffix == "noise_const" and noise_i is not None:
        return f"noises.noise_{noise_i}", _NOISE[1]
    for ros, (ours, tf) in _G_LAYER.items():
        if ours == suffix and (ros == "bias") == (layer == "torgb" and suffix == "bias"):
            return f"{name}.{ros}", tf[1]
    return None


def rosinality_d_key(key: str, size: int) -> Optional[Tuple[str, Any]]:
    """rosinality's name for a gandapt discriminator key of a ``size`` px network (see :func:`rosinality_g_key`)."""
    for ros, ours in _D_HEAD.items():
        if ours == key:
            return ros, _SAME[1]
    if m := re.fullmatch(r"b(\d+)\.fromrgb\.(weight|bias)", key):
        return ("convs.0.0.weight" if m.group(2) == "weight" else "convs.0.1.bias"), _SAME[1]
    if m := re.fullmatch(r"b(\d+)\.(.+)", key):
        j = (size // int(m.group(1))).bit_length()  # size → 1, size/2 → 2, ...
        for ros, ours in _D_BLOCK.items():
            if ours == m.group(2):
                return f"convs.{j}.{ros}", _SAME[1]
    return None


def _convert(state: StateDict, src: Source, target, kernel_suffixes, kernel) -> StateDict:
    """Rename and reshape ``state`` into gandapt keys, filling ``src.origin`` for error messages."""
    out: StateDict = {}
    for key, t in state.items():
        if key.endswith(kernel_suffixes):  # blur / upsample FIR buffers: verify, then drop
            if tuple(t.shape) != (4, 4) or not torch.allclose(t.float().cpu(), kernel, atol=1e-6):
                raise fail(f"checkpoint {src.path}: {src.section}['{key}'] is not the standard [1,3,3,1] "
                           "blur kernel; gandapt supports only StyleGAN2's default blur kernel")
            continue
        found = target(key)
        if found is None:
            out[key] = t  # reported as unexpected by the shape check, under its own name
            continue
        new, (fwd, back) = found
        shape = tuple(t.shape)
        reshaped = fwd(shape)
        out[new] = t.reshape(reshaped) if reshaped is not None else t
        src.origin[new] = Origin(key, shape, back)
    return out


def _mapping_width(state: StateDict) -> Optional[int]:
    """Output width of the last mapping layer present (None when there is none)."""
    fcs = [int(m.group(1)) for k in state if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k))]
    return int(state[f"mapping.fc{max(fcs)}.weight"].shape[0]) if fcs else None


def _with_w_avg(state: StateDict) -> StateDict:
    """``state`` plus a zero ``mapping.w_avg`` placeholder of the mapping network's output width."""
    return {**state, "mapping.w_avg": torch.zeros(_mapping_width(state) or 1)}


def convert_generator(g: StateDict, latent_avg: Optional[torch.Tensor], path: Path, section: str = "g_ema"):
    """rosinality generator state dict (+ ``latent_avg``) → (gandapt state dict, config).

    Without ``latent_avg`` the returned state lacks ``mapping.w_avg``; :func:`read_rosinality` computes it.
    """
    src = Source(path, section, origin={}, invert=rosinality_g_key)
    state = _convert(g, src, _g_target, ("blur.kernel", "upsample.kernel"), _G_KERNEL)
    if latent_avg is None:  # check the rest against a placeholder; the real w_avg needs the network
        return state, infer_generator_config(_with_w_avg(state), src, variant="rosinality", conv_clamp=None)
    w_dim = _mapping_width(state)
    if w_dim is not None and latent_avg.numel() != w_dim:  # [w], [1, w] (mean_latent's shape) are both fine
        raise fail(f"checkpoint {path}: latent_avg has shape {fmt_shape(latent_avg.shape)} but the "
                   f"architecture read from the other tensors needs [{w_dim}]")
    state["mapping.w_avg"] = latent_avg.detach().reshape(-1)
    return state, infer_generator_config(state, src, variant="rosinality", conv_clamp=None)


def convert_discriminator(d: StateDict, path: Path, section: str = "d"):
    """rosinality discriminator state dict → (gandapt state dict, config)."""
    blocks = [int(m.group(1)) for k in d if (m := re.match(r"convs\.(\d+)\.", k))]
    if not blocks:
        raise fail(f"checkpoint {path}: {section} has no convs.* tensors; it is not a StyleGAN2 discriminator")
    size = 2 ** (max(blocks) + 2)
    src = Source(path, section, origin={}, invert=lambda k: rosinality_d_key(k, size))
    state = _convert(d, src, lambda k: _d_target(k, size), (".kernel",), _D_KERNEL)
    config = infer_discriminator_config(state, src, mbstd_group_size=4, conv_clamp=None)  # rosinality: group 4
    return state, config


def mean_w(config, state: StateDict, n: int = 4096, seed: int = 0) -> torch.Tensor:
    """Mean mapping output over ``n`` seeded z (stand-in for a missing ``latent_avg``), [w_dim]."""
    from gandapt.generator import Generator

    with torch.random.fork_rng(devices=[]):  # random init is overwritten; keep the caller's RNG stream
        G = Generator(config)
    G.load_state_dict(state, strict=True)
    return G.mean_latent(n=n, seed=seed).detach().clone()


def read_rosinality(obj: Mapping[str, Any], path: Path) -> NetworkStates:
    """Read a torch-loaded rosinality checkpoint dict.

    ``g_ema`` is the generator and ``d`` the discriminator; ``g`` (training G) and the optimiser states
    are not loaded. A training checkpoint has no ``latent_avg``: ``mapping.w_avg`` is then the mean
    mapping output of 4096 z drawn with seed 0. ``extra`` holds ``w_avg_source`` (``'latent_avg'`` or
    ``'mean of 4096 z, seed 0'``), ``args`` (the training ``argparse.Namespace`` as a dict) and
    ``ada_aug_p`` when present.
    """
    g = tensor_dict(obj["g_ema"], path, "g_ema")
    latent_avg = obj.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise fail(f"checkpoint {path}: latent_avg is a {type(latent_avg).__name__}, not a tensor; the file is corrupt")
    state, config = convert_generator(g, latent_avg, path)
    extra: Dict[str, Any] = {"w_avg_source": "latent_avg" if latent_avg is not None else "mean of 4096 z, seed 0"}
    if latent_avg is None:
        state = _with_w_avg(state)
        state["mapping.w_avg"] = mean_w(config, state)
    d_state = d_config = None
    if obj.get("d") is not None:
        d_state, d_config = convert_discriminator(tensor_dict(obj["d"], path, "d"), path)
        check_same_resolution(config, d_config, path)
    if obj.get("args") is not None:
        args = obj["args"]
        extra["args"] = plain(dict(vars(args))) if hasattr(args, "__dict__") else plain(args)
    if obj.get("ada_aug_p") is not None:
        extra["ada_aug_p"] = plain(obj["ada_aug_p"])
    return NetworkStates(state, config, d_state, d_config, "rosinality", Path(path), extra)
