"""Ragged grouped-query pixel cross-attention: the vectorised PyTorch path and the kernel dispatcher.

Each of P "pixels" attends only to its own slice of observation tokens
``tokens[cu_seqlens_k[p]:cu_seqlens_k[p+1]]``. Keys ``K = x·W_kᵀ`` and values ``V = x·W_vᵀ + b_v`` are
projected from the tokens; query head ``h`` uses kv head ``h // (n_q/n_kv)`` (contiguous groups).
Empty pixels give exactly 0.

The PyTorch path has no loop over pixels or heads: a segment softmax over tokens with
``scatter_reduce``/``index_add_``, processed in token chunks so transient memory is bounded, and a
custom autograd function that saves only the (N, n_q) probabilities (O(N·heads) memory; never
O(pixels × max_seqlen)). Arithmetic runs in at least float32 (float64 stays float64, for gradcheck).
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

_CHUNK_ELEMS = 1 << 23  # CPU: ~32 MB of fp32 per (chunk, heads, head_dim) transient (cache friendly)
_CHUNK_ELEMS_CUDA = 1 << 28  # GPU: ~1 GB transients, so 10M tokens take a few launches, not thousands


def _chunk_size(n_q: int, width: int, device: torch.device | None = None) -> int:
    elems = _CHUNK_ELEMS_CUDA if device is not None and device.type == "cuda" else _CHUNK_ELEMS
    return max(256, elems // max(1, n_q * width))


def segment_ids(cu_seqlens_k: Int[Tensor, " p1"], n_tokens: int) -> Int[Tensor, " n"]:
    """(N,) int64 pixel id of every token, from ``cu_seqlens_k`` (no host sync)."""
    counts = (cu_seqlens_k[1:] - cu_seqlens_k[:-1]).long()
    pix = torch.arange(counts.shape[0], device=cu_seqlens_k.device)
    return torch.repeat_interleave(pix, counts, output_size=n_tokens)


def _chunks(n: int, size: int):
    for a in range(0, n, size):
        yield a, min(n, a + size)


class _RaggedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, tokens, w_k, w_v, b_v, cu_seqlens_k, scale):
        out_dtype = q.dtype
        ct = torch.promote_types(q.dtype, torch.float32)
        q_, x_, wk, wv = (t.to(ct) for t in (q, tokens, w_k, w_v))
        bv = b_v.to(ct) if b_v is not None else None
        p_count, n_q, d = q_.shape
        n = x_.shape[0]
        n_kv = wk.shape[0] // d
        g = n_q // n_kv
        seg = segment_ids(cu_seqlens_k, n)
        size = _chunk_size(n_q, d, q.device)
        s = torch.empty(n, n_q, dtype=ct, device=q.device)
        for a, b in _chunks(n, size):
            k = (x_[a:b] @ wk.T).view(b - a, n_kv, d)
            qg = q_[seg[a:b]].view(b - a, n_kv, g, d)
            s[a:b] = torch.einsum("ckgd,ckd->ckg", qg, k).reshape(b - a, n_q) * scale
        idx = seg[:, None].expand(-1, n_q)
        m = torch.full((p_count, n_q), float("-inf"), dtype=ct, device=q.device)
        m = m.scatter_reduce(0, idx, s, reduce="amax", include_self=True)
        e = torch.exp(s - m[seg])
        denom = torch.zeros(p_count, n_q, dtype=ct, device=q.device).index_add_(0, seg, e)
        prob = e / denom[seg]
        out = torch.zeros(p_count, n_q, d, dtype=ct, device=q.device)
        for a, b in _chunks(n, size):
            v = _values(x_[a:b], wv, bv).view(b - a, n_kv, 1, d)
            contrib = (prob[a:b].view(b - a, n_kv, g, 1) * v).reshape(b - a, n_q, d)
            out.index_add_(0, seg[a:b], contrib)
        ctx.save_for_backward(q_, x_, wk, wv, bv if bv is not None else torch.empty(0), seg, prob, out)
        ctx.meta = (scale, b_v is not None, [t.dtype for t in (q, tokens, w_k, w_v)],
                    b_v.dtype if b_v is not None else None)
        return out.to(out_dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out):
        q_, x_, wk, wv, bv, seg, prob, out = ctx.saved_tensors
        scale, has_bias, dtypes, bias_dtype = ctx.meta
        bv = bv if has_bias else None
        d_out = d_out.to(q_.dtype)
        _, n_q, d = q_.shape
        n, n_kv = x_.shape[0], wk.shape[0] // d
        g, kdim = n_q // n_kv, wk.shape[0]
        delta = (d_out * out).sum(-1)  # (P, n_q) = Σ_j p·dp per pixel and head
        dq = torch.zeros_like(q_)
        dx = torch.empty_like(x_)
        dwk, dwv = torch.zeros_like(wk), torch.zeros_like(wv)
        dbv = torch.zeros(kdim, dtype=q_.dtype, device=q_.device)
        for a, b in _chunks(n, _chunk_size(n_q, d, q_.device)):
            c, sg, x = b - a, seg[a:b], x_[a:b]
            k = (x @ wk.T).view(c, n_kv, d)
            v = _values(x, wv, bv).view(c, n_kv, d)
            do = d_out[sg].view(c, n_kv, g, d)
            pc = prob[a:b].view(c, n_kv, g)
            dp = torch.einsum("ckgd,ckd->ckg", do, v)
            ds = pc * (dp - delta[sg].view(c, n_kv, g)) * scale
            dv = torch.einsum("ckg,ckgd->ckd", pc, do).reshape(c, kdim)
            dk = torch.einsum("ckg,ckgd->ckd", ds, q_[sg].view(c, n_kv, g, d)).reshape(c, kdim)
            dq.index_add_(0, sg, torch.einsum("ckg,ckd->ckgd", ds, k).reshape(c, n_q, d))
            dx[a:b] = dk @ wk + dv @ wv
            dwk += dk.T @ x
            dwv += dv.T @ x
            dbv += dv.sum(0)
        grads = [t.to(dt) for t, dt in zip((dq, dx, dwk, dwv), dtypes)]
        return (*grads, dbv.to(bias_dtype) if has_bias else None, None, None)


def _values(x: Tensor, wv: Tensor, bv: Tensor | None) -> Tensor:
    v = x @ wv.T
    return v + bv if bv is not None else v


def ragged_attention_torch(
    q: Float[Tensor, "p n_q d"],
    tokens: Float[Tensor, "n f"],
    w_k: Float[Tensor, "kd f"],
    w_v: Float[Tensor, "kd f"],
    b_v: Float[Tensor, " kd"] | None,
    cu_seqlens_k: Int[Tensor, " p1"],
    scale: float,
) -> Float[Tensor, "p n_q d"]:
    """Vectorised PyTorch ragged GQA cross-attention (differentiable in q, tokens, w_k, w_v, b_v).

    Args:
        q: (P, n_q, d) queries. tokens: (N, F) observation tokens sorted by pixel.
        w_k, w_v: (n_kv·d, F) key/value projections; b_v: (n_kv·d,) or None.
        cu_seqlens_k: (P+1,) int32 offsets. scale: logit scale (1/√d).

    Returns:
        (P, n_q, d) in q's dtype; rows of empty pixels are 0.
    """
    return _RaggedAttention.apply(q, tokens, w_k, w_v, b_v, cu_seqlens_k, scale)


def kernel_impl():
    """The Triton pixel attention when triton is installed, else None (:func:`~healda_core.kernels.kernel_op`;
    :meth:`VideoDiT.compile_blocks` resolves it before tracing)."""
    from healda_core.kernels import kernel_op

    return kernel_op("pixel_attn_op", "pixel_attention")


def pixel_attention(
    q: Float[Tensor, "p n_q d"],
    tokens: Float[Tensor, "n f"],
    w_k: Float[Tensor, "kd f"],
    w_v: Float[Tensor, "kd f"],
    b_v: Float[Tensor, " kd"] | None,
    cu_seqlens_k: Int[Tensor, " p1"],
    max_seqlen_k: int,
    scale: float,
    group_map=None,
) -> Float[Tensor, "p n_q d"]:
    """Dispatch: Triton kernel on CUDA (unless ``HEALDA_KERNELS=off``), else :func:`ragged_attention_torch`."""
    from healda_core.kernels import kernels_enabled

    if kernels_enabled(q.device):
        impl = kernel_impl()
        if impl is not None:
            return impl(q, tokens, w_k, w_v, b_v, cu_seqlens_k, max_seqlen_k, scale, group_map)
    return ragged_attention_torch(q, tokens, w_k, w_v, b_v, cu_seqlens_k, scale)
