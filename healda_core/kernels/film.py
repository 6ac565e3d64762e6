"""Triton forward kernel of the FiLM observation tokenizer (the backward is in ``film_bwd.py``).

Per observation row (ARCHITECTURE §5.4):

    h   = W1·[meta | E_t[type] | E_c[chan] | E_p[plat]] + b1        (hidden H)
    y   = LayerNorm(h)·γ + β          act = SiLU(y)
    α   = W2[:F]·act + b2[:F]         β' = W2[F:]·act + b2[F:]        token = α·obs + β'

The concatenated conditioning row is never built: h is a sum of one product per segment, each padded
to a power of two ≥ 16 with masks, and the embedding rows are gathered by id. α and β' use separate,
masked loads of W2's two halves, so every F (not only powers of two) is correct. LayerNorm statistics,
SiLU and all accumulation are fp32.

The kernel is persistent: each program loads (and casts) the weight tiles once, then walks a stride of
row tiles. (Gathering the three embeddings into one tile, as the backward does, measures slower in this
forward.)
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

# inline PTX only when compiled for an NVIDIA GPU (not in the CPU interpreter, not on ROCm builds of PyTorch)
_FAST_MATH = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") != "1" and torch.version.hip is None)


@triton.jit
def _mm(a, b, PREC: tl.constexpr):
    if PREC == "upcast":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    elif PREC == "bf16":
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))
    else:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision=PREC)


@triton.jit
def _sigmoid(y):
    """1 / (1 + e^-y) in fp32. FAST (GPU): ``ex2.approx.ftz`` and ``rcp.approx.ftz`` directly, the same
    approximations ``tl.exp`` and ``/`` use, without their denormal and range fix-ups (3 of the 7 instructions per
    element: the exponent and the reciprocal here stay normal or go to 0 / inf, where the sigmoid is 1 or 0).
    The CPU interpreter cannot run PTX: it takes the plain expression."""
    if _FAST_MATH:
        e = tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=r,r", [y * -1.4426950408889634],
                                      dtype=tl.float32, is_pure=True, pack=1)
        return tl.inline_asm_elementwise("rcp.approx.ftz.f32 $0, $1;", "=r,r", [1.0 + e], dtype=tl.float32,
                                         is_pure=True, pack=1)
    else:
        return 1.0 / (1.0 + tl.exp(-y))


@triton.jit
def _seg_t(W1, cond_dim, off, seg, H, SEG_PAD: tl.constexpr, H_PAD: tl.constexpr):
    """W1[:, off:off+seg]ᵀ as a (SEG_PAD × H_PAD) fp32 tile (zeros outside)."""
    c = tl.arange(0, SEG_PAD)
    j = tl.arange(0, H_PAD)
    return tl.load(W1 + j[None, :] * cond_dim + off + c[:, None], mask=(c < seg)[:, None] & (j < H)[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _gather(E, ids, rmask, e, E_PAD: tl.constexpr):
    c = tl.arange(0, E_PAD)
    return tl.load(E + ids[:, None] * e + c[None, :], mask=rmask[:, None] & (c < e)[None, :], other=0.0).to(tl.float32)


@triton.jit
def _wcast(w, PREC: tl.constexpr):
    """A weight tile in the product dtype (cast once per program, outside the row loop)."""
    if PREC == "bf16":
        return w.to(tl.bfloat16)
    else:
        return w


@triton.jit
def _film_weights(W1, B1, LNW, LNB, M, E1, E2, E3, H,
                  M_PAD: tl.constexpr, E1_PAD: tl.constexpr, E2_PAD: tl.constexpr, E3_PAD: tl.constexpr,
                  H_PAD: tl.constexpr, PREC: tl.constexpr):
    """The first layer's per-segment W1ᵀ tiles (product dtype), b1, γ and β (fp32): loaded once per program."""
    cond_dim = M + E1 + E2 + E3
    j = tl.arange(0, H_PAD)
    h_ok = j < H
    w1m = _wcast(_seg_t(W1, cond_dim, 0, M, H, M_PAD, H_PAD), PREC)
    w1t = _wcast(_seg_t(W1, cond_dim, M, E1, H, E1_PAD, H_PAD), PREC)
    w1c = _wcast(_seg_t(W1, cond_dim, M + E1, E2, H, E2_PAD, H_PAD), PREC)
    w1p = _wcast(_seg_t(W1, cond_dim, M + E1 + E2, E3, H, E3_PAD, H_PAD), PREC)
    b1 = tl.load(B1 + j, mask=h_ok, other=0.0).to(tl.float32)
    gam = tl.load(LNW + j, mask=h_ok, other=0.0).to(tl.float32)
    bet = tl.load(LNB + j, mask=h_ok, other=0.0).to(tl.float32)
    return w1m, w1t, w1c, w1p, b1, gam, bet


@triton.jit
def _film_rows(rows, rmask, META, IDT, IDC, IDP, ET, EC, EP, w1m, w1t, w1c, w1p, b1, gam, bet,
               M, E1, E2, E3, H, eps,
               M_PAD: tl.constexpr, E1_PAD: tl.constexpr, E2_PAD: tl.constexpr, E3_PAD: tl.constexpr,
               H_PAD: tl.constexpr, HAS_PLAT: tl.constexpr, PREC: tl.constexpr, BLOCK_M: tl.constexpr):
    """One row tile up to the activation: pre-activation y and sigmoid(y)."""
    j = tl.arange(0, H_PAD)
    h_ok = j < H
    cm = tl.arange(0, M_PAD)
    meta = tl.load(META + rows[:, None] * M + cm[None, :], mask=rmask[:, None] & (cm < M)[None, :],
                   other=0.0).to(tl.float32)
    idt = tl.load(IDT + rows, mask=rmask, other=0).to(tl.int64)
    idc = tl.load(IDC + rows, mask=rmask, other=0).to(tl.int64)
    et = _gather(ET, idt, rmask, E1, E1_PAD)
    ec = _gather(EC, idc, rmask, E2, E2_PAD)
    h = _mm(meta, w1m, PREC)
    h += _mm(et, w1t, PREC)
    h += _mm(ec, w1c, PREC)
    if HAS_PLAT:
        idp = tl.load(IDP + rows, mask=rmask, other=0).to(tl.int64)
        ep = _gather(EP, idp, rmask, E3, E3_PAD)
        h += _mm(ep, w1p, PREC)
    h += b1[None, :]
    mean = tl.sum(h, 1) / H  # padded columns of h are exactly 0
    xc = tl.where(h_ok[None, :], h - mean[:, None], 0.0)
    var = tl.sum(xc * xc, 1) / H
    rstd = 1.0 / tl.sqrt(var + eps)
    xhat = xc * rstd[:, None]
    y = xhat * gam[None, :] + bet[None, :]
    return y, _sigmoid(y)


@triton.jit
def _w2_half(W2, half, F, H, F_PAD: tl.constexpr, H_PAD: tl.constexpr):
    """Rows [half·F, half·F + F) of W2 (2F × H) as an (F_PAD × H_PAD) fp32 tile."""
    f = tl.arange(0, F_PAD)
    j = tl.arange(0, H_PAD)
    return tl.load(W2 + (half * F + f)[:, None] * H + j[None, :], mask=(f < F)[:, None] & (j < H)[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _film_fwd_kernel(
    OBS, META, IDT, IDC, IDP, ET, EC, EP, W1, B1, LNW, LNB, W2, B2, OUT,
    N, M: tl.constexpr, E1: tl.constexpr, E2: tl.constexpr, E3: tl.constexpr, H: tl.constexpr, F: tl.constexpr, eps,
    M_PAD: tl.constexpr, E1_PAD: tl.constexpr, E2_PAD: tl.constexpr, E3_PAD: tl.constexpr,
    H_PAD: tl.constexpr, F_PAD: tl.constexpr, HAS_PLAT: tl.constexpr, BLOCK_M: tl.constexpr, PREC: tl.constexpr,
):
    """Persistent over row tiles (program i takes tiles i, i + grid, …): weights loaded once per program."""
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    n_tiles = tl.cdiv(N, BLOCK_M)
    w1m, w1t, w1c, w1p, b1, gam, bet = _film_weights(W1, B1, LNW, LNB, M, E1, E2, E3, H, M_PAD, E1_PAD, E2_PAD,
                                                     E3_PAD, H_PAD, PREC)
    f = tl.arange(0, F_PAD)
    f_ok = f < F
    w2a = _wcast(tl.trans(_w2_half(W2, 0, F, H, F_PAD, H_PAD)), PREC)
    w2b = _wcast(tl.trans(_w2_half(W2, 1, F, H, F_PAD, H_PAD)), PREC)
    b2a = tl.load(B2 + f, mask=f_ok, other=0.0).to(tl.float32)
    b2b = tl.load(B2 + F + f, mask=f_ok, other=0.0).to(tl.float32)
    for tile in range(pid, n_tiles, nprog):
        rows = (tl.zeros([BLOCK_M], tl.int64) + tile) * BLOCK_M + tl.arange(0, BLOCK_M)
        rmask = rows < N
        y, sig = _film_rows(
            rows, rmask, META, IDT, IDC, IDP, ET, EC, EP, w1m, w1t, w1c, w1p, b1, gam, bet, M, E1, E2, E3, H, eps,
            M_PAD, E1_PAD, E2_PAD, E3_PAD, H_PAD, HAS_PLAT, PREC, BLOCK_M)
        act = y * sig
        alpha = _mm(act, w2a, PREC) + b2a[None, :]
        beta = _mm(act, w2b, PREC) + b2b[None, :]
        obs = tl.load(OBS + rows, mask=rmask, other=0.0).to(tl.float32)
        out = alpha * obs[:, None] + beta
        tl.store(OUT + rows[:, None] * F + f[None, :], out.to(OUT.dtype.element_ty),
                 mask=rmask[:, None] & f_ok[None, :])
