"""Synthesis network ws, domain → image, with the runtime domain terms of DESIGN §2.

Module and parameter names follow NVlabs stylegan2-ada-pytorch (``b4.conv1``, ``b8.conv0``,
``b8.torgb``, ``affine``, ``noise_const``…), so NVlabs state dicts load as they are and rosinality
ones through a key table (gandapt.checkpoint).

A domain is one flat vector per sample, ``domain [N, D]``, laid out by :class:`gandapt.layout.DomainLayout`.
Each layer knows the offsets of its tensors and slices them out; an absent stage is identity.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from gandapt.config import GeneratorConfig, LayerSpec
from gandapt.errors import DomainError
from gandapt.layers import SQRT2, FullyConnected, bias_act
from gandapt.layout import STAGES, DomainLayout
from gandapt.modconv import FORMS, modulated_conv2d
from gandapt.resample import setup_filter, upsample2d

NOISE_MODES = ("const", "random", "none")
# "plugin": each synthesis conv is one gandapt::ModulatedConv2d node (gandapt.plugins_trt) when exported
# to ONNX, and the decomposed form in eager mode; ToRGB layers keep the decomposed form.
SYNTHESIS_FORMS = FORMS + ("plugin",)
Slices = Dict[str, Tuple[int, int, Tuple[int, ...]]]


def _take(domain: torch.Tensor, sl: Tuple[int, int, Tuple[int, ...]]) -> torch.Tensor:
    """Slice one tensor out of the flat domain vector: [N, D] → [N, *shape]."""
    start, stop, shape = sl
    return domain[:, start:stop].reshape(-1, *shape)


class _ModulatedLayer(nn.Module):
    """Shared parts of a synthesis conv and a ToRGB layer: affine, weight, domain slices, settings."""

    def __init__(self, spec: LayerSpec, w_dim: int, variant: str, conv_clamp: Optional[float]):
        super().__init__()
        self.spec = spec
        self.variant = variant
        self.conv_clamp = conv_clamp
        k = spec.kernel_size
        self.affine = FullyConnected(w_dim, spec.in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(spec.out_channels, spec.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(spec.out_channels))
        self.weight_gain = 1 / math.sqrt(spec.in_channels * k * k)
        self.modconv_form = "decomposed"
        self.domain_slices: Slices = {}

    def _styles(self, w: torch.Tensor, domain: Optional[torch.Tensor]) -> torch.Tensor:
        """Affine styles with the S-stage terms s' = s ⊙ s_scale + s_shift: [N, w_dim] → [N, I]."""
        s = self.affine(w)
        if domain is not None and "s_scale" in self.domain_slices:
            s = s * _take(domain, self.domain_slices["s_scale"]) + _take(domain, self.domain_slices["s_shift"])
        return s

    def _term(self, domain: Optional[torch.Tensor], kind: str) -> Optional[torch.Tensor]:
        if domain is None or kind not in self.domain_slices:
            return None
        return _take(domain, self.domain_slices[kind])


class SynthesisLayer(_ModulatedLayer):
    """Modulated 3×3 conv (+2× up) → noise → bias → leaky ReLU·√2 → clamp."""

    def __init__(self, spec: LayerSpec, w_dim: int, variant: str, conv_clamp: Optional[float]):
        super().__init__(spec, w_dim, variant, conv_clamp)
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(spec.resolution, spec.resolution))
        self.register_buffer("resample_filter", setup_filter(), persistent=False)

    def forward(
        self,
        x: torch.Tensor,                         # [N, I, H, W]
        w: torch.Tensor,                         # [N, w_dim]
        domain: Optional[torch.Tensor] = None,   # [N, D] or None
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Returns [N, O, R, R] where R is this layer's resolution."""
        styles = self._styles(w, domain)  # [N, I]
        if self.modconv_form == "plugin":
            return self._plugin_forward(x, styles, domain, noise_mode)
        # rosinality folds the equalized-lr gain into the kernel before demodulation; NVlabs omits it
        # (demodulation cancels it). Only the 1e-8 eps sees the difference.
        gain = self.weight_gain if self.variant == "rosinality" else 1.0
        r1_out = self._term(domain, "r1_out")
        x = modulated_conv2d(
            x, self.weight * gain if gain != 1 else self.weight, styles, demodulate=True,
            up=self.spec.up, resample_filter=self.resample_filter,
            in_scale=self._term(domain, "in_scale"), out_scale=self._term(domain, "out_scale"),
            r1_out=r1_out * gain if r1_out is not None and gain != 1 else r1_out,
            r1_in=self._term(domain, "r1_in"), r1_k=self._term(domain, "r1_k"),
            form=self.modconv_form,
        )
        if noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise_mode == "random":
            r = self.spec.resolution
            x = x + torch.randn(x.shape[0], 1, r, r, dtype=x.dtype, device=x.device) * self.noise_strength
        return bias_act(x, self.bias, lrelu=True, gain=SQRT2, clamp=self.conv_clamp)

    def _plugin_forward(self, x: torch.Tensor, styles: torch.Tensor, domain: Optional[torch.Tensor],
                        noise_mode: str) -> torch.Tensor:
        """The whole layer as one ``gandapt::ModulatedConv2d`` node (absent domain terms become identity
        constants with one row, which the node broadcasts over the batch)."""
        from gandapt.plugins_trt.modulated_conv.onnx_node import modulated_conv2d_node
        from gandapt.plugins_trt.modulated_conv.spec import Attributes

        gain = self.weight_gain if self.variant == "rosinality" else 1.0
        i, o, r = self.spec.in_channels, self.spec.out_channels, self.spec.resolution
        r1_out = self._term(domain, "r1_out")
        rank1 = r1_out is not None
        in_scale = self._term(domain, "in_scale")
        out_scale = self._term(domain, "out_scale")
        if noise_mode == "const":
            noise = (self.noise_const * self.noise_strength).reshape(1, 1, r, r)
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, r, r, dtype=x.dtype, device=x.device) * self.noise_strength
        else:
            noise = x.new_zeros(1, 1, r, r)
        attrs = Attributes(up=int(self.spec.up), demodulate=1, rank1=int(rank1), activation="lrelu", gain=SQRT2,
                           clamp=-1.0 if self.conv_clamp is None else float(self.conv_clamp))
        return modulated_conv2d_node(
            x, self.weight * gain if gain != 1 else self.weight, styles,
            in_scale if in_scale is not None else x.new_ones(1, i),
            out_scale if out_scale is not None else x.new_ones(1, o),
            r1_out * gain if rank1 else x.new_zeros(1, o),
            self._term(domain, "r1_in") if rank1 else x.new_zeros(1, i),
            self._term(domain, "r1_k") if rank1 else x.new_zeros(1, 3, 3),
            noise.to(x.dtype), self.bias, attrs=attrs,
        )


class ToRGBLayer(_ModulatedLayer):
    """Modulated 1×1 conv without demodulation → bias (+ ``rgb_db``) → clamp."""

    def forward(self, x: torch.Tensor, w: torch.Tensor, domain: Optional[torch.Tensor] = None) -> torch.Tensor:
        """[N, I, R, R], [N, w_dim] → [N, img_channels, R, R]."""
        styles = self._styles(w, domain)
        weight = self.weight
        dw = self._term(domain, "rgb_dW")  # [N, 3, I] in stored-weight units
        if self.variant == "rosinality":  # gain on the kernel (rosinality) …
            weight = weight * self.weight_gain
            dw = dw * self.weight_gain if dw is not None else None
        else:  # … or on the styles (NVlabs); the same product either way
            styles = styles * self.weight_gain
        form = "decomposed" if self.modconv_form == "plugin" else self.modconv_form  # no 1×1 plugin
        x = modulated_conv2d(
            x, weight, styles, demodulate=False,
            weight_delta=dw[:, :, :, None, None] if dw is not None else None, form=form,
        )
        db = self._term(domain, "rgb_db")
        if db is not None:
            x = x + db[:, :, None, None]
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const) → conv0 (up) → conv1 → ToRGB, adding to the upsampled skip image."""

    def __init__(self, layers: Sequence[LayerSpec], cfg: GeneratorConfig):
        super().__init__()
        self.resolution = layers[0].resolution
        if self.resolution == 4:
            self.const = nn.Parameter(torch.randn(layers[0].in_channels, 4, 4))
        for spec in layers:
            cls = ToRGBLayer if spec.is_torgb else SynthesisLayer
            setattr(self, spec.name.split(".")[1], cls(spec, cfg.w_dim, cfg.variant, cfg.conv_clamp))
        self.register_buffer("resample_filter", setup_filter(), persistent=False)

    def forward(
        self,
        x: torch.Tensor,                         # [N, C, R/2, R/2] (ignored at 4 px)
        img: torch.Tensor,                       # [N, 3, R/2, R/2] (ignored at 4 px)
        ws: torch.Tensor,                        # [N, num_ws, w_dim]
        domain: Optional[torch.Tensor] = None,
        noise_mode: str = "const",
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns features [N, C, R, R] and the running RGB image [N, 3, R, R]."""
        if self.resolution == 4:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, ws[:, self.conv1.spec.w_index], domain, noise_mode)
        else:
            x = self.conv0(x, ws[:, self.conv0.spec.w_index], domain, noise_mode)
            x = self.conv1(x, ws[:, self.conv1.spec.w_index], domain, noise_mode)
        y = self.torgb(x, ws[:, self.torgb.spec.w_index], domain)
        img = y if self.resolution == 4 else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] (+ domain [N, D]) → image [N, img_channels, R, R].

    Settings (constant within one exported graph): ``noise_mode`` per call, the modulated-conv form
    (:meth:`set_modconv_form`) and the domain stages the flat vector carries (:meth:`set_domain_stages`).
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.num_ws = config.num_ws
        specs = config.layers()
        for res in config.resolutions:
            block_specs = [s for s in specs if s.resolution == res]
            setattr(self, f"b{res}", SynthesisBlock(block_specs, config))
        self.set_domain_stages(STAGES)

    @property
    def layers(self) -> Tuple[_ModulatedLayer, ...]:
        """Every modulated layer in forward order (matches ``config.layers()``)."""
        return tuple(self.get_submodule(s.name) for s in self.config.layers())

    def set_domain_stages(self, stages: Sequence[str] = STAGES) -> DomainLayout:
        """Choose which domain stages the flat ``domain`` input carries; returns the new layout."""
        self.layout = DomainLayout(self.config, stages)
        per_layer: Dict[Optional[str], Slices] = {}
        for e in self.layout.entries:
            per_layer.setdefault(e.layer, {})[e.kind] = (e.offset, e.offset + e.size, tuple(e.shape))
        self._w_slices = per_layer.get(None, {})
        for spec, layer in zip(self.config.layers(), self.layers):
            layer.domain_slices = per_layer.get(spec.name, {})
        return self.layout

    def set_modconv_form(self, form: str) -> None:
        """Select the modulated-conv form ('reference', 'decomposed', 'grouped', 'plugin') for every layer."""
        if form not in SYNTHESIS_FORMS:
            raise ValueError(f"unknown modconv form {form!r}; use one of {', '.join(SYNTHESIS_FORMS)}")
        for layer in self.layers:
            layer.modconv_form = form

    def forward(
        self,
        ws: torch.Tensor,                        # [N, num_ws, w_dim]
        domain: Optional[torch.Tensor] = None,   # [N, D] or [1, D]; None = the plain generator
        noise_mode: str = "const",
    ) -> torch.Tensor:
        """Render images [N, img_channels, R, R] from ws, optionally in a domain."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"unknown noise_mode {noise_mode!r}; use one of {', '.join(NOISE_MODES)}")
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.config.w_dim:
            raise DomainError(
                f"ws has shape {list(ws.shape)} but this generator takes [N, {self.num_ws}, {self.config.w_dim}]"
            )
        if domain is not None:
            domain = self._check_domain(domain, ws.shape[0], ws.dtype)
            if "w_scale" in self._w_slices:  # W stage: w' = w ⊙ w_scale + w_shift per row
                ws = ws * _take(domain, self._w_slices["w_scale"]) + _take(domain, self._w_slices["w_shift"])
        x = img = ws.new_zeros([])
        for res in self.config.resolutions:
            x, img = getattr(self, f"b{res}")(x, img, ws, domain, noise_mode)
        return img

    def _check_domain(self, domain: torch.Tensor, n: int, ws_dtype: torch.dtype) -> torch.Tensor:
        if domain.ndim != 2 or domain.shape[1] != self.layout.size:
            raise DomainError(
                f"domain vector has shape {list(domain.shape)} but this generator's layout needs "
                f"[N, {self.layout.size}] (stages {', '.join(self.layout.stages)}); build it with "
                f"DomainLayout.to_vector or a domain pack made for this model"
            )
        if domain.shape[0] == 1 and n != 1:
            domain = domain.expand(n, -1)  # one domain for the whole batch
        elif domain.shape[0] != n:
            raise DomainError(f"domain has {domain.shape[0]} rows but ws has {n}; give 1 or N rows")
        return domain.to(ws_dtype) if domain.dtype != ws_dtype else domain
