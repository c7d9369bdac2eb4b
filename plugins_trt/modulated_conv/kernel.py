"""Fused modulated convolution in Triton: the kernel behind ``gandapt::ModulatedConv2d``.

One program computes a tile of ``BLOCK_O`` output channels × ``BLOCK_P`` input-grid pixels of one
sample, as an implicit GEMM over (input channel, 3×3 tap). Everything of a synthesis layer happens in
that one pass (methods.md §11.2; StyleGAN2, Karras et al. 2020, eq. 1–3; DynaGAN's rank-1 residual):

* modulation: the input tile is scaled by ``s ⊙ g`` (style × post-demod ``in_scale``) as it is loaded;
* demodulation: ``d_o = (Σ_i s_i² N_oi + 2 u_o Σ_i v_i s_i² P_oi + u_o² ‖κ‖² Σ_i v_i² s_i² + 1e-8)^-½``
  is accumulated from the same weight tiles the conv loads (N_oi = Σ_xy W², P_oi = Σ_xy W κ), so it
  costs 1/BLOCK_P of the conv and needs no second kernel;
* the rank-1 branch ``u_o · conv1ch(κ, Σ_i v_i s_i g_i x_i)`` reuses the loaded input tiles;
* epilogue: ``· d_o · h_o`` (``out_scale``), ``+ noise``, ``+ bias``, leaky-ReLU(0.2)·gain, clamp.

2× up-sampling (stride-2 transposed conv, then the [1,3,3,1] blur with gain 4, as in both StyleGAN2
references) is fused too, by a polyphase split: the composite of the transposed 3×3 conv and the 4×4
blur is a 6×6 kernel on the zero-inserted grid, and output pixel (2a+p, 2b+q) only meets the input
pixels a−1..a+1 × b−1..b+1. So each of the four phases (p, q) is a plain 3×3 conv on the *input* grid
whose taps are fixed combinations of the raw taps:

    K_pq[e, f] = Σ_{k,l} c(p, e, k) · c(q, f, l) · W[k, l],   c(p, e, k) = b[k + 2e − p − 1]

with b = [1, 3, 3, 1] / 4 (zero outside 0..3). One program computes all four phases of its pixels,
sharing each loaded input tile between them. The blur filter is therefore baked in; the exporter
refuses any other ``resample_filter``.

The same source runs on CPU tensors under ``TRITON_INTERPRET=1`` (the tests) and compiles ahead of
time for a GPU target (:mod:`gandapt.plugins_trt.modulated_conv.aot`).
"""

from __future__ import annotations

import triton
import triton.language as tl

from gandapt.plugins_trt.modulated_conv.spec import Attributes

BLOCK_O, BLOCK_I, BLOCK_P = 32, 32, 64  # tl.dot needs every block dim >= 16
NUM_WARPS = 4
NUM_STAGES = 2  # sm_90 fp32 (3xTF32): 3 stages need ~230 KB of shared memory per block, 2 need 123 KB
POINTER_INPUTS = ("x_ptr", "w_ptr", "s_ptr", "g_ptr", "h_ptr", "u_ptr", "v_ptr", "k_ptr", "noise_ptr", "bias_ptr")
INT_ARGS = ("N", "I", "O", "H", "W", "S_ROWS", "G_ROWS", "H_ROWS", "U_ROWS", "V_ROWS", "K_ROWS", "NOISE_ROWS")


def kernel_constexprs(attrs: Attributes, dtype: str) -> dict:
    """Compile-time arguments for ``attrs`` and ``dtype`` ('float32' or 'float16'); each distinct dict is
    one kernel variant (one ahead-of-time compile)."""
    return {"UP": attrs.up, "DEMOD": attrs.demodulate, "RANK1": attrs.rank1,
            "LRELU": int(attrs.activation == "lrelu"), "GAIN": attrs.gain, "CLAMP": attrs.clamp,
            "BLOCK_O": BLOCK_O, "BLOCK_I": BLOCK_I, "BLOCK_P": BLOCK_P, "IEEE": int(dtype == "float32")}


BLUR_TAPS = (0.25, 0.75, 0.75, 0.25)  # [1, 3, 3, 1] / 4 per axis: the 2-D filter outer([1,3,3,1])/64 × gain 4


@triton.constexpr_function
def _blur_coef(p, e, k):
    """c(p, e, k): weight of raw tap k in phase p's tap e (0 where the blur does not reach it)."""
    p, e, k = (int(getattr(a, "value", a)) for a in (p, e, k))
    m = k + 2 * e - p - 1
    return BLUR_TAPS[m] if 0 <= m < 4 else 0.0


@triton.jit
def _phase_tap(w_tile_ptrs, mask, P: tl.constexpr, Q: tl.constexpr, E: tl.constexpr, F: tl.constexpr,
               BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr):
    """Blur-folded tap (E, F) of phase (P, Q): [BLOCK_O, BLOCK_I] from the raw 3×3 taps at ``w_tile_ptrs``."""
    tap = tl.zeros([BLOCK_O, BLOCK_I], dtype=tl.float32)
    for k in tl.static_range(3):
        for l in tl.static_range(3):
            c = _blur_coef(P, E, k) * _blur_coef(Q, F, l)
            if c != 0.0:
                tap += c * tl.load(w_tile_ptrs + (k * 3 + l), mask=mask, other=0.0).to(tl.float32)
    return tap


@triton.jit
def _phase_kappa(k_row_ptr, P: tl.constexpr, Q: tl.constexpr, E: tl.constexpr, F: tl.constexpr):
    """Blur-folded tap (E, F) of phase (P, Q) of one sample's rank-1 kernel κ (a scalar)."""
    tap = 0.0
    for k in tl.static_range(3):
        for l in tl.static_range(3):
            c = _blur_coef(P, E, k) * _blur_coef(Q, F, l)
            if c != 0.0:
                tap += c * tl.load(k_row_ptr + (k * 3 + l)).to(tl.float32)
    return tap


@triton.jit
def _epilogue(acc, r1, u, dh, noise_row_ptr, bias, y_base_ptr, offs_o, mask_o, oh, ow, mask_p, HO, WO,
              RANK1: tl.constexpr, LRELU: tl.constexpr, GAIN: tl.constexpr, CLAMP: tl.constexpr):
    """``(acc + u·r1)·d·h + noise + bias`` → lrelu·gain → clamp, stored at [o, oh, ow] of one sample."""
    y = acc
    if RANK1:
        y += u[:, None] * r1[None, :]
    y = y * dh[:, None]
    y += tl.load(noise_row_ptr + oh * WO + ow, mask=mask_p, other=0.0).to(tl.float32)[None, :]
    y += bias[:, None]
    if LRELU:
        y = tl.where(y >= 0, y, y * 0.2)
    y = y * GAIN
    if CLAMP >= 0:
        y = tl.minimum(tl.maximum(y, -CLAMP), CLAMP)
    ptrs = y_base_ptr + offs_o[:, None] * (HO * WO) + (oh * WO + ow)[None, :]
    tl.store(ptrs, y.to(y_base_ptr.dtype.element_ty), mask=mask_o[:, None] & mask_p[None, :])


@triton.jit
def modconv_kernel(
    # inputs, in the plugin's input order (pointers), then the int arguments, then the output:
    # the argument order TensorRT's ahead-of-time plugins launch with (inputs, extra args, outputs).
    x_ptr, w_ptr, s_ptr, g_ptr, h_ptr, u_ptr, v_ptr, k_ptr, noise_ptr, bias_ptr,
    N, I, O, H, W, S_ROWS, G_ROWS, H_ROWS, U_ROWS, V_ROWS, K_ROWS, NOISE_ROWS,
    y_ptr,
    UP: tl.constexpr, DEMOD: tl.constexpr, RANK1: tl.constexpr, LRELU: tl.constexpr,
    GAIN: tl.constexpr, CLAMP: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_P: tl.constexpr, IEEE: tl.constexpr,
):
    """One [BLOCK_O, BLOCK_P(·4 when UP)] output tile of the fused layer (see the module docstring).

    Shapes (contiguous): x [N, I, H, W], w [O, I, 3, 3], s/g/v [S_ROWS.., I], h/u [.., O], k [.., 3, 3],
    noise [NOISE_ROWS, 1, HO, WO], bias [O], y [N, O, HO, WO] with HO = 2H when UP. Per-sample inputs
    have N rows or 1 (broadcast): row n reads ``n % ROWS``. Grid: (N · cdiv(H·W, BLOCK_P), cdiv(O, BLOCK_O)).
    """
    pid = tl.program_id(0)
    n_pb = tl.cdiv(H * W, BLOCK_P)
    n = pid // n_pb
    offs_o = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    mask_o = offs_o < O
    offs_p = (pid % n_pb) * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < H * W
    py = offs_p // W
    px = offs_p % W
    x_base = x_ptr + n * I * H * W
    k_row = k_ptr + (n % K_ROWS) * 9

    # Accumulators: one conv tile per phase (only phase 0 without UP), one rank-1 row per phase.
    acc00 = tl.zeros([BLOCK_O, BLOCK_P], dtype=tl.float32)
    acc01 = tl.zeros([BLOCK_O, BLOCK_P], dtype=tl.float32)
    acc10 = tl.zeros([BLOCK_O, BLOCK_P], dtype=tl.float32)
    acc11 = tl.zeros([BLOCK_O, BLOCK_P], dtype=tl.float32)
    r00 = tl.zeros([BLOCK_P], dtype=tl.float32)
    r01 = tl.zeros([BLOCK_P], dtype=tl.float32)
    r10 = tl.zeros([BLOCK_P], dtype=tl.float32)
    r11 = tl.zeros([BLOCK_P], dtype=tl.float32)
    dsum = tl.zeros([BLOCK_O], dtype=tl.float32)   # Σ_i s_i² N_oi
    cross = tl.zeros([BLOCK_O], dtype=tl.float32)  # Σ_xy κ_xy Σ_i W_oixy v_i s_i²  (= Σ_i v_i s_i² P_oi)
    vv = tl.zeros([BLOCK_I], dtype=tl.float32)     # partial Σ_i v_i² s_i²
    kk = 0.0                                       # ‖κ‖²

    for i0 in range(0, I, BLOCK_I):
        offs_i = i0 + tl.arange(0, BLOCK_I)
        mask_i = offs_i < I
        s = tl.load(s_ptr + (n % S_ROWS) * I + offs_i, mask=mask_i, other=0.0).to(tl.float32)
        g = tl.load(g_ptr + (n % G_ROWS) * I + offs_i, mask=mask_i, other=0.0).to(tl.float32)
        sg = s * g
        s2 = s * s
        v = tl.zeros([BLOCK_I], dtype=tl.float32)
        if RANK1:
            v = tl.load(v_ptr + (n % V_ROWS) * I + offs_i, mask=mask_i, other=0.0).to(tl.float32)
            vv += v * v * s2
        w_tile = w_ptr + offs_o[:, None] * (I * 9) + offs_i[None, :] * 9  # tap (0, 0) of [BLOCK_O, BLOCK_I]
        mask_w = mask_o[:, None] & mask_i[None, :]
        for t in tl.static_range(9):
            w_raw = tl.load(w_tile + t, mask=mask_w, other=0.0).to(tl.float32)
            kap = 0.0
            if RANK1:
                kap = tl.load(k_row + t).to(tl.float32)
                if i0 == 0:
                    kk += kap * kap
            if DEMOD:
                dsum += tl.sum(w_raw * w_raw * s2[None, :], axis=1)
                if RANK1:
                    cross += kap * tl.sum(w_raw * (v * s2)[None, :], axis=1)
            # Input tile at offset (t // 3 − 1, t % 3 − 1), modulated by s·g as it is loaded: [BLOCK_I, BLOCK_P].
            hh = py + (t // 3 - 1)
            ww = px + (t % 3 - 1)
            ok = mask_p & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
            xt = tl.load(x_base + offs_i[:, None] * (H * W) + (hh * W + ww)[None, :],
                         mask=mask_i[:, None] & ok[None, :], other=0.0).to(tl.float32)
            xt = xt * sg[:, None]
            if RANK1:
                z = tl.sum(xt * v[:, None], axis=0)  # rank-1 branch input Σ_i v_i s_i g_i x_i
            xd = xt.to(x_ptr.dtype.element_ty)
            if UP:
                acc00 = _dot(_phase_tap(w_tile, mask_w, 0, 0, t // 3, t % 3, BLOCK_O, BLOCK_I), xd, acc00, IEEE, x_ptr)
                acc01 = _dot(_phase_tap(w_tile, mask_w, 0, 1, t // 3, t % 3, BLOCK_O, BLOCK_I), xd, acc01, IEEE, x_ptr)
                acc10 = _dot(_phase_tap(w_tile, mask_w, 1, 0, t // 3, t % 3, BLOCK_O, BLOCK_I), xd, acc10, IEEE, x_ptr)
                acc11 = _dot(_phase_tap(w_tile, mask_w, 1, 1, t // 3, t % 3, BLOCK_O, BLOCK_I), xd, acc11, IEEE, x_ptr)
                if RANK1:
                    r00 += _phase_kappa(k_row, 0, 0, t // 3, t % 3) * z
                    r01 += _phase_kappa(k_row, 0, 1, t // 3, t % 3) * z
                    r10 += _phase_kappa(k_row, 1, 0, t // 3, t % 3) * z
                    r11 += _phase_kappa(k_row, 1, 1, t // 3, t % 3) * z
            else:
                acc00 = _dot(w_raw, xd, acc00, IEEE, x_ptr)
                if RANK1:
                    r00 += kap * z

    u = tl.zeros([BLOCK_O], dtype=tl.float32)
    if RANK1:
        u = tl.load(u_ptr + (n % U_ROWS) * O + offs_o, mask=mask_o, other=0.0).to(tl.float32)
    dh = tl.load(h_ptr + (n % H_ROWS) * O + offs_o, mask=mask_o, other=0.0).to(tl.float32)
    if DEMOD:
        total = dsum
        if RANK1:
            total += 2.0 * u * cross + u * u * kk * tl.sum(vv, axis=0)
        dh = dh * tl.rsqrt(total + 1e-8)
    bias = tl.load(bias_ptr + offs_o, mask=mask_o, other=0.0).to(tl.float32)
    if UP:
        HO = 2 * H
        WO = 2 * W
        noise_row = noise_ptr + (n % NOISE_ROWS) * (HO * WO)
        y_base = y_ptr + n * O * HO * WO
        _epilogue(acc00, r00, u, dh, noise_row, bias, y_base, offs_o, mask_o, 2 * py, 2 * px, mask_p, HO, WO,
                  RANK1, LRELU, GAIN, CLAMP)
        _epilogue(acc01, r01, u, dh, noise_row, bias, y_base, offs_o, mask_o, 2 * py, 2 * px + 1, mask_p, HO, WO,
                  RANK1, LRELU, GAIN, CLAMP)
        _epilogue(acc10, r10, u, dh, noise_row, bias, y_base, offs_o, mask_o, 2 * py + 1, 2 * px, mask_p, HO, WO,
                  RANK1, LRELU, GAIN, CLAMP)
        _epilogue(acc11, r11, u, dh, noise_row, bias, y_base, offs_o, mask_o, 2 * py + 1, 2 * px + 1, mask_p, HO, WO,
                  RANK1, LRELU, GAIN, CLAMP)
    else:
        noise_row = noise_ptr + (n % NOISE_ROWS) * (H * W)
        _epilogue(acc00, r00, u, dh, noise_row, bias, y_ptr + n * O * H * W, offs_o, mask_o, py, px, mask_p, H, W,
                  RANK1, LRELU, GAIN, CLAMP)


@triton.jit
def _dot(w_tile, x_tile, acc, IEEE: tl.constexpr, x_ptr):
    """acc + w_tile @ x_tile with operands in the tensor dtype (fp16 → tensor cores), fp32 accumulate.

    fp32 operands (``IEEE``) use 3xTF32 (``tf32x3``): fp32-level accuracy on tensor cores, where plain
    TF32 would round operands to 10 mantissa bits and an IEEE fp32 dot compiles to a slow FMA loop with
    ~230 KB of shared memory on sm_90."""
    w_tile = w_tile.to(x_ptr.dtype.element_ty)
    if IEEE:
        return tl.dot(w_tile, x_tile, acc, input_precision="tf32x3")
    return tl.dot(w_tile, x_tile, acc)
