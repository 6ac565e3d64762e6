"""Triton backward kernel of the FiLM observation tokenizer (maths in ``film.py``; the forward is replayed).

The conditioning row is seen as two tiles: the metadata (BLOCK_M × M_PAD) and the three embedding rows side by
side (BLOCK_M × EMB_PAD), gathered with int32 offsets from the tables concatenated on the host
([E_type | E_chan | E_plat] flattened; ``O2``/``O3`` start the second and third). W2's two halves form one
(2·F_PAD × H_PAD) tile whose row r is W2 row r (α side, r < F_PAD) or F + r − F_PAD (β side), so every F is
correct, and the output gradient takes the same layout, [g·obs | g]. Per row tile that is 7 products (h from
two, dact, ΣdW2, ΣdW1 from two, the embedding gradient) where one product per segment took 15, and the
embedding gradients leave in one atomic add into the concatenated gradient buffer (or, with ``DEMB_ROWS``,
one (N × E1+E2+E3) per-row store reduced on the host). Tiles used only as product operands are kept in
16-bit on the GPU.

The four column sums (db1, dγ, dβ, db2) are products with a (16 × rows) operand whose first row is ones, on the
tensor cores with 16-bit operands like the other weight gradients, instead of reductions across the tile's
threads (shuffles, shared memory, barriers), which take more instructions than the products.

The kernel is persistent. Each program adds its weight gradients of every row tile into its own slice of
``PART`` (zeroed by the host) with relaxed atomic adds: dW1 metadata (H_PAD × M_PAD), dW1 embeddings
(H_PAD × EMB_PAD), db1, dγ, dβ (H_PAD each), dW2 (2·F_PAD × H_PAD), db2 (2·F_PAD); the host adds the slices.
Sums kept in registers across tiles would fill the register file that the row work needs (docs/design.md).
Every slice element is added by one thread, in program order (same-location atomics of one thread are coherence-ordered), so the sums are reproducible (a GPU
test checks it bitwise).
"""

from __future__ import annotations

import triton
import triton.language as tl

from healda_core.kernels.film import _mm, _seg_t, _sigmoid, _wcast


@triton.jit
def _emb_offsets(idt, idc, idp, E1, E2, E3, O2, O3, EMB_PAD: tl.constexpr):
    """int32 offsets of each row's [E_t[idt] | E_c[idc] | E_p[idp]] in the concatenated tables."""
    e = tl.arange(0, EMB_PAD)
    ot = idt[:, None] * E1 + e[None, :]
    oc = O2 + idc[:, None] * E2 + (e - E1)[None, :]
    op = O3 + idp[:, None] * E3 + (e - E1 - E2)[None, :]
    return tl.where((e < E1)[None, :], ot, tl.where((e < E1 + E2)[None, :], oc, op))


@triton.jit
def _load_rows(r0, rloc, rmask, META, IDT, IDC, IDP, EMB, M, E1, E2, E3, O2, O3,
               M_PAD: tl.constexpr, EMB_PAD: tl.constexpr, HAS_PLAT: tl.constexpr):
    """(meta (BLOCK_M × M_PAD), emb (BLOCK_M × EMB_PAD)) fp32 and the embedding offsets, for rows r0 + rloc."""
    cm = tl.arange(0, M_PAD)
    e = tl.arange(0, EMB_PAD)
    meta = tl.load(META + r0 * M + rloc[:, None] * M + cm[None, :], mask=rmask[:, None] & (cm < M)[None, :],
                   other=0.0).to(tl.float32)
    idt = tl.load(IDT + r0 + rloc, mask=rmask, other=0).to(tl.int32)
    idc = tl.load(IDC + r0 + rloc, mask=rmask, other=0).to(tl.int32)
    if HAS_PLAT:
        idp = tl.load(IDP + r0 + rloc, mask=rmask, other=0).to(tl.int32)
    else:
        idp = idt * 0
    off = _emb_offsets(idt, idc, idp, E1, E2, E3, O2, O3, EMB_PAD)
    emb = tl.load(EMB + off, mask=rmask[:, None] & (e < E1 + E2 + E3)[None, :], other=0.0).to(tl.float32)
    return meta, emb, off


@triton.jit
def _hidden(meta, emb, w1m_t, w1e_t, B1, LNW, LNB, H, eps, H_PAD: tl.constexpr, PREC: tl.constexpr):
    """h = meta·W1_mᵀ + emb·W1_eᵀ + b1, LayerNorm (fp32 statistics): (xhat, rstd, y, sigmoid(y), γ)."""
    j = tl.arange(0, H_PAD)
    h_ok = j < H
    b1 = tl.load(B1 + j, mask=h_ok, other=0.0).to(tl.float32)
    gam = tl.load(LNW + j, mask=h_ok, other=0.0).to(tl.float32)
    bet = tl.load(LNB + j, mask=h_ok, other=0.0).to(tl.float32)
    h = _mm(meta, w1m_t, PREC) + _mm(emb, w1e_t, PREC) + b1[None, :]
    mean = tl.sum(h, 1) / H  # padded columns of h are exactly 0
    xc = tl.where(h_ok[None, :], h - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, 1) / H + eps)
    xhat = xc * rstd[:, None]
    y = xhat * gam[None, :] + bet[None, :]
    return xhat, rstd, y, _sigmoid(y), gam


@triton.jit
def _w2_tile(W2, F, H, F_PAD: tl.constexpr, H_PAD: tl.constexpr):
    """W2 (2F × H) as a (2·F_PAD × H_PAD) fp32 tile: row r < F_PAD is W2 row r, row F_PAD + f is F + f."""
    r = tl.arange(0, 2 * F_PAD)
    j = tl.arange(0, H_PAD)
    f = r % F_PAD
    src = tl.where(r < F_PAD, f, F + f)
    return tl.load(W2 + src[:, None] * H + j[None, :], mask=(f < F)[:, None] & (j < H)[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _add_colsum(ptr, x, e0, PREC: tl.constexpr):
    """Atomically add the column sums of ``x`` (rows × W) at ``ptr`` + column: a product with ``e0`` (16 × rows, ones
    in row 0) on the tensor cores instead of a cross-thread reduction; only row 0 of the (16 × W) result is added."""
    r = tl.arange(0, 16)
    c = tl.arange(0, x.shape[1])
    tot = _mm(e0, x.to(e0.dtype), PREC)
    tl.atomic_add(ptr + c[None, :] + r[:, None] * 0, tot, mask=(r == 0)[:, None], sem="relaxed")


@triton.jit
def _film_bwd_kernel(
    OBS, META, IDT, IDC, IDP, EMB, W1, B1, LNW, LNB, W2, B2, DOUT, GEMB, DOBS, DMETA, PART,
    N, M: tl.constexpr, E1: tl.constexpr, E2: tl.constexpr, E3: tl.constexpr, O2, O3, H: tl.constexpr,
    F: tl.constexpr, eps,
    M_PAD: tl.constexpr, EMB_PAD: tl.constexpr, H_PAD: tl.constexpr, F_PAD: tl.constexpr,
    HAS_PLAT: tl.constexpr, BLOCK_M: tl.constexpr, PREC: tl.constexpr,
    DEMB_ROWS: tl.constexpr, NEED_DOBS: tl.constexpr, NEED_DMETA: tl.constexpr,
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    n_tiles = tl.cdiv(N, BLOCK_M)
    cond_dim = M + E1 + E2 + E3
    j = tl.arange(0, H_PAD)
    h_ok = j < H
    cm = tl.arange(0, M_PAD)
    e = tl.arange(0, EMB_PAD)
    ew = E1 + E2 + E3
    r2 = tl.arange(0, 2 * F_PAD)
    f2 = r2 % F_PAD
    alpha_side = r2 < F_PAD
    w1m_t = _wcast(_seg_t(W1, cond_dim, 0, M, H, M_PAD, H_PAD), PREC)
    w1e_t = _wcast(_seg_t(W1, cond_dim, M, ew, H, EMB_PAD, H_PAD), PREC)
    w1e = tl.trans(w1e_t)
    w2 = _wcast(_w2_tile(W2, F, H, F_PAD, H_PAD), PREC)
    b2 = tl.load(B2 + tl.where(alpha_side, f2, F + f2), mask=f2 < F, other=0.0).to(tl.float32)

    base = PART + pid.to(tl.int64) * (H_PAD * (M_PAD + EMB_PAD + 3) + 2 * F_PAD * (H_PAD + 1))
    o_w1e = H_PAD * M_PAD
    o_vec = o_w1e + H_PAD * EMB_PAD
    o_w2 = o_vec + 3 * H_PAD
    o_b2 = o_w2 + 2 * F_PAD * H_PAD
    rloc = tl.arange(0, BLOCK_M)
    e0 = _wcast(tl.where((tl.arange(0, 16) == 0)[:, None], 1.0, tl.zeros([16, BLOCK_M], tl.float32)), PREC)
    for tile in range(pid, n_tiles, nprog):
        r0 = tl.cast(tile, tl.int64) * BLOCK_M
        rmask = r0 + rloc < N
        meta, emb, off = _load_rows(r0, rloc, rmask, META, IDT, IDC, IDP, EMB, M, E1, E2, E3, O2, O3, M_PAD,
                                    EMB_PAD, HAS_PLAT)
        meta, emb = _wcast(meta, PREC), _wcast(emb, PREC)  # only product operands from here: 16-bit on the GPU
        xhat, rstd, y, sig, gam = _hidden(meta, emb, w1m_t, w1e_t, B1, LNW, LNB, H, eps, H_PAD, PREC)
        act = _wcast(y * sig, PREC)
        dsilu = sig * (1.0 + y * (1.0 - sig))
        obs = tl.load(OBS + r0 + rloc, mask=rmask, other=0.0).to(tl.float32)
        graw = tl.load(DOUT + r0 * F + rloc[:, None] * F + f2[None, :], mask=rmask[:, None] & (f2 < F)[None, :],
                       other=0.0).to(tl.float32)
        g2 = graw * tl.where(alpha_side[None, :], obs[:, None], 1.0)  # [g·obs | g]
        if NEED_DOBS:
            ab = _mm(act, tl.trans(w2), PREC) + b2[None, :]
            tl.store(DOBS + r0 + rloc, tl.sum(tl.where(alpha_side[None, :], graw * ab, 0.0), 1), mask=rmask)
        tl.atomic_add(base + o_w2 + r2[:, None] * H_PAD + j[None, :], _mm(tl.trans(g2), act, PREC), sem="relaxed")
        _add_colsum(base + o_b2, g2, e0, PREC)
        g2 = _wcast(g2, PREC)
        dy = _mm(g2, w2, PREC) * dsilu
        _add_colsum(base + o_vec + H_PAD, dy * xhat, e0, PREC)
        _add_colsum(base + o_vec + 2 * H_PAD, dy, e0, PREC)
        dxh = dy * gam[None, :]
        k1 = tl.sum(dxh, 1) / H
        k2 = tl.sum(dxh * xhat, 1) / H
        dh = rstd[:, None] * (dxh - k1[:, None] - xhat * k2[:, None])
        dh = tl.where(h_ok[None, :] & rmask[:, None], dh, 0.0)
        _add_colsum(base + o_vec, dh, e0, PREC)
        dh = _wcast(dh, PREC)
        dht = tl.trans(dh)
        tl.atomic_add(base + j[:, None] * M_PAD + cm[None, :], _mm(dht, meta, PREC), sem="relaxed")
        tl.atomic_add(base + o_w1e + j[:, None] * EMB_PAD + e[None, :], _mm(dht, emb, PREC), sem="relaxed")
        if NEED_DMETA:
            dm = _mm(dh, tl.trans(w1m_t), PREC)
            tl.store(DMETA + r0 * M + rloc[:, None] * M + cm[None, :], dm, mask=rmask[:, None] & (cm < M)[None, :])
        demb = _mm(dh, w1e, PREC)
        ok = rmask[:, None] & (e < ew)[None, :]
        if DEMB_ROWS:  # per-row gradients (N × E1+E2+E3), reduced on the host
            tl.store(GEMB + r0 * ew + rloc[:, None] * ew + e[None, :], demb, mask=ok)
        else:
            tl.atomic_add(GEMB + off, demb, mask=ok, sem="relaxed")

