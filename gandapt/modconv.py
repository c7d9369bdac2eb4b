"""Modulated convolution with gandapt's runtime domain terms, in three equivalent forms.

The layer equation (methods.md §11.2; StyleGAN2, Karras et al. 2020, eq. 1–3; DynaGAN's rank-1
kernel residual; HyperDomainNet's post-demodulation input scale) for one sample is::

    K_oixy  = (W_oixy + u_o v_i κ_xy + ΔW_oixy) · s_i          (modulation; u,v,κ rank-1; ΔW dense)
    d_o     = (Σ_ixy K_oixy² + 1e-8)^(-1/2)                      (demodulation, if enabled)
    y       = conv(x, K · d_o · g_i · h_o)                       (g = in_scale, h = out_scale)

``W`` is the constant kernel with any equalized-lr gain already folded in by the caller, so this
module is gain-free. ``g`` and ``h`` act after demodulation (the normalisation does not see them).
Up-sampling layers use a stride-2 transposed conv followed by the [1,3,3,1] blur (gain 4).

Forms:
  * ``reference`` — the spec: builds each sample's kernel literally and runs it alone (slow).
  * ``decomposed`` — scales activations, convolves with the constant ``W``, adds the rank-1 branch
    as a one-channel conv, and multiplies by demodulation coefficients computed from a small matmul
    (NVlabs' non-fused path). Dynamic batch, constant conv weights: the ONNX default.
  * ``grouped`` — per-sample kernels through one grouped conv (NVlabs' fused path). Fixed batch in ONNX.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from gandapt.resample import blur

FORMS = ("reference", "decomposed", "grouped")
EPS = 1e-8


def modulated_conv2d(
    x: torch.Tensor,                         # [N, I, H, W]
    weight: torch.Tensor,                    # [O, I, k, k] constant kernel, gain folded in
    styles: torch.Tensor,                    # [N, I]
    demodulate: bool = True,
    up: bool = False,
    resample_filter: Optional[torch.Tensor] = None,  # [4, 4], needed when up
    in_scale: Optional[torch.Tensor] = None,  # [N, I]  post-demod input scale g
    out_scale: Optional[torch.Tensor] = None,  # [N, O] post-demod output scale h
    r1_out: Optional[torch.Tensor] = None,    # [N, O]  rank-1 u (β folded in)
    r1_in: Optional[torch.Tensor] = None,     # [N, I]  rank-1 v
    r1_k: Optional[torch.Tensor] = None,      # [N, k, k] rank-1 κ
    weight_delta: Optional[torch.Tensor] = None,  # [N, O, I, k, k] dense per-sample ΔW
    form: str = "decomposed",
) -> torch.Tensor:
    """Modulated (de)convolution per the layer equation in the module docstring.

    Args:
        x: input activations [N, I, H, W].
        weight: constant kernel [O, I, k, k] with the caller's weight gain folded in.
        styles: per-sample styles s [N, I] (after any S-stage domain terms).
        demodulate: normalise each output channel's kernel (False for ToRGB).
        up: 2× upsampling (transposed conv + blur).
        resample_filter: blur filter [4, 4] summing to 1 (required when ``up``).
        in_scale, out_scale: post-demodulation scales g [N, I] and h [N, O], or None (= 1).
        r1_out, r1_in, r1_k: rank-1 kernel residual factors u [N, O], v [N, I], κ [N, k, k]; all
            three or none.
        weight_delta: dense per-sample kernel residual ΔW [N, O, I, k, k], or None. The decomposed
            form supports it for 1×1 kernels only (ToRGB tuning).
        form: 'reference', 'decomposed' or 'grouped' (see the module docstring).

    Returns:
        [N, O, H', W'] with H' = 2H when ``up`` else H.
    """
    if (r1_out is None) != (r1_in is None) or (r1_out is None) != (r1_k is None):
        raise ValueError("r1_out, r1_in and r1_k must be given together")
    if up and resample_filter is None:
        raise ValueError("an up-sampling modulated conv needs resample_filter")
    args = (x, weight, styles, demodulate, up, resample_filter, in_scale, out_scale,
            r1_out, r1_in, r1_k, weight_delta)
    if form == "decomposed":
        return _decomposed(*args)
    if form == "grouped":
        return _grouped(*args)
    if form == "reference":
        return _reference(*args)
    raise ValueError(f"unknown modconv form {form!r}; use one of {', '.join(FORMS)}")


# ---- shared pieces ------------------------------------------------------------------------------

def _finish_up(y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blur after a stride-2 transposed conv: [N, C, 2H+k−2, ·] → [N, C, 2H, 2W] for k = 3."""
    return blur(y, f, pad=1, gain=4.0)


def _conv(x: torch.Tensor, w: torch.Tensor, up: bool, groups: int = 1) -> torch.Tensor:
    """Plain or stride-2 transposed conv of ``x`` [N, G·I, H, W] with ``w`` [G·O, I, k, k] (pre-blur)."""
    if not up:
        return F.conv2d(x, w, padding=w.shape[-1] // 2, groups=groups)
    go, i, kh, kw = w.shape
    o = go // groups
    # Transposed conv takes [G·I, O, k, k]; the kernel is used as is (not flipped), as in both references.
    wt = w.reshape(groups, o, i, kh, kw).transpose(1, 2).reshape(groups * i, o, kh, kw)
    return F.conv_transpose2d(x, wt, stride=2, groups=groups)


def _sample_kernels(weight, styles, demodulate, in_scale, out_scale, r1_out, r1_in, r1_k, weight_delta):
    """Effective per-sample kernels K·d·g·h [N, O, I, k, k] (the reference and grouped forms)."""
    k = weight.unsqueeze(0)  # [1, O, I, k, k]
    if r1_out is not None:
        k = k + r1_out[:, :, None, None, None] * r1_in[:, None, :, None, None] * r1_k[:, None, None]
    if weight_delta is not None:
        k = k + weight_delta
    k = k * styles[:, None, :, None, None]  # [N, O, I, k, k]
    if demodulate:
        k = k * (k.square().sum(dim=[2, 3, 4], keepdim=True) + EPS).rsqrt()
    if in_scale is not None:
        k = k * in_scale[:, None, :, None, None]
    if out_scale is not None:
        k = k * out_scale[:, :, None, None, None]
    return k


# ---- the three forms ------------------------------------------------------------------------------

def _reference(x, weight, styles, demodulate, up, f, in_scale, out_scale, r1_out, r1_in, r1_k, weight_delta):
    kernels = _sample_kernels(weight, styles, demodulate, in_scale, out_scale, r1_out, r1_in, r1_k,
                              weight_delta)  # [N, O, I, k, k]: styles make every kernel per-sample
    outs = []
    for i in range(x.shape[0]):  # the spec runs one sample at a time with its own kernel
        y = _conv(x[i : i + 1], kernels[i], up)
        outs.append(_finish_up(y, f) if up else y)
    return torch.cat(outs, dim=0)


def _grouped(x, weight, styles, demodulate, up, f, in_scale, out_scale, r1_out, r1_in, r1_k, weight_delta):
    n, i, h, w = x.shape
    kernels = _sample_kernels(weight, styles, demodulate, in_scale, out_scale, r1_out, r1_in, r1_k,
                              weight_delta)  # [N, O, I, k, k]
    o = kernels.shape[1]
    y = _conv(x.reshape(1, n * i, h, w), kernels.reshape(n * o, i, *kernels.shape[3:]), up, groups=n)
    y = y.reshape(n, o, *y.shape[2:])
    return _finish_up(y, f) if up else y


def demod_coefficients(
    weight: torch.Tensor,  # [O, I, k, k]
    styles: torch.Tensor,  # [N, I]
    r1_out: Optional[torch.Tensor] = None,  # [N, O]
    r1_in: Optional[torch.Tensor] = None,   # [N, I]
    r1_k: Optional[torch.Tensor] = None,    # [N, k, k]
    weight_delta: Optional[torch.Tensor] = None,  # [N, O, I, k, k]
) -> torch.Tensor:
    """Demodulation coefficients d [N, O] without forming per-sample kernels (methods.md §11.2).

    Σ_ixy ((W + u v κ)_oixy s_i)² = Σ_i s_i² N_oi + 2 u_o Σ_i v_i s_i² P_oi + u_o² ‖κ‖² Σ_i v_i² s_i²
    with N_oi = Σ_xy W², P_oi = Σ_xy W κ. A dense ΔW falls back to summing (W + ΔW)² directly.
    """
    s2 = styles.square()  # [N, I]
    if weight_delta is not None:
        # A dense ΔW has cross terms with everything: sum the full per-sample kernel directly.
        k = weight.unsqueeze(0) + weight_delta  # [N, O, I, k, k]
        if r1_out is not None:
            k = k + r1_out[:, :, None, None, None] * r1_in[:, None, :, None, None] * r1_k[:, None, None]
        return (torch.einsum("noi,ni->no", k.square().sum(dim=[3, 4]), s2) + EPS).rsqrt()
    total = s2 @ weight.square().sum(dim=[2, 3]).t()  # [N, O]
    if r1_out is not None:
        p = torch.einsum("oixy,nxy->noi", weight, r1_k)  # [N, O, I]
        total = total + 2 * r1_out * torch.einsum("noi,ni->no", p, r1_in * s2)
        kk = r1_k.square().sum(dim=[1, 2]).unsqueeze(1)  # [N, 1]
        total = total + r1_out.square() * kk * (r1_in.square() * s2).sum(dim=1, keepdim=True)
    return (total + EPS).rsqrt()


def _conv1ch(z: torch.Tensor, kappa: torch.Tensor, up: bool) -> torch.Tensor:
    """One-channel conv of z [N, 1, H, W] with a per-sample kernel κ [N, k, k] (pre-blur when up).

    Written as k² shifted multiply-adds so the batch stays dynamic (no grouped conv) in ONNX.
    """
    n, _, h, w = z.shape
    kh, kw = kappa.shape[1:]
    if up:
        # A stride-2 transposed conv is a correlation of the zero-inserted input, padded by k−1,
        # with the flipped kernel.
        z = z.reshape(n, 1, h, 1, w, 1)
        z = F.pad(z, [0, 1, 0, 0, 0, 1]).reshape(n, 1, 2 * h, 2 * w)[:, :, : 2 * h - 1, : 2 * w - 1]
        z = F.pad(z, [kw - 1, kw - 1, kh - 1, kh - 1])
        kappa = kappa.flip([1, 2])
        ho, wo = 2 * h + kh - 2, 2 * w + kw - 2
    else:
        z = F.pad(z, [kw // 2, kw // 2, kh // 2, kh // 2])
        ho, wo = h, w
    out = 0
    for a in range(kh):
        for b in range(kw):
            out = out + kappa[:, a, b, None, None, None] * z[:, :, a : a + ho, b : b + wo]
    return out  # [N, 1, Ho, Wo]


def _decomposed(x, weight, styles, demodulate, up, f, in_scale, out_scale, r1_out, r1_in, r1_k, weight_delta):
    if weight_delta is not None and weight.shape[-1] != 1:
        raise ValueError("the decomposed form supports a dense weight_delta only for 1x1 kernels")
    xs = x * styles[:, :, None, None]  # [N, I, H, W]
    if in_scale is not None:
        xs = xs * in_scale[:, :, None, None]
    y = _conv(xs, weight, up)  # [N, O, H', W'] (pre-blur when up)
    if r1_out is not None:
        z = (xs * r1_in[:, :, None, None]).sum(dim=1, keepdim=True)  # [N, 1, H, W]
        y = y + r1_out[:, :, None, None] * _conv1ch(z, r1_k, up)
    if weight_delta is not None:
        y = y + torch.einsum("noi,nihw->nohw", weight_delta[:, :, :, 0, 0], xs)
    if up:
        y = _finish_up(y, f)
    if demodulate:
        d = demod_coefficients(weight, styles, r1_out, r1_in, r1_k, weight_delta)  # [N, O]
        y = y * d[:, :, None, None]
    if out_scale is not None:
        y = y * out_scale[:, :, None, None]
    return y
