"""Fused temporal attention for inference: ``qkv`` (B, T, X, 3·D) → (B, T, X, D) in one pass.

The PyTorch path (``healda_core.model.attention._temporal_core``) runs RoPE, the (T × T) scores per pixel
and head and the weighted sum as separate kernels with T = 8: small batched GEMMs and copies that move the
(B, T, X, D) tensors several times. Here one program reads the q, k and v of one pixel and ``HB`` heads for
all T frames straight from the qkv projection's output, and writes the result once, so the op costs one read
of qkv and one write of the output.

Per (pixel, head), with interleaved RoPE pairs (e, o) = channels (2i, 2i+1):

    q'_e = q_e·cos_e − q_o·sin_e     q'_o = q_o·cos_o + q_e·sin_o      (same for k)
    s_qk = scale · Σ_i (q'_e·k'_e + q'_o·k'_o)        masked to the allowed (causal / window) pairs
    linear:  w = s (masked → 0)       softmax:  w = softmax_k(s) (masked → −inf)
    o_q  = Σ_k w_qk · v_k

fp32 arithmetic throughout (the PyTorch path rounds q, k and the scores to bf16 under autocast); forward only (training takes the PyTorch path, whose autograd it needs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _temporal_fwd_kernel(
    QKV, COS, SIN, OUT, X, H, hd, scale, window,
    T: tl.constexpr, T_PAD: tl.constexpr, HB: tl.constexpr, P_PAD: tl.constexpr, ROPE: tl.constexpr,
    CAUSAL: tl.constexpr, WINDOW: tl.constexpr, LINEAR: tl.constexpr,
):
    pid = tl.program_id(0)
    nhb = tl.cdiv(H, HB)
    hb = pid % nhb
    bx = (pid // nhb).to(tl.int64)
    b = bx // X
    x = bx % X
    d = H * hd
    t = tl.arange(0, T_PAD)
    h = hb * HB + tl.arange(0, HB)
    p = tl.arange(0, P_PAD)
    j = tl.arange(0, 2)
    # element (h, p, j) of one frame = channel c = 2p + j of head h
    c = 2 * p[:, None] + j[None, :]  # (P, 2)
    col = h[:, None, None] * hd + c[None, :, :]  # (HB, P, 2)
    cm = (h < H)[:, None, None] & (c < hd)[None, :, :]
    row = (b * T + t) * X + x  # (T_PAD,) rows of the (B·T·X) token axis
    qoff = row[:, None, None, None] * (3 * d) + col[None, :, :, :]
    qm = (t < T)[:, None, None, None] & cm[None, :, :, :]
    qe, qo = tl.split(tl.load(QKV + qoff, mask=qm, other=0.0).to(tl.float32))  # (T, HB, P) each
    if ROPE:
        toff = t[:, None, None] * hd + c[None, :, :]  # (T, P, 2)
        tm = (t < T)[:, None, None] & (c < hd)[None, :, :]
        ce, co = tl.split(tl.load(COS + toff, mask=tm, other=0.0).to(tl.float32))
        se, so = tl.split(tl.load(SIN + toff, mask=tm, other=0.0).to(tl.float32))
        qe, qo = qe * ce[:, None, :] - qo * se[:, None, :], qo * co[:, None, :] + qe * so[:, None, :]
    qe = qe * scale
    qo = qo * scale
    acc_e = tl.zeros([T_PAD, HB, P_PAD], tl.float32)
    acc_o = tl.zeros([T_PAD, HB, P_PAD], tl.float32)
    m_run = tl.full([T_PAD, HB], float("-inf"), tl.float32)
    l_run = tl.zeros([T_PAD, HB], tl.float32)
    for tk in tl.static_range(T):  # one key frame at a time: (T, HB) scores against every query frame
        koff = ((b * T + tk) * X + x) * (3 * d) + d + col
        ke, ko = tl.split(tl.load(QKV + koff, mask=cm, other=0.0).to(tl.float32))  # (HB, P)
        ve, vo = tl.split(tl.load(QKV + koff + d, mask=cm, other=0.0).to(tl.float32))
        if ROPE:
            kc = tk * hd + c
            ce_k, co_k = tl.split(tl.load(COS + kc, mask=c < hd, other=0.0).to(tl.float32))
            se_k, so_k = tl.split(tl.load(SIN + kc, mask=c < hd, other=0.0).to(tl.float32))
            ke, ko = ke * ce_k[None, :] - ko * se_k[None, :], ko * co_k[None, :] + ke * so_k[None, :]
        s = tl.sum(qe * ke[None, :, :], 2) + tl.sum(qo * ko[None, :, :], 2)  # (T, HB)
        ok = (tl.zeros([T_PAD, HB], tl.int32) + tk) < T  # key frames past T never occur (static range)
        if CAUSAL:
            ok = ok & (tk <= t[:, None])
        if WINDOW:
            ok = ok & (tk > t[:, None] - window)
        if LINEAR:
            w = tl.where(ok, s, 0.0)
            acc_e += w[:, :, None] * ve[None, :, :]
            acc_o += w[:, :, None] * vo[None, :, :]
        else:
            s = tl.where(ok, s, float("-inf"))
            m_new = tl.maximum(m_run, s)
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            alpha = tl.exp(m_run - m_safe)
            pw = tl.exp(s - m_safe)
            l_run = l_run * alpha + pw
            acc_e = acc_e * alpha[:, :, None] + pw[:, :, None] * ve[None, :, :]
            acc_o = acc_o * alpha[:, :, None] + pw[:, :, None] * vo[None, :, :]
            m_run = m_new
    if not LINEAR:
        inv = 1.0 / tl.where(l_run > 0.0, l_run, 1.0)
        acc_e = acc_e * inv[:, :, None]
        acc_o = acc_o * inv[:, :, None]
    o = tl.join(acc_e, acc_o)  # (T, HB, P, 2)
    ooff = row[:, None, None, None] * d + col[None, :, :, :]
    tl.store(OUT + ooff, o.to(OUT.dtype.element_ty), mask=qm)


def _pow2(n: int) -> int:
    return 1 << (max(1, n) - 1).bit_length()


@torch.library.custom_op("healda::temporal_attn_fwd", mutates_args=())
def temporal_attention(qkv: Tensor, cos: Tensor | None, sin: Tensor | None, num_heads: int, causal: bool,
                       window: int, linear: bool, scale: float) -> Tensor:
    """Temporal attention from the qkv projection (B, T, X, 3·D) (channels ``[q | k | v]``, head-major) to
    (B, T, X, D) in qkv's dtype. ``cos``/``sin`` (T, hd) or None (no RoPE); ``window`` > 0 keeps frames
    ``q−window+1 … q`` (with ``causal``)."""
    b, t, x, d3 = qkv.shape
    d = d3 // 3
    hd = d // num_heads
    qkv = qkv.contiguous()
    out = torch.empty((b, t, x, d), device=qkv.device, dtype=qkv.dtype)
    if out.numel() == 0:
        return out
    hb = min(4, _pow2(num_heads))
    rope = cos is not None and sin is not None
    cs = (cos.float().contiguous(), sin.float().contiguous()) if rope else (qkv, qkv)
    grid = (b * x * triton.cdiv(num_heads, hb),)
    _temporal_fwd_kernel[grid](qkv, cs[0], cs[1], out, x, num_heads, hd, float(scale), int(window),
                               T=t, T_PAD=_pow2(t), HB=hb, P_PAD=_pow2((hd + 1) // 2), ROPE=rope, CAUSAL=causal,
                               WINDOW=window > 0, LINEAR=linear, num_warps=4)
    return out


@temporal_attention.register_fake
def _(qkv, cos, sin, num_heads, causal, window, linear, scale):  # noqa: ANN001
    b, t, x, d3 = qkv.shape
    return qkv.new_empty((b, t, x, d3 // 3))
