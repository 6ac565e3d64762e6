"""Triton kernels for ragged grouped-query pixel cross-attention (forward and backward).

Maths (one pixel p with tokens x_j, query row r in kv group h = r // g):

    k_j = W_k,h x_j          v_j = W_v,h x_j + b_v,h
    s_rj = scale · q_r·k_j = scale · (W_k,hᵀ q_r)·x_j = scale · q̃_r·x_j
    o_r = Σ_j p_rj v_j = W_v,h (Σ_j p_rj x_j) + b_v,h = W_v,h a_r + b_v,h        (Σ_j p_rj = 1)

The projections are *absorbed* into the per-pixel side: a program computes q̃ = Q·W_k (n_q × F) once,
runs the online softmax directly over the raw tokens (one (n_q × F)·(F × TILE_K) product per tile for
every query head at once, whatever n_kv is), accumulates a = Σ p·x (n_q × F) and projects once at the end.
Per-token keys and values never exist, not even in registers.

Block-diagonal layout: query row r only meets the rows of W_k/W_v of its own kv head. A program loads Q
(and dO, O) as a (BLOCK_Q × NKV·D_PAD) tile whose element (r, j) is Q[r, j mod D_PAD] when j belongs to
r's kv head and 0 otherwise (masked loads/stores, no extra memory traffic), so every projection is one
``tl.dot`` and any n_q, n_kv, d, F fit (padded to powers of two ≥ 16 with masks).

Backward per pixel (D_r = dO_r·(O_r − b_v,h) = Σ_j p_rj dp_rj):

    da_r = W_v,hᵀ dO_r           dp_rj = da_r·x_j       ds_rj = p_rj (dp_rj − D_r)
    dx_j = Σ_r p_rj da_r + scale Σ_r ds_rj q̃_r         dq̃_r = scale Σ_j ds_rj x_j
    dq_r = W_k,h dq̃_r     dW_k,h += Σ_r q_r⊗dq̃_r     dW_v,h += Σ_r dO_r⊗a_r     db_v,h += Σ_r dO_r

Precision with bf16 inputs: the products whose sums cancel or feed the softmax (q̃, scores, p·x, dp,
Σ ds·x, dq) take fp16 operands (3 more mantissa bits, same tensor-core rate); gradient-side operands
that could be tiny are scaled per row to O(1) first, and the scale is folded back outside the loop.
The rest are bf16; every accumulation is fp32.

The backward is persistent: each program walks a fixed stride of pixels (largest first) and keeps its
weight-gradient partial sums in registers; the host adds the per-program partials (deterministic).
"""

from __future__ import annotations

import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _mm(a, b, PREC: tl.constexpr):
    """``tl.dot`` with fp32 accumulation. PREC "upcast" multiplies 16-bit operands as fp32 (the CPU
    interpreter's bf16 dot is wrong); products of bf16 values are exact in fp32, so the result matches
    the tensor-core path up to summation order."""
    if PREC == "upcast":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a, b, input_precision=PREC)


@triton.jit
def _pa_fwd_kernel(
    Q, X, WK, WV, BV, SEG, ORDER, OUT, LSE,
    n_pix, n_q, d, F, row0, head0, rows, qk_scale,
    G: tl.constexpr, BLOCK_Q: tl.constexpr, D_PAD: tl.constexpr, F_PAD: tl.constexpr,
    NKV_P: tl.constexpr, KP: tl.constexpr, TILE_K: tl.constexpr, HAS_BIAS: tl.constexpr, DOT_PREC: tl.constexpr,
    WRITE_LSE: tl.constexpr,
):
    """Persistent over pixels when launched with fewer programs than pixels (program i takes pixels
    i, i + grid, …, largest first): the weight tiles are loaded once per program, not once per pixel.
    SEG holds (start, count) per schedule slot, so a pixel's three index loads do not wait on each other."""
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    cdt = X.dtype.element_ty
    # forward-side products (q̃, scores, p·x, output) take fp16 operands when the inputs are bf16:
    # 3 more mantissa bits at the same tensor-core speed (values are O(1), far from fp16's range limit)
    sdt = tl.float16 if cdt == tl.bfloat16 else cdt

    ri = tl.arange(0, BLOCK_Q)
    kj = tl.arange(0, KP)
    fj = tl.arange(0, F_PAD)
    hj = kj // D_PAD
    cj = kj % D_PAD
    row_ok = ri < rows
    col_ok = (cj < d) & (hj < NKV_P)
    f_ok = fj < F
    bd = row_ok[:, None] & ((ri // G)[:, None] == hj[None, :]) & col_ok[None, :]
    w_off = (head0 + hj)[:, None] * d * F + cj[:, None] * F + fj[None, :]
    w_mask = col_ok[:, None] & f_ok[None, :]
    wk = tl.load(WK + w_off, mask=w_mask, other=0.0).to(sdt)
    wv = tl.load(WV + w_off, mask=w_mask, other=0.0).to(sdt)
    if HAS_BIAS:
        b = tl.load(BV + (head0 + hj) * d + cj, mask=col_ok, other=0.0).to(tl.float32)
    tk = tl.arange(0, TILE_K)

    for it in range(pid, n_pix, nprog):
        pix = tl.load(ORDER + it).to(tl.int64)
        start = tl.load(SEG + 2 * it).to(tl.int64)
        n = tl.load(SEG + 2 * it + 1).to(tl.int64)
        nonempty = (tl.zeros([BLOCK_Q], tl.int64) + n) > 0  # per row (a scalar bool mask trips the interpreter)
        q_off = pix * n_q * d + (row0 + ri)[:, None] * d + cj[None, :]
        # q̃ = Q·W_k (block-diagonal over kv heads), pre-scaled for base-2 softmax
        qbd = tl.load(Q + q_off, mask=bd & nonempty[:, None], other=0.0).to(sdt)
        qs = (_mm(qbd, wk, DOT_PREC) * qk_scale).to(sdt)

        m = tl.full([BLOCK_Q], float("-inf"), tl.float32)
        l = tl.zeros([BLOCK_Q], tl.float32)
        acc = tl.zeros([BLOCK_Q, F_PAD], tl.float32)
        for k0 in range(0, n, TILE_K):
            kk = k0 + tk
            kmask = kk < n
            x = tl.load(X + (start + kk)[:, None] * F + fj[None, :], mask=kmask[:, None] & f_ok[None, :],
                        other=0.0).to(sdt)
            s = _mm(qs, tl.trans(x), DOT_PREC)
            s = tl.where(kmask[None, :], s, float("-inf"))
            m_new = tl.maximum(m, tl.max(s, 1))
            alpha = tl.exp2(m - m_new)
            p = tl.exp2(s - m_new[:, None])
            l = l * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + _mm(p.to(sdt), x, DOT_PREC)
            m = m_new

        l_safe = tl.where(l > 0.0, l, 1.0)
        a = (acc / l_safe[:, None]).to(sdt)
        o = _mm(a, tl.trans(wv), DOT_PREC)
        if HAS_BIAS:
            o = o + b[None, :]
        o = tl.where(nonempty[:, None], o, 0.0)
        tl.store(OUT + q_off, o.to(OUT.dtype.element_ty), mask=bd)
        if WRITE_LSE:
            lse = tl.where(nonempty, m + tl.log2(l_safe), 0.0)
            tl.store(LSE + pix * n_q + row0 + ri, lse, mask=row_ok)


@triton.jit
def _pa_bwd_kernel(
    Q, X, WK, WV, BV, CU, ORDER, OUT, DOUT, LSE, DQ, DX, PART,
    n_pix, n_q, d, F, row0, head0, rows, qk_scale,
    G: tl.constexpr, BLOCK_Q: tl.constexpr, D_PAD: tl.constexpr, F_PAD: tl.constexpr,
    NKV_P: tl.constexpr, KP: tl.constexpr, TILE_K: tl.constexpr, HAS_BIAS: tl.constexpr,
    DOT_PREC: tl.constexpr, ACCUM_DX: tl.constexpr,
):
    INV_LOG2E: tl.constexpr = 0.6931471805599453
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    cdt = X.dtype.element_ty
    sdt = tl.float16 if cdt == tl.bfloat16 else cdt  # as in the forward, so p matches its lse
    scale = qk_scale * INV_LOG2E

    ri = tl.arange(0, BLOCK_Q)
    kj = tl.arange(0, KP)
    fj = tl.arange(0, F_PAD)
    hj = kj // D_PAD
    cj = kj % D_PAD
    row_ok = ri < rows
    col_ok = (cj < d) & (hj < NKV_P)
    f_ok = fj < F
    bd = row_ok[:, None] & ((ri // G)[:, None] == hj[None, :]) & col_ok[None, :]
    w_off = (head0 + hj)[:, None] * d * F + cj[:, None] * F + fj[None, :]
    w_mask = col_ok[:, None] & f_ok[None, :]
    wks = tl.load(WK + w_off, mask=w_mask, other=0.0).to(sdt)
    wv = tl.load(WV + w_off, mask=w_mask, other=0.0).to(cdt)
    if HAS_BIAS:
        b = tl.load(BV + (head0 + hj) * d + cj, mask=col_ok, other=0.0).to(tl.float32)
    else:
        b = tl.zeros([KP], tl.float32)
    tk = tl.arange(0, TILE_K)

    dwk = tl.zeros([KP, F_PAD], tl.float32)
    dwv = tl.zeros([KP, F_PAD], tl.float32)
    dbv = tl.zeros([KP], tl.float32)
    for it in range(pid, n_pix, nprog):
        pix = tl.load(ORDER + it).to(tl.int64)
        start = tl.load(CU + pix).to(tl.int64)
        n = tl.load(CU + pix + 1).to(tl.int64) - start
        nonempty = (tl.zeros([BLOCK_Q], tl.int64) + n) > 0
        q_off = pix * n_q * d + (row0 + ri)[:, None] * d + cj[None, :]
        ld = bd & nonempty[:, None]
        qbd = tl.load(Q + q_off, mask=ld, other=0.0).to(cdt)
        dobd = tl.load(DOUT + q_off, mask=ld, other=0.0).to(cdt)
        obd = tl.load(OUT + q_off, mask=ld, other=0.0).to(tl.float32)
        lse = tl.load(LSE + pix * n_q + row0 + ri, mask=row_ok & nonempty, other=0.0)
        qt = _mm(qbd.to(sdt), wks, DOT_PREC) * qk_scale
        qs = qt.to(sdt)
        da32 = _mm(dobd, wv, DOT_PREC)
        da = da32.to(cdt)
        # dp = da·x runs on fp16 operands with da scaled per row to max|da| = 1 (no underflow); the row
        # scale is folded into delta, q̃ and the final dq̃, so the inner loop pays nothing for it
        sc = tl.max(tl.abs(da32), 1)
        sc = tl.where(sc > 0.0, sc, 1.0)
        da_s = (da32 / sc[:, None]).to(sdt)
        delta = tl.sum(tl.where(ld, dobd.to(tl.float32) * (obd - b[None, :]), 0.0), 1) / sc
        qc = (qt * sc[:, None]).to(cdt)

        dq_acc = tl.zeros([BLOCK_Q, F_PAD], tl.float32)
        a_acc = tl.zeros([BLOCK_Q, F_PAD], tl.float32)
        for k0 in range(0, n, TILE_K):
            kk = k0 + tk
            kmask = kk < n
            x_off = (start + kk)[:, None] * F + fj[None, :]
            xm = kmask[:, None] & f_ok[None, :]
            x = tl.load(X + x_off, mask=xm, other=0.0)
            xs = x.to(sdt)
            s = _mm(qs, tl.trans(xs), DOT_PREC)
            p = tl.exp2(s - lse[:, None])
            p = tl.where(row_ok[:, None] & kmask[None, :], p, 0.0)
            dp = _mm(da_s, tl.trans(xs), DOT_PREC)
            ds = p * (dp - delta[:, None])
            pc = p.to(cdt)
            dsc = ds.to(cdt)
            dx = _mm(tl.trans(pc), da, DOT_PREC)
            dx += _mm(tl.trans(dsc), qc, DOT_PREC) * INV_LOG2E
            if ACCUM_DX:
                dx += tl.load(DX + x_off, mask=xm, other=0.0).to(tl.float32)
            tl.store(DX + x_off, dx.to(DX.dtype.element_ty), mask=xm)
            # Σ_j ds_j = 0, so dq̃ = Σ_j ds_j x_j cancels: fp16 operands (ds is row-scaled to O(1))
            dq_acc += _mm(ds.to(sdt), xs, DOT_PREC)
            a_acc += _mm(pc, x, DOT_PREC)

        dqt = (dq_acc * (sc * scale)[:, None]).to(cdt)
        dqf = _mm((dq_acc * scale).to(sdt), tl.trans(wks), DOT_PREC) * sc[:, None]
        tl.store(DQ + q_off, dqf.to(DQ.dtype.element_ty), mask=bd)
        dwk += _mm(tl.trans(qbd), dqt, DOT_PREC)
        dwv += _mm(tl.trans(dobd), a_acc.to(cdt), DOT_PREC)
        dbv += tl.sum(dobd.to(tl.float32), 0)

    PER: tl.constexpr = 2 * KP * F_PAD + KP
    base = PART + pid.to(tl.int64) * PER
    mat = kj[:, None] * F_PAD + fj[None, :]
    tl.store(base + mat, dwk)
    tl.store(base + KP * F_PAD + mat, dwv)
    tl.store(base + 2 * KP * F_PAD + kj, dbv)
