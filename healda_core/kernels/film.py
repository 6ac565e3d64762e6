"""Triton kernels for the FiLM observation tokenizer (forward and backward).

Per observation row (ARCHITECTURE §5.4):

    h   = W1·[meta | E_t[type] | E_c[chan] | E_p[plat]] + b1        (hidden H)
    y   = LayerNorm(h)·γ + β          act = SiLU(y)
    α   = W2[:F]·act + b2[:F]         β' = W2[F:]·act + b2[F:]        token = α·obs + β'

The concatenated conditioning row is never built: h is a sum of one product per segment, each padded
to a power of two ≥ 16 with masks, and the embedding rows are gathered by id. α and β' use separate,
masked loads of W2's two halves, so every F (not only powers of two) is correct. LayerNorm statistics,
SiLU and all accumulation are fp32.

Both kernels are persistent: each program loads (and casts) the weight tiles once, then walks a stride
of row tiles. The backward replays the forward and keeps
the dense weight gradients (W1 per segment, b1, γ, β, W2 halves, b2) in fp32 registers, written once
as a per-program partial (summed on the host: deterministic). Embedding-table gradients are
atomically added per row (or, with DEMB_ROWS, written per row for a deterministic host reduction).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _mm(a, b, PREC: tl.constexpr):
    if PREC == "upcast":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    elif PREC == "bf16":
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))
    else:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision=PREC)


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
    """Forward replay for one row tile: inputs, normalised xhat, rstd, pre-activation y, sigmoid(y)."""
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
    else:
        idp = idt
        ep = tl.zeros([BLOCK_M, E3_PAD], tl.float32)
    h += b1[None, :]
    mean = tl.sum(h, 1) / H  # padded columns of h are exactly 0
    xc = tl.where(h_ok[None, :], h - mean[:, None], 0.0)
    var = tl.sum(xc * xc, 1) / H
    rstd = 1.0 / tl.sqrt(var + eps)
    xhat = xc * rstd[:, None]
    y = xhat * gam[None, :] + bet[None, :]
    sig = 1.0 / (1.0 + tl.exp(-y))
    return meta, et, ec, ep, idt, idc, idp, xhat, rstd, y, sig


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
    N, M, E1, E2, E3, H, F, eps,
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
        _m, _et, _ec, _ep, _a, _b, _c, _xh, _rs, y, sig = _film_rows(
            rows, rmask, META, IDT, IDC, IDP, ET, EC, EP, w1m, w1t, w1c, w1p, b1, gam, bet, M, E1, E2, E3, H, eps,
            M_PAD, E1_PAD, E2_PAD, E3_PAD, H_PAD, HAS_PLAT, PREC, BLOCK_M)
        act = y * sig
        alpha = _mm(act, w2a, PREC) + b2a[None, :]
        beta = _mm(act, w2b, PREC) + b2b[None, :]
        obs = tl.load(OBS + rows, mask=rmask, other=0.0).to(tl.float32)
        out = alpha * obs[:, None] + beta
        tl.store(OUT + rows[:, None] * F + f[None, :], out.to(OUT.dtype.element_ty),
                 mask=rmask[:, None] & f_ok[None, :])


@triton.jit
def _film_bwd_kernel(
    OBS, META, IDT, IDC, IDP, ET, EC, EP, W1, B1, LNW, LNB, W2, B2, DOUT,
    GET, GEC, GEP, DOBS, DMETA, PART,
    N, M, E1, E2, E3, H, F, eps,
    M_PAD: tl.constexpr, E1_PAD: tl.constexpr, E2_PAD: tl.constexpr, E3_PAD: tl.constexpr,
    H_PAD: tl.constexpr, F_PAD: tl.constexpr, HAS_PLAT: tl.constexpr, BLOCK_M: tl.constexpr, PREC: tl.constexpr,
    DEMB_ROWS: tl.constexpr, NEED_DOBS: tl.constexpr, NEED_DMETA: tl.constexpr,
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    n_tiles = tl.cdiv(N, BLOCK_M)
    j = tl.arange(0, H_PAD)
    h_ok = j < H
    f = tl.arange(0, F_PAD)
    f_ok = f < F
    c1 = tl.arange(0, E1_PAD)
    c2 = tl.arange(0, E2_PAD)
    c3 = tl.arange(0, E3_PAD)
    cm = tl.arange(0, M_PAD)

    g_w1m = tl.zeros([H_PAD, M_PAD], tl.float32)
    g_w1t = tl.zeros([H_PAD, E1_PAD], tl.float32)
    g_w1c = tl.zeros([H_PAD, E2_PAD], tl.float32)
    g_w1p = tl.zeros([H_PAD, E3_PAD], tl.float32)
    g_b1 = tl.zeros([H_PAD], tl.float32)
    g_gam = tl.zeros([H_PAD], tl.float32)
    g_bet = tl.zeros([H_PAD], tl.float32)
    g_w2a = tl.zeros([F_PAD, H_PAD], tl.float32)
    g_w2b = tl.zeros([F_PAD, H_PAD], tl.float32)
    g_b2a = tl.zeros([F_PAD], tl.float32)
    g_b2b = tl.zeros([F_PAD], tl.float32)
    # every weight tile is loaded (and cast, and transposed where a product needs it) once per program
    w1m, w1t, w1c, w1p, b1, gam, bet = _film_weights(W1, B1, LNW, LNB, M, E1, E2, E3, H, M_PAD, E1_PAD, E2_PAD,
                                                     E3_PAD, H_PAD, PREC)
    w1m_t, w1t_t, w1c_t, w1p_t = tl.trans(w1m), tl.trans(w1t), tl.trans(w1c), tl.trans(w1p)
    w2a = _wcast(_w2_half(W2, 0, F, H, F_PAD, H_PAD), PREC)
    w2b = _wcast(_w2_half(W2, 1, F, H, F_PAD, H_PAD), PREC)
    w2a_t = tl.trans(w2a)
    b2a = tl.load(B2 + f, mask=f_ok, other=0.0).to(tl.float32)
    for tile in range(pid, n_tiles, nprog):
        rows = (tl.zeros([BLOCK_M], tl.int64) + tile) * BLOCK_M + tl.arange(0, BLOCK_M)
        rmask = rows < N
        meta, et, ec, ep, idt, idc, idp, xhat, rstd, y, sig = _film_rows(
            rows, rmask, META, IDT, IDC, IDP, ET, EC, EP, w1m, w1t, w1c, w1p, b1, gam, bet, M, E1, E2, E3, H, eps,
            M_PAD, E1_PAD, E2_PAD, E3_PAD, H_PAD, HAS_PLAT, PREC, BLOCK_M)
        act = y * sig
        obs = tl.load(OBS + rows, mask=rmask, other=0.0).to(tl.float32)
        g = tl.load(DOUT + rows[:, None] * F + f[None, :], mask=rmask[:, None] & f_ok[None, :],
                    other=0.0).to(tl.float32)
        da = g * obs[:, None]
        if NEED_DOBS:
            alpha = _mm(act, w2a_t, PREC) + b2a[None, :]
            tl.store(DOBS + rows, tl.sum(g * alpha, 1), mask=rmask)
        g_w2a += _mm(tl.trans(da), act, PREC)
        g_w2b += _mm(tl.trans(g), act, PREC)
        g_b2a += tl.sum(da, 0)
        g_b2b += tl.sum(g, 0)
        dact = _mm(da, w2a, PREC) + _mm(g, w2b, PREC)
        dy = dact * (sig * (1.0 + y * (1.0 - sig)))
        g_gam += tl.sum(dy * xhat, 0)
        g_bet += tl.sum(dy, 0)
        dxh = dy * gam[None, :]
        k1 = tl.sum(dxh, 1) / H
        k2 = tl.sum(dxh * xhat, 1) / H
        dh = rstd[:, None] * (dxh - k1[:, None] - xhat * k2[:, None])
        dh = tl.where(h_ok[None, :] & rmask[:, None], dh, 0.0)
        g_b1 += tl.sum(dh, 0)
        g_w1m += _mm(tl.trans(dh), meta, PREC)
        g_w1t += _mm(tl.trans(dh), et, PREC)
        g_w1c += _mm(tl.trans(dh), ec, PREC)
        if NEED_DMETA:
            dm = _mm(dh, w1m_t, PREC)
            tl.store(DMETA + rows[:, None] * M + cm[None, :], dm, mask=rmask[:, None] & (cm < M)[None, :])
        dt = _mm(dh, w1t_t, PREC)
        dc = _mm(dh, w1c_t, PREC)
        mt = rmask[:, None] & (c1 < E1)[None, :]
        mc = rmask[:, None] & (c2 < E2)[None, :]
        if DEMB_ROWS:
            tl.store(GET + rows[:, None] * E1 + c1[None, :], dt, mask=mt)
            tl.store(GEC + rows[:, None] * E2 + c2[None, :], dc, mask=mc)
        else:
            tl.atomic_add(GET + idt[:, None] * E1 + c1[None, :], dt, mask=mt, sem="relaxed")
            tl.atomic_add(GEC + idc[:, None] * E2 + c2[None, :], dc, mask=mc, sem="relaxed")
        if HAS_PLAT:
            g_w1p += _mm(tl.trans(dh), ep, PREC)
            dp = _mm(dh, w1p_t, PREC)
            mp = rmask[:, None] & (c3 < E3)[None, :]
            if DEMB_ROWS:
                tl.store(GEP + rows[:, None] * E3 + c3[None, :], dp, mask=mp)
            else:
                tl.atomic_add(GEP + idp[:, None] * E3 + c3[None, :], dp, mask=mp, sem="relaxed")

    # per-program partials, layout matches film_op._PartLayout
    base = PART + pid.to(tl.int64) * (H_PAD * (M_PAD + E1_PAD + E2_PAD + E3_PAD + 3) + F_PAD * (2 * H_PAD + 2))
    o = 0
    tl.store(base + o + j[:, None] * M_PAD + cm[None, :], g_w1m)
    o += H_PAD * M_PAD
    tl.store(base + o + j[:, None] * E1_PAD + c1[None, :], g_w1t)
    o += H_PAD * E1_PAD
    tl.store(base + o + j[:, None] * E2_PAD + c2[None, :], g_w1c)
    o += H_PAD * E2_PAD
    tl.store(base + o + j[:, None] * E3_PAD + c3[None, :], g_w1p)
    o += H_PAD * E3_PAD
    tl.store(base + o + j, g_b1)
    o += H_PAD
    tl.store(base + o + j, g_gam)
    o += H_PAD
    tl.store(base + o + j, g_bet)
    o += H_PAD
    tl.store(base + o + f[:, None] * H_PAD + j[None, :], g_w2a)
    o += F_PAD * H_PAD
    tl.store(base + o + f[:, None] * H_PAD + j[None, :], g_w2b)
    o += F_PAD * H_PAD
    tl.store(base + o + f, g_b2a)
    o += F_PAD
    tl.store(base + o + f, g_b2b)
