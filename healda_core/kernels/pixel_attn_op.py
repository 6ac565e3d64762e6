"""``healda::ragged_pixel_attn_fwd`` / ``healda::ragged_pixel_attn_bwd``: torch.library ops around the Triton kernels.

:func:`pixel_attention` has the signature of ``healda_core.model.ragged.pixel_attention`` and returns
(P, n_q, d) in q's dtype with 0 for empty pixels; it is differentiable in q, tokens, w_k, w_v and b_v,
works under ``torch.compile`` (fake implementations) and is checked with ``torch.library.opcheck``.
Eager calls skip the op dispatcher (its wrappers cost as much host time as the rest of the call): inference
runs the implementation directly, training through ``_EagerPixelAttn`` (bitwise the ops' results and
gradients); anything that traces (``torch.compile``, ``make_fx``) gets the ops.

Compute precision: bf16/fp16 when q is bf16/fp16 (fp32 accumulation, fp32 softmax statistics), else
fp32 inputs to the dot products (TF32 on GPU). Weight gradients are returned in the weights' dtypes.

Scheduling: pixels are processed largest first (a stable argsort of the counts, computed once per
forward and reused by the backward), which shortens the tail on skewed count distributions. The group
map is accepted for API compatibility and not needed: results do not depend on it.
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass

import torch
from torch import Tensor

from healda_core.kernels import eager_call, needs_grad
from healda_core.kernels import pixel_attn as K
from healda_core.kernels.launch import launch
from healda_core.kernels.tuning import Tuner, bucket, num_sms

MAX_BLOCK_Q = 128
MAX_PAD = 128
MAX_KV_PER_LAUNCH = 2  # the forward kernel handles one or two kv heads per program
WGRAD_PROGS_PER_SM = 4  # programs per SM of the weight-gradient kernel (4 warps, ~100 registers: all resident)


def _pow2(n: int) -> int:
    return max(16, 1 << (max(1, n) - 1).bit_length())


@dataclass(frozen=True)
class HeadPlan:
    """How query/kv heads are split into kernel phases (one launch each; usually one phase)."""

    n_q: int
    n_kv: int
    d: int
    f: int
    g: int  # query heads per kv head
    nkv_p: int  # kv heads per phase
    block_q: int
    d_pad: int
    f_pad: int

    @property
    def phases(self) -> int:
        return self.n_kv // self.nkv_p

    @property
    def rows(self) -> int:
        return self.g * self.nkv_p

    @property
    def kp(self) -> int:
        """Width of the block-diagonal head tile (NKV_P·D_PAD rounded up to a power of two)."""
        return _pow2(self.nkv_p * self.d_pad)


def plan_heads(n_q: int, n_kv: int, d: int, f: int, rows_cap: int | None = None) -> HeadPlan:
    """Validate a head layout and choose the phase split (memoised in eager mode; see :func:`_plan_heads`)."""
    args = (n_q, n_kv, d, f, rows_cap)
    return (_plan_cached if _memoisable(*args) else _plan_heads)(*args)


def _memoisable(*vals) -> bool:
    """True when ``vals`` (ints, None, shapes) may key an ``lru_cache``: not while Dynamo traces (it warns about
    the cache wrapper) and no SymInts (fake/symbolic tracing, e.g. ``opcheck``, passes them outside Dynamo)."""
    if torch.compiler.is_compiling():
        return False
    return all(v is None or type(v) is int or (isinstance(v, tuple) and all(type(e) is int for e in v))
               for v in vals)


def _plan_heads(n_q: int, n_kv: int, d: int, f: int, rows_cap: int | None = None) -> HeadPlan:
    """Validate a head layout and choose the phase split. Raises ValueError for unsupported layouts.

    Any n_kv dividing n_q works, with any d and F up to 128 and q_per_kv up to 128 (smaller sizes and
    non-powers of two are padded with masks). ``rows_cap`` (default ``MAX_BLOCK_Q``) bounds the query rows
    of one program; kv heads beyond it, or beyond ``MAX_KV_PER_LAUNCH``, go to further phases (launches).
    """
    if min(n_q, n_kv, d, f) <= 0:
        raise ValueError(f"pixel attention needs positive sizes, got n_q={n_q}, n_kv={n_kv}, d={d}, F={f}")
    if n_q % n_kv:
        raise ValueError(f"n_q_heads ({n_q}) must be divisible by n_kv_heads ({n_kv})")
    g = n_q // n_kv
    if g > MAX_BLOCK_Q:
        raise ValueError(f"q_per_kv = {g} > {MAX_BLOCK_Q} is not supported by the pixel-attention kernel")
    d_pad, f_pad = _pow2(d), _pow2(f)
    if d_pad > MAX_PAD or f_pad > MAX_PAD:
        raise ValueError(f"d_head ({d}) and token_dim ({f}) must be <= {MAX_PAD} for the pixel-attention kernel")
    cap = max(g, min(MAX_BLOCK_Q, rows_cap or MAX_BLOCK_Q))
    nkv_p = 1
    for c in range(n_kv, 0, -1):
        if n_kv % c == 0 and c <= MAX_KV_PER_LAUNCH and g * c <= cap and _pow2(c * d_pad) <= MAX_PAD:
            nkv_p = c
            break
    return HeadPlan(n_q, n_kv, d, f, g, nkv_p, _pow2(g * nkv_p), d_pad, f_pad)


_plan_cached = functools.lru_cache(maxsize=256)(_plan_heads)

# Pixel order of the persistent walk: "sorted" (largest first, empty pixels last) or "natural" (pixel order;
# tests check that the order does not change results)
SCHEDULE = "sorted"


# Defaults = the fastest launch settings measured on an H200 at 10 M tokens: forward 4 warps, TILE_K 64, 3 stages,
# 16 programs per SM; backward 2 warps, TILE_K 32, 3 stages, 32 programs per SM, both kv heads in one pass over
# the tokens (KV=2). The backward is pinned to 2 warps: at 4 warps, TILE_K 64 and KV=2 the H200 gave a wrong dW_v
# (docs/design.md, "Launch settings and the compiler fault").
# PROGS_PER_SM = 0 launches one program per pixel; n > 0 a persistent grid of n programs per SM.
FWD = Tuner("pixel_attn_fwd",
            [dict(TILE_K=tk, num_warps=w, num_stages=s, PROGS_PER_SM=pp) for tk, w, s, pp in
             [(64, 4, 3, 8), (64, 4, 3, 16), (32, 4, 3, 16), (64, 2, 3, 16), (32, 2, 3, 32), (64, 2, 2, 16)]],
            dict(TILE_K=64, num_warps=4, num_stages=3, PROGS_PER_SM=16))
BWD = Tuner("pixel_attn_bwd",
            [dict(TILE_K=tk, num_warps=w, num_stages=s, PROGS_PER_SM=pp, KV=kv) for tk, w, s, pp, kv in
             [(32, 2, 3, 32, 2), (32, 2, 3, 16, 2), (32, 2, 2, 16, 2), (32, 2, 3, 32, 1), (32, 2, 3, 16, 1)]],
            dict(TILE_K=32, num_warps=2, num_stages=3, PROGS_PER_SM=32, KV=2), force=dict(num_warps=2))


def _compute_dtype(q: Tensor) -> torch.dtype:
    return q.dtype if q.dtype in (torch.bfloat16, torch.float16) else torch.float32


def _dot_prec(cd: torch.dtype, device: torch.device) -> str:
    if device.type != "cuda":  # CPU interpreter: exact fp32 products
        return "upcast" if cd != torch.float32 else "ieee"
    return "ieee"  # exact fp32 products for fp32 inputs (TF32 would miss the fp32 tolerance); 16-bit operands as given


def _key(kind: str, plan: HeadPlan, cd: torch.dtype, n: int, p: int) -> tuple:
    return (kind, str(cd).removeprefix("torch."), plan.n_q, plan.n_kv, plan.d, plan.f, bucket(n / max(p, 1)),
            bucket(p))


_LAST_SCHEDULE: list = []  # [(weakref to cu, cu._version, order, segments)]: the model's 32 layers share one cu


def _schedule_segments(cu: Tensor) -> tuple[Tensor, Tensor]:
    """(order, segments): the pixel order, largest count first (stable), followed by the number of non-empty
    pixels (P + 1,), and (start, count) int32 pairs in that order (2P,). Reused while the same ``cu`` tensor
    object is alive and unmodified (same content, same order): the blocks of one forward share it, so only the
    first sorts. A ``cu`` made under ``torch.inference_mode`` has no version counter: its schedule is recomputed
    on every call."""
    if SCHEDULE == "natural":
        order = _with_count(torch.arange(cu.shape[0] - 1, device=cu.device, dtype=torch.int32), None)
        return order, _segments(cu, order)
    tracked = not cu.is_inference()  # inference tensors have no version counter: never reused
    if tracked and _LAST_SCHEDULE:
        ref, version, order, seg = _LAST_SCHEDULE[0]
        if ref() is cu and cu._version == version:
            return order, seg
    counts = cu[1:] - cu[:-1]
    order = _with_count(torch.argsort(counts, descending=True, stable=True).to(torch.int32), counts)
    seg = _segments(cu, order)
    if tracked:
        _LAST_SCHEDULE[:] = [(weakref.ref(cu), cu._version, order, seg)]
    return order, seg


def _segments(cu: Tensor, order: Tensor) -> Tensor:
    """(start, count) int32 pairs in schedule order (2P,); ``order`` is (P + 1,) with the work count last."""
    o = order[:-1].long()
    return torch.stack([cu[o], cu[o + 1] - cu[o]], dim=1).to(torch.int32).reshape(-1)


def _with_count(order: Tensor, counts: Tensor | None) -> Tensor:
    """``order`` (P,) followed by the number of leading slots the kernels attend over: the non-empty pixels when
    ``counts`` is given (largest-first puts them first), else every slot (the empty ones are zero-filled)."""
    n = (counts > 0).sum(dtype=torch.int32).reshape(1) if counts is not None else \
        torch.full((1,), order.shape[0], dtype=torch.int32, device=order.device)
    return torch.cat([order, n])


def _fwd_launch(cfg: dict, plan: HeadPlan, q, x, wk, wv, bv, seg, order, out, lse, scale):
    """``lse`` None: inference, the softmax statistics are not written."""
    p = q.shape[0]
    if p == 0:
        return
    prec = _dot_prec(x.dtype, q.device)
    pp = cfg.get("PROGS_PER_SM", 0)
    grid = min(p, num_sms(q.device) * pp) if pp > 0 else p
    for ph in range(plan.phases):
        launch(
            K._pa_fwd_kernel, (grid,),
            q, x, wk, wv, bv if bv is not None else wk, seg, order, out, lse if lse is not None else out,
            p, plan.n_q, plan.d, plan.f, ph * plan.rows, ph * plan.nkv_p, plan.rows, scale * K.LOG2E,
            G=plan.g, BLOCK_Q=plan.block_q, D_PAD=plan.d_pad, F_PAD=plan.f_pad, NKV_P=plan.nkv_p,
            TILE_K=cfg["TILE_K"], HAS_BIAS=bv is not None, DOT_PREC=prec, WRITE_LSE=lse is not None,
            D_EXACT=plan.d == plan.d_pad, F_EXACT=plan.f == plan.f_pad,
            num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])


def _bwd_launch(cfg: dict, plan: HeadPlan, q, x, wk, wv, bv, cu, order, out, dout, lse, dq, dx, scale):
    """Runs every phase; returns the summed weight-gradient partials per phase (fp32). Each phase's backward
    writes every pixel's dq̃ and Σp·x into two (P, BLOCK_Q, F_PAD) scratch buffers (``x``'s dtype; 0.8 GB in
    bf16 at P = 98,304, n_q = 64, F = 32), from which ``_pa_wgrad_kernel`` sums the weight gradients."""
    p = q.shape[0]
    kp = plan.kp
    per = 2 * kp * plan.f_pad + kp
    sms = num_sms(q.device)
    grid = max(1, min(p, sms * cfg["PROGS_PER_SM"]))
    wgrid = max(1, min(p, sms * WGRAD_PROGS_PER_SM))
    prec = _dot_prec(x.dtype, q.device)
    dqt = torch.empty(p, plan.block_q, plan.f_pad, device=q.device, dtype=x.dtype)
    acc = torch.empty_like(dqt)
    parts = []
    for ph in range(plan.phases):
        # every slice is written whole by the weight-gradient kernel; with no pixels nothing runs: zeros
        part = (torch.empty if p else torch.zeros)(wgrid, per, device=q.device, dtype=torch.float32)
        if p:
            launch(
                K._pa_bwd_kernel, (grid,),
                q, x, wk, wv, bv if bv is not None else wk, cu, order, out, dout, lse, dq, dx, dqt, acc,
                p, plan.n_q, plan.d, plan.f, ph * plan.rows, ph * plan.nkv_p, plan.rows, scale * K.LOG2E,
                G=plan.g, BLOCK_Q=plan.block_q, D_PAD=plan.d_pad, F_PAD=plan.f_pad, NKV_P=plan.nkv_p,
                TILE_K=cfg["TILE_K"], HAS_BIAS=bv is not None, DOT_PREC=prec, ACCUM_DX=ph > 0,
                num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])
            launch(
                K._pa_wgrad_kernel, (wgrid,),
                q, dout, order, dqt, acc, part, p, plan.n_q, plan.d, ph * plan.rows,
                G=plan.g, BLOCK_Q=plan.block_q, D_PAD=plan.d_pad, F_PAD=plan.f_pad, NKV_P=plan.nkv_p,
                R_PAD=_pow2(plan.g), DOT_PREC=prec, num_warps=4, num_stages=3)
        parts.append(part.sum(0))
    return parts


def _bwd_run(cfg: dict, full: HeadPlan, *args) -> tuple[HeadPlan, list]:  # noqa: ANN002
    """The backward with ``cfg["KV"]`` kv heads per launch (1: each launch reads X and writes dX once per kv
    head, the second adding into the first's dX; 2: both heads in one pass over the tokens)."""
    plan = plan_heads(full.n_q, full.n_kv, full.d, full.f, full.g * cfg.get("KV", 1))
    return plan, _bwd_launch(cfg, plan, *args)


def _as(t: Tensor, dtype: torch.dtype) -> Tensor:
    """``t`` in ``dtype``, contiguous (``.to`` costs host time even when it has nothing to do)."""
    return (t if t.dtype == dtype else t.to(dtype)).contiguous()


def _plan_of(q: Tensor, x: Tensor, wk: Tensor, rows_cap: int | None = None) -> HeadPlan:
    d = q.shape[2]
    return plan_heads(q.shape[1], wk.shape[0] // d, d, x.shape[1], rows_cap)


def _fwd_impl(q: Tensor, tokens: Tensor, w_k: Tensor, w_v: Tensor, b_v: Tensor | None, cu_seqlens_k: Tensor,
              scale: float, need_lse: bool = True) -> tuple[Tensor, Tensor | None, Tensor]:
    plan = _plan_of(q, tokens, w_k)
    cd = _compute_dtype(q)
    q = q.contiguous()
    x = _as(tokens, cd)
    wk, wv = w_k.contiguous(), w_v.contiguous()
    bv = b_v.contiguous() if b_v is not None else None
    cu = _as(cu_seqlens_k, torch.int32)
    p = q.shape[0]
    out = torch.empty_like(q)
    lse = torch.empty(p, q.shape[1], device=q.device, dtype=torch.float32) if need_lse else None
    order, seg = _schedule_segments(cu)
    cfg = FWD.choose(_key("fwd", plan, cd, x.shape[0], p),
                     lambda c: _fwd_launch(c, plan, q, x, wk, wv, bv, seg, order, out, lse, scale), q.device)
    _fwd_launch(cfg, plan, q, x, wk, wv, bv, seg, order, out, lse, scale)
    return out, lse, order


@torch.library.custom_op("healda::ragged_pixel_attn_fwd", mutates_args=())
def pixel_attn_fwd(q: Tensor, tokens: Tensor, w_k: Tensor, w_v: Tensor, b_v: Tensor | None,
                   cu_seqlens_k: Tensor, max_seqlen_k: int, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """(out (P, n_q, d) q.dtype, lse (P, n_q) fp32 log2-domain, order (P + 1,) int32 schedule + work count)."""
    return _fwd_impl(q, tokens, w_k, w_v, b_v, cu_seqlens_k, scale)


@pixel_attn_fwd.register_fake
def _(q, tokens, w_k, w_v, b_v, cu_seqlens_k, max_seqlen_k, scale):
    _plan_of(q, tokens, w_k)
    p, n_q = q.shape[0], q.shape[1]
    return (q.new_empty(q.shape), q.new_empty((p, n_q), dtype=torch.float32),
            q.new_empty((p + 1,), dtype=torch.int32))


def _bwd_impl(d_out: Tensor, q: Tensor, tokens: Tensor, w_k: Tensor, w_v: Tensor, b_v: Tensor | None,
              cu_seqlens_k: Tensor, order: Tensor, out: Tensor, lse: Tensor, max_seqlen_k: int,
              scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The backward op's body (``max_seqlen_k`` is informational, as in the forward)."""
    full = _plan_of(q, tokens, w_k)
    cd = _compute_dtype(q)
    q, x = q.contiguous(), _as(tokens, cd)
    wk, wv = w_k.contiguous(), w_v.contiguous()
    bv = b_v.contiguous() if b_v is not None else None
    cu = _as(cu_seqlens_k, torch.int32)
    dout, out, lse, order = d_out.contiguous(), out.contiguous(), lse.contiguous(), order.contiguous()
    dq = torch.empty_like(q)
    dx = torch.empty_like(x)
    args = (q, x, wk, wv, bv, cu, order, out, dout, lse, dq, dx, scale)
    cfg = BWD.choose(_key("bwd", full, cd, x.shape[0], q.shape[0]), lambda c: _bwd_run(c, full, *args), q.device)
    plan, parts = _bwd_run(cfg, full, *args)
    mats = plan.kp * plan.f_pad
    heads = plan.nkv_p * plan.d_pad

    def weight(flat: Tensor) -> Tensor:  # a phase's (kp·F_PAD,) block of head-major tiles -> (nkv_p·d, F)
        tiles = flat.view(plan.kp, plan.f_pad)[:heads].view(plan.nkv_p, plan.d_pad, plan.f_pad)
        return tiles[:, :plan.d, :plan.f].reshape(-1, plan.f)

    dwk = [weight(part[:mats]) for part in parts]
    dwv = [weight(part[mats:2 * mats]) for part in parts]
    dbv = [part[2 * mats:][:heads].view(plan.nkv_p, plan.d_pad)[:, :plan.d].reshape(-1) for part in parts]
    d_wk = torch.cat(dwk).to(w_k.dtype)
    d_wv = torch.cat(dwv).to(w_v.dtype)
    d_bv = torch.cat(dbv).to(b_v.dtype) if b_v is not None else q.new_empty((0,), dtype=torch.float32)
    return dq, dx.to(tokens.dtype), d_wk, d_wv, d_bv


@torch.library.custom_op("healda::ragged_pixel_attn_bwd", mutates_args=())
def pixel_attn_bwd(d_out: Tensor, q: Tensor, tokens: Tensor, w_k: Tensor, w_v: Tensor, b_v: Tensor | None,
                   cu_seqlens_k: Tensor, order: Tensor, out: Tensor, lse: Tensor, max_seqlen_k: int,
                   scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(dq, dtokens, dw_k, dw_v, db_v); db_v is empty when b_v is None."""
    return _bwd_impl(d_out, q, tokens, w_k, w_v, b_v, cu_seqlens_k, order, out, lse, max_seqlen_k, scale)


@pixel_attn_bwd.register_fake
def _(d_out, q, tokens, w_k, w_v, b_v, cu_seqlens_k, order, out, lse, max_seqlen_k, scale):
    d_bv = b_v.new_empty(b_v.shape) if b_v is not None else q.new_empty((0,), dtype=torch.float32)
    return (q.new_empty(q.shape), tokens.new_empty(tokens.shape), w_k.new_empty(w_k.shape),
            w_v.new_empty(w_v.shape), d_bv)


def _setup_context(ctx, inputs, output) -> None:
    q, tokens, w_k, w_v, b_v, cu, max_seqlen_k, scale = inputs
    out, lse, order = output
    ctx.save_for_backward(q, tokens, w_k, w_v, b_v, cu, order, out, lse)
    ctx.max_seqlen_k, ctx.scale, ctx.has_bias = max_seqlen_k, scale, b_v is not None


def _grads(ctx, d_out, bwd) -> tuple:
    """The forward inputs' gradients from ``bwd`` (the op, or its implementation in eager mode)."""
    q, tokens, w_k, w_v, b_v, cu, order, out, lse = ctx.saved_tensors
    dq, dx, dwk, dwv, dbv = bwd(d_out, q, tokens, w_k, w_v, b_v if ctx.has_bias else None, cu, order, out, lse,
                                ctx.max_seqlen_k, ctx.scale)
    return dq, dx, dwk, dwv, (dbv if ctx.has_bias else None), None, None, None


def _backward(ctx, d_out, d_lse, d_order):
    return _grads(ctx, d_out, pixel_attn_bwd)  # the lse and order outputs carry no gradient


pixel_attn_fwd.register_autograd(_backward, setup_context=_setup_context)


class _EagerPixelAttn(torch.autograd.Function):
    """The ops' autograd pair for eager training, called without the op dispatcher (its wrappers cost about as
    much host time as the rest of the call). ``torch.compile`` traces the registered ops instead.

    The caller launches the forward kernel first and passes its outputs in ``output`` (a tuple, opaque to
    autograd): the GPU starts while ``apply`` records the graph, instead of after it."""

    @staticmethod
    def forward(ctx, q, tokens, w_k, w_v, b_v, cu, max_seqlen_k, scale, output):  # noqa: ANN001, ANN205
        _setup_context(ctx, (q, tokens, w_k, w_v, b_v, cu, max_seqlen_k, scale), output)
        return output[0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out):  # noqa: ANN001, ANN205
        return *_grads(ctx, d_out, _bwd_impl), None


def _validate(q: tuple, tokens: tuple, w_k: tuple, w_v: tuple, b_v: tuple | None, cu: tuple) -> None:
    """Shape checks of :func:`pixel_attention` on the arguments' shapes (ValueError naming the offending ones)."""
    if len(q) != 3 or len(tokens) != 2:
        raise ValueError(f"q must be (P, n_q, d) and tokens (N, F); got {tuple(q)} and {tuple(tokens)}")
    d = q[2]
    if w_k != w_v or len(w_k) != 2 or w_k[1] != tokens[1] or w_k[0] % d:
        raise ValueError(f"w_k and w_v must both be (n_kv*{d}, {tokens[1]}); got {tuple(w_k)}, {tuple(w_v)}")
    if b_v is not None and tuple(b_v) != (w_v[0],):
        raise ValueError(f"b_v must be ({w_v[0]},), got {tuple(b_v)}")
    if tuple(cu) != (q[0] + 1,):
        raise ValueError(f"cu_seqlens_k must have P+1 = {q[0] + 1} entries, got {tuple(cu)}")
    plan_heads(q[1], w_k[0] // d, d, tokens[1])


# shapes that passed, memoised (failures are not: they raise again): the blocks of a forward share them
_validate_cached = functools.lru_cache(maxsize=1024)(_validate)


def pixel_attention(q: Tensor, tokens: Tensor, w_k: Tensor, w_v: Tensor, b_v: Tensor | None, cu_seqlens_k: Tensor,
                    max_seqlen_k: int, scale: float | None = None, group_map=None) -> Tensor:
    """Ragged GQA pixel cross-attention on the Triton kernels (see ``healda_core.model.ragged``).

    Args:
        q: (P, n_q, d). tokens: (N, F) sorted by pixel. w_k, w_v: (n_kv·d, F). b_v: (n_kv·d,) or None.
        cu_seqlens_k: (P+1,) int32 with cu[-1] == N. max_seqlen_k: largest count (informational).
        scale: logit scale (None → 1/√d). group_map: ignored (results never depend on it).

    Returns:
        (P, n_q, d) in q's dtype; rows of empty pixels are 0.
    """
    shapes = (q.shape, tokens.shape, w_k.shape, w_v.shape, None if b_v is None else b_v.shape, cu_seqlens_k.shape)
    (_validate_cached if _memoisable(*shapes) else _validate)(*shapes)
    scale = 1.0 / math.sqrt(q.shape[2]) if scale is None else float(scale)
    if not eager_call():
        return pixel_attn_fwd(q, tokens, w_k, w_v, b_v, cu_seqlens_k, int(max_seqlen_k), scale)[0]
    if not needs_grad(q, tokens, w_k, w_v, b_v):  # eager inference: no statistics for a backward
        return _fwd_impl(q, tokens, w_k, w_v, b_v, cu_seqlens_k, scale, need_lse=False)[0]
    with torch.no_grad():  # the kernel starts before autograd's bookkeeping (host time the GPU would wait for)
        output = _fwd_impl(q, tokens, w_k, w_v, b_v, cu_seqlens_k, scale)
    return _EagerPixelAttn.apply(q, tokens, w_k, w_v, b_v, cu_seqlens_k, int(max_seqlen_k), scale, output)
