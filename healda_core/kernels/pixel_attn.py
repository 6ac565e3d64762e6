"""Triton kernels for ragged grouped-query pixel cross-attention (forward and backward).

Maths (one pixel p with tokens x_j, query row r in kv group h = r // g):

    k_j = W_k,h x_j          v_j = W_v,h x_j + b_v,h
    s_rj = scale · q_r·k_j = scale · (W_k,hᵀ q_r)·x_j = scale · q̃_r·x_j
    o_r = Σ_j p_rj v_j = W_v,h (Σ_j p_rj x_j) + b_v,h = W_v,h a_r + b_v,h        (Σ_j p_rj = 1)

The projections are *absorbed* into the per-pixel side: a program computes q̃ = Q·W_k (n_q × F) once,
runs the online softmax directly over the raw tokens (one (n_q × F)·(F × TILE_K) product per tile for
every query head at once, whatever n_kv is), accumulates a = Σ p·x (n_q × F) and projects once at the end.
Per-token keys and values never exist, not even in registers.

Head layout: a launch covers one or two kv heads (more heads → more launches). Both kernels keep the query
rows (and, in the backward, dO and O) in their natural (BLOCK_Q × D_PAD) layout and project each kv head's
rows with a row-masked product; the token-side products run once for both heads. Any n_q, n_kv, d, F fit
(padded to powers of two ≥ 16 with masks).

Backward per pixel (D_r = dO_r·(O_r − b_v,h) = Σ_j p_rj dp_rj):

    da_r = W_v,hᵀ dO_r           dp_rj = da_r·x_j       ds_rj = p_rj (dp_rj − D_r)
    dx_j = Σ_r p_rj da_r + scale Σ_r ds_rj q̃_r         dq̃_r = scale Σ_j ds_rj x_j
    dq_r = W_k,h dq̃_r     dW_k,h += Σ_r q_r⊗dq̃_r     dW_v,h += Σ_r dO_r⊗a_r     db_v,h += Σ_r dO_r

Precision with bf16 inputs: the products whose sums cancel or feed the softmax (q̃, scores, p·x, dp,
Σ ds·x, dq) take fp16 operands (3 more mantissa bits, same tensor-core rate); gradient-side operands
that could be tiny are scaled per row to O(1) first, and the scale is folded back outside the loop.
The rest are bf16; every accumulation is fp32.

The backward is persistent: each program walks a fixed stride of pixels (largest first). It stores each pixel's
dq̃ and a = Σ p·x (the 16-bit operands of the weight-gradient products) at the pixel's schedule slot, and a second
kernel (``_pa_wgrad_kernel``) sums dW_k, dW_v, db_v from them and q, dO, one kv head's rows at a time, holding
the sums in registers and writing one slice per program (the host adds the slices: reproducible). Doing those
products per pixel inside the backward needs row-masked operands and atomic adds, about a third of its time
(docs/design.md); the scratch costs two (P, BLOCK_Q, F_PAD) buffers in the tokens' dtype.
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
def _by_head(x, first, dt: tl.constexpr):
    """A (BLOCK_Q × ·) row tile split by kv head: (the first head's rows, zeros elsewhere; the second's) in ``dt``."""
    return tl.where(first[:, None], x, 0.0).to(dt), tl.where(first[:, None], 0.0, x).to(dt)


@triton.jit
def _head_w(W, head, d, F, cj, fj, w_mask, sdt: tl.constexpr):
    """Rows [head·d, head·d + d) of a (n_kv·d, F) weight as a (D_PAD × F_PAD) tile in ``sdt``."""
    return tl.load(W + head * d * F + cj[:, None] * F + fj[None, :], mask=w_mask, other=0.0).to(sdt)


@triton.jit
def _pa_fwd_kernel(
    Q, X, WK, WV, BV, SEG, ORDER, OUT, LSE,
    n_pix, n_q: tl.constexpr, d: tl.constexpr, F: tl.constexpr, row0, head0, rows, qk_scale,
    G: tl.constexpr, BLOCK_Q: tl.constexpr, D_PAD: tl.constexpr, F_PAD: tl.constexpr,
    NKV_P: tl.constexpr, TILE_K: tl.constexpr, HAS_BIAS: tl.constexpr, DOT_PREC: tl.constexpr,
    WRITE_LSE: tl.constexpr, D_EXACT: tl.constexpr, F_EXACT: tl.constexpr,
):
    """Persistent over pixels when launched with fewer programs than pixels (program i takes pixels
    i, i + grid, …, largest first): the weight tiles are loaded once per program, not once per pixel.
    SEG holds (start, count) per schedule slot, so a pixel's three index loads do not wait on each other; ORDER
    ends with the number of leading slots to attend over: the empty pixels after those only get zeros.

    Rows stay in their natural (BLOCK_Q × D_PAD) layout; the one or two kv heads of a launch (NKV_P ≤ 2)
    project their own rows with row-masked products. Offsets are int32 tiles on int64 base pointers, and
    D_EXACT/F_EXACT drop the column masks: register pressure, not memory, limits this kernel."""
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    cdt = X.dtype.element_ty
    # forward-side products (q̃, scores, p·x, output) take fp16 operands when the inputs are bf16:
    # 3 more mantissa bits at the same tensor-core speed (values are O(1), far from fp16's range limit)
    sdt = tl.float16 if cdt == tl.bfloat16 else cdt

    ri = tl.arange(0, BLOCK_Q)
    cj = tl.arange(0, D_PAD)
    fj = tl.arange(0, F_PAD)
    row_ok = ri < rows
    first = (ri // G) == 0  # rows of the launch's first kv head
    if D_EXACT:
        c_ok = cj < D_PAD
    else:
        c_ok = cj < d
    if F_EXACT:
        f_ok = fj < F_PAD
    else:
        f_ok = fj < F
    q_loc = (row0 + ri)[:, None] * d + cj[None, :]  # int32 (n_q·d per pixel)
    q_mask = row_ok[:, None] & c_ok[None, :]
    n_work = tl.load(ORDER + n_pix)  # schedule slots [0, n_work) hold every non-empty pixel, the rest are empty
    # empty pixels first (a third of a real window's): zeros, no loads, no products
    for it in range(n_work + pid, n_pix, nprog):
        pix = tl.load(ORDER + it).to(tl.int64)
        tl.store(OUT + pix * n_q * d + q_loc, tl.zeros([BLOCK_Q, D_PAD], OUT.dtype.element_ty), mask=q_mask)
        if WRITE_LSE:
            tl.store(LSE + pix * n_q + row0 + ri, tl.zeros([BLOCK_Q], tl.float32), mask=row_ok)

    w_mask = c_ok[:, None] & f_ok[None, :]
    wk0 = _head_w(WK, head0, d, F, cj, fj, w_mask, sdt)
    wv0 = _head_w(WV, head0, d, F, cj, fj, w_mask, sdt)
    if NKV_P == 2:
        wk1 = _head_w(WK, head0 + 1, d, F, cj, fj, w_mask, sdt)
        wv1 = _head_w(WV, head0 + 1, d, F, cj, fj, w_mask, sdt)
    if HAS_BIAS:
        b0 = tl.load(BV + head0 * d + cj, mask=c_ok, other=0.0).to(tl.float32)
        if NKV_P == 2:
            b1 = tl.load(BV + (head0 + 1) * d + cj, mask=c_ok, other=0.0).to(tl.float32)
            bias = tl.where(first[:, None], b0[None, :], b1[None, :])
        else:
            bias = b0[None, :] + tl.zeros([BLOCK_Q, D_PAD], tl.float32)
    tk = tl.arange(0, TILE_K)

    for it in range(pid, n_work, nprog):
        pix = tl.load(ORDER + it).to(tl.int64)
        start = tl.load(SEG + 2 * it).to(tl.int64)
        n = tl.load(SEG + 2 * it + 1)
        nonempty = (tl.zeros([BLOCK_Q], tl.int32) + n) > 0  # per row (a scalar bool mask trips the interpreter)
        qp = Q + pix * n_q * d
        # q̃ = Q·W_k per kv head, pre-scaled for base-2 softmax
        qv = tl.load(qp + q_loc, mask=q_mask & nonempty[:, None], other=0.0).to(sdt)
        if NKV_P == 2:
            q0, q1 = _by_head(qv, first, sdt)
            qt = _mm(q0, wk0, DOT_PREC) + _mm(q1, wk1, DOT_PREC)
        else:
            qt = _mm(qv, wk0, DOT_PREC)
        qs = (qt * qk_scale).to(sdt)

        xp = X + start * F
        m = tl.full([BLOCK_Q], float("-inf"), tl.float32)
        l = tl.zeros([BLOCK_Q], tl.float32)
        acc = tl.zeros([BLOCK_Q, F_PAD], tl.float32)
        for k0 in range(0, n, TILE_K):
            kk = k0 + tk
            kmask = kk < n
            x = tl.load(xp + kk[:, None] * F + fj[None, :], mask=kmask[:, None] & f_ok[None, :], other=0.0).to(sdt)
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
        if NKV_P == 2:
            o = tl.where(first[:, None], _mm(a, tl.trans(wv0), DOT_PREC), _mm(a, tl.trans(wv1), DOT_PREC))
        else:
            o = _mm(a, tl.trans(wv0), DOT_PREC)
        if HAS_BIAS:
            o = o + bias
        o = tl.where(nonempty[:, None], o, 0.0)
        tl.store(OUT + pix * n_q * d + q_loc, o.to(OUT.dtype.element_ty), mask=q_mask)
        if WRITE_LSE:
            lse = tl.where(nonempty, m + tl.log2(l_safe), 0.0)
            tl.store(LSE + pix * n_q + row0 + ri, lse, mask=row_ok)


@triton.jit
def _pa_bwd_kernel(
    Q, X, WK, WV, BV, CU, ORDER, OUT, DOUT, LSE, DQ, DX, DQT, AC,
    n_pix, n_q: tl.constexpr, d: tl.constexpr, F: tl.constexpr, row0, head0, rows, qk_scale,
    G: tl.constexpr, BLOCK_Q: tl.constexpr, D_PAD: tl.constexpr, F_PAD: tl.constexpr,
    NKV_P: tl.constexpr, TILE_K: tl.constexpr, HAS_BIAS: tl.constexpr,
    DOT_PREC: tl.constexpr, ACCUM_DX: tl.constexpr,
):
    """Persistent: each program walks a stride of pixels (largest first). Rows stay in their natural
    (BLOCK_Q × D_PAD) layout, as in the forward; with two kv heads per launch (NKV_P = 2) the per-head projections
    are row-masked products, and the token-side products (scores, dx, dq̃, Σp·x) run once for both heads, so X is
    read and dX written once. Each pixel's dq̃ and a = Σ p·x (BLOCK_Q × F_PAD, the products' 16-bit operands) go
    to DQT and AC at its schedule slot; ``_pa_wgrad_kernel`` turns them into the weight gradients."""
    INV_LOG2E: tl.constexpr = 0.6931471805599453
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    cdt = X.dtype.element_ty
    sdt = tl.float16 if cdt == tl.bfloat16 else cdt  # as in the forward, so p matches its lse
    scale = qk_scale * INV_LOG2E

    ri = tl.arange(0, BLOCK_Q)
    cj = tl.arange(0, D_PAD)
    fj = tl.arange(0, F_PAD)
    row_ok = ri < rows
    first = (ri // G) == 0
    c_ok = cj < d
    f_ok = fj < F
    w_mask = c_ok[:, None] & f_ok[None, :]
    q_loc = (row0 + ri)[:, None] * d + cj[None, :]  # int32
    q_mask = row_ok[:, None] & c_ok[None, :]
    wk0 = _head_w(WK, head0, d, F, cj, fj, w_mask, sdt)
    wv0 = _head_w(WV, head0, d, F, cj, fj, w_mask, cdt)
    brow = tl.zeros([BLOCK_Q, D_PAD], tl.float32)
    if HAS_BIAS:
        brow += tl.load(BV + head0 * d + cj, mask=c_ok, other=0.0).to(tl.float32)[None, :]
    if NKV_P == 2:
        wk1 = _head_w(WK, head0 + 1, d, F, cj, fj, w_mask, sdt)
        wv1 = _head_w(WV, head0 + 1, d, F, cj, fj, w_mask, cdt)
        if HAS_BIAS:
            b1 = tl.load(BV + (head0 + 1) * d + cj, mask=c_ok, other=0.0).to(tl.float32)
            brow = tl.where(first[:, None], brow, b1[None, :])
    s_loc = ri[:, None] * F_PAD + fj[None, :]  # a (BLOCK_Q × F_PAD) scratch tile
    tk = tl.arange(0, TILE_K)

    n_work = tl.load(ORDER + n_pix)  # as in the forward: the empty pixels after n_work get dQ = 0 only
    for it in range(n_work + pid, n_pix, nprog):
        pix = tl.load(ORDER + it).to(tl.int64)
        tl.store(DQ + pix * n_q * d + q_loc, tl.zeros([BLOCK_Q, D_PAD], DQ.dtype.element_ty), mask=q_mask)
    for it in range(pid, n_work, nprog):
        pix = tl.load(ORDER + it).to(tl.int64)
        start = tl.load(CU + pix).to(tl.int64)
        n = tl.load(CU + pix + 1) - start.to(tl.int32)
        nonempty = (tl.zeros([BLOCK_Q], tl.int32) + n) > 0
        pq = pix * n_q * d  # int64 base; q_loc is an int32 tile
        ld = q_mask & nonempty[:, None]
        qv = tl.load(Q + pq + q_loc, mask=ld, other=0.0).to(cdt)
        dov = tl.load(DOUT + pq + q_loc, mask=ld, other=0.0).to(cdt)
        ov = tl.load(OUT + pq + q_loc, mask=ld, other=0.0).to(tl.float32)
        lse = tl.load(LSE + pix * n_q + row0 + ri, mask=row_ok & nonempty, other=0.0)
        if NKV_P == 2:
            q0, q1 = _by_head(qv, first, cdt)
            do0, do1 = _by_head(dov, first, cdt)
            qt = (_mm(q0.to(sdt), wk0, DOT_PREC) + _mm(q1.to(sdt), wk1, DOT_PREC)) * qk_scale
            da32 = _mm(do0, wv0, DOT_PREC) + _mm(do1, wv1, DOT_PREC)
        else:
            qt = _mm(qv.to(sdt), wk0, DOT_PREC) * qk_scale
            da32 = _mm(dov, wv0, DOT_PREC)
        qs = qt.to(sdt)
        da = da32.to(cdt)
        # dp = da·x runs on fp16 operands with da scaled per row to max|da| = 1 (no underflow); the row
        # scale is folded into delta, q̃ and the final dq̃, so the inner loop pays nothing for it
        sc = tl.max(tl.abs(da32), 1)
        sc = tl.where(sc > 0.0, sc, 1.0)
        da_s = (da32 / sc[:, None]).to(sdt)
        delta = tl.sum(tl.where(ld, dov.to(tl.float32) * (ov - brow), 0.0), 1) / sc
        qc = (qt * sc[:, None]).to(cdt)

        dq_acc = tl.zeros([BLOCK_Q, F_PAD], tl.float32)
        a_acc = tl.zeros([BLOCK_Q, F_PAD], tl.float32)
        X_p = X + start * F
        DX_p = DX + start * F
        for k0 in range(0, n, TILE_K):
            kk = k0 + tk
            kmask = kk < n
            x_off = kk[:, None] * F + fj[None, :]
            xm = kmask[:, None] & f_ok[None, :]
            x = tl.load(X_p + x_off, mask=xm, other=0.0)
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
                dx += tl.load(DX_p + x_off, mask=xm, other=0.0).to(tl.float32)
            tl.store(DX_p + x_off, dx.to(DX.dtype.element_ty), mask=xm)
            # Σ_j ds_j = 0, so dq̃ = Σ_j ds_j x_j cancels: fp16 operands (ds is row-scaled to O(1))
            dq_acc += _mm(ds.to(sdt), xs, DOT_PREC)
            a_acc += _mm(pc, x, DOT_PREC)

        dqt = (dq_acc * (sc * scale)[:, None]).to(cdt)
        dqs = (dq_acc * scale).to(sdt)
        ac = a_acc.to(cdt)
        slot = tl.cast(it, tl.int64) * (BLOCK_Q * F_PAD)
        tl.store(DQT + slot + s_loc, dqt)
        tl.store(AC + slot + s_loc, ac)
        if NKV_P == 2:
            dqf = tl.where(first[:, None], _mm(dqs, tl.trans(wk0), DOT_PREC), _mm(dqs, tl.trans(wk1), DOT_PREC))
        else:
            dqf = _mm(dqs, tl.trans(wk0), DOT_PREC)
        tl.store(DQ + pq + q_loc, (dqf * sc[:, None]).to(DQ.dtype.element_ty), mask=q_mask)


@triton.jit
def _pa_wgrad_kernel(
    Q, DOUT, ORDER, DQT, AC, PART,
    n_pix, n_q: tl.constexpr, d: tl.constexpr, row0, G: tl.constexpr, BLOCK_Q: tl.constexpr,
    D_PAD: tl.constexpr, F_PAD: tl.constexpr, NKV_P: tl.constexpr, R_PAD: tl.constexpr, DOT_PREC: tl.constexpr,
):
    """The weight gradients of one backward launch from the per-pixel dq̃ and a of ``_pa_bwd_kernel``:

        dW_k,h = Σ_p Σ_{r∈h} q_r ⊗ dq̃_r      dW_v,h = Σ_p Σ_{r∈h} dO_r ⊗ a_r      db_v,h = Σ_p Σ_{r∈h} dO_r

    Persistent over the schedule slots [0, n_work); each kv head's rows are their own (R_PAD × ·) tiles, so no
    product runs on masked rows, and the sums stay in registers until one store into the program's slice of PART
    (head-major dW_k (NKV_P·D_PAD × F_PAD), dW_v, db_v (NKV_P·D_PAD)): every slice is written whole, by one
    program, in a fixed order, so the host's sum of the slices is reproducible."""
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    cdt = DQT.dtype.element_ty
    rr = tl.arange(0, R_PAD)
    cj = tl.arange(0, D_PAD)
    fj = tl.arange(0, F_PAD)
    r_ok = rr < G
    q_mask = r_ok[:, None] & (cj < d)[None, :]
    KP: tl.constexpr = NKV_P * D_PAD
    base = PART + pid.to(tl.int64) * (2 * KP * F_PAD + KP)
    mat = cj[:, None] * F_PAD + fj[None, :]
    n_work = tl.load(ORDER + n_pix)
    for h in tl.static_range(NKV_P):
        q_loc = (row0 + h * G + rr)[:, None] * d + cj[None, :]
        s_loc = (h * G + rr)[:, None] * F_PAD + fj[None, :]
        acc_k = tl.zeros([D_PAD, F_PAD], tl.float32)
        acc_v = tl.zeros([D_PAD, F_PAD], tl.float32)
        acc_b = tl.zeros([R_PAD, D_PAD], tl.float32)  # summed over rows once, after the loop
        for it in range(pid, n_work, nprog):
            pq = tl.load(ORDER + it).to(tl.int64) * (n_q * d)
            slot = tl.cast(it, tl.int64) * (BLOCK_Q * F_PAD)
            q = tl.load(Q + pq + q_loc, mask=q_mask, other=0.0).to(cdt)
            do = tl.load(DOUT + pq + q_loc, mask=q_mask, other=0.0).to(cdt)
            dqt = tl.load(DQT + slot + s_loc, mask=r_ok[:, None], other=0.0)
            ac = tl.load(AC + slot + s_loc, mask=r_ok[:, None], other=0.0)
            acc_k += _mm(tl.trans(q), dqt, DOT_PREC)
            acc_v += _mm(tl.trans(do), ac, DOT_PREC)
            acc_b += do.to(tl.float32)
        tl.store(base + h * D_PAD * F_PAD + mat, acc_k)
        tl.store(base + KP * F_PAD + h * D_PAD * F_PAD + mat, acc_v)
        tl.store(base + 2 * KP * F_PAD + h * D_PAD + cj, tl.sum(acc_b, 0))
