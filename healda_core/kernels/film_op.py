"""``healda::film_tokenizer_fwd`` / ``healda::film_tokenizer_bwd``: torch.library ops around the fused FiLM tokenizer kernels.

:func:`film_tokenize` is what ``ObsTokenizerFiLM.forward`` calls on the kernel path. It returns the
tokens in the autocast dtype when autocast is on for the device (bf16 in the model's mixed-precision
runs), else in the parameters' dtype, like ``forward_torch``. Gradients flow to every parameter
(the three embedding tables, cond_mlp.0 / .1 / .3 weights and biases) and, when they require it, to
obs and float_metadata. Layouts the kernel does not cover (a width above 256) fall back to
``module.forward_torch``. Eager calls skip the op dispatcher (inference: the implementation directly;
training: ``_EagerFilm``, with the ops' results and gradients); anything that traces gets the ops.

Precision: with 16-bit tokens (autocast) the products take bf16 operands on the GPU, as the reference's;
with fp32 tokens they are exact fp32; LayerNorm, SiLU and every accumulation are fp32. Embedding gradients use fp32 atomics, except under
``torch.use_deterministic_algorithms(True)``, where per-row gradients are reduced on the host
deterministically. Dense weight gradients are reproducible: each program adds its row tiles' sums into its own
slice in program order, and the host adds the slices.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from healda_core.kernels import eager_call, needs_grad
from healda_core.kernels import film as K
from healda_core.kernels import film_bwd as KB
from healda_core.kernels.launch import launch
from healda_core.kernels.tuning import Tuner, bucket, num_sms

MAX_PAD = 256

# Both kernels are persistent (PROGS_PER_SM programs per SM, each loading the weights once). The defaults are the
# fastest settings measured on an H200 at 10 M rows: 4 warps and 64-row tiles for both, 2 stages / 8 per SM for the
# forward, 1 stage / 4 per SM for the backward. ``force`` pins every candidate to 4 warps, which these kernels run
# clean at (docs/design.md, "Launch settings and the compiler fault").
FWD = Tuner("film_fwd", [dict(BLOCK_M=64, num_warps=4, num_stages=st, PROGS_PER_SM=pp) for st, pp in
                         [(2, 8), (2, 16), (1, 8), (2, 4)]],
            dict(BLOCK_M=64, num_warps=4, num_stages=2, PROGS_PER_SM=8), force=dict(num_warps=4))
BWD = Tuner("film_bwd", [dict(BLOCK_M=64, num_warps=4, num_stages=1, PROGS_PER_SM=pp) for pp in (4, 2, 8)],
            dict(BLOCK_M=64, num_warps=4, num_stages=1, PROGS_PER_SM=4), force=dict(num_warps=4))


def _pow2(n: int) -> int:
    return max(16, 1 << (max(1, n) - 1).bit_length())


def _prec(device: torch.device, out_dtype: torch.dtype) -> str:
    """Product precision: bf16 operands for 16-bit tokens on the GPU (fp32 accumulation, as the reference),
    exact fp32 for fp32 tokens and on the CPU interpreter."""
    return "bf16" if device.type == "cuda" and out_dtype in (torch.bfloat16, torch.float16) else "ieee"


def _dims(meta: Tensor, e_type: Tensor, e_chan: Tensor, e_plat: Tensor | None, w1: Tensor, w2: Tensor) -> dict:
    m, e1, e2 = meta.shape[1], e_type.shape[1], e_chan.shape[1]
    e3 = e_plat.shape[1] if e_plat is not None else 0
    h, f = w1.shape[0], w2.shape[0] // 2
    if w1.shape[1] != m + e1 + e2 + e3 or w2.shape[1] != h or w2.shape[0] != 2 * f:
        raise ValueError(f"FiLM weights do not match: W1 {tuple(w1.shape)} for cond_dim {m + e1 + e2 + e3}, "
                         f"W2 {tuple(w2.shape)} for hidden {h}")
    return dict(M=m, E1=e1, E2=e2, E3=e3, H=h, F=f)


def _consts(dm: dict) -> dict:
    return _consts_of(dm["M"], dm["E1"], dm["E2"], dm["E3"], dm["H"], dm["F"])


@functools.lru_cache(maxsize=64)
def _consts_of(m: int, e1: int, e2: int, e3: int, h: int, f: int) -> dict:
    """The forward's padded widths (memoised: the host time before a launch is time the GPU waits)."""
    return dict(M_PAD=_pow2(m), E1_PAD=_pow2(e1), E2_PAD=_pow2(e2), E3_PAD=_pow2(e3), H_PAD=_pow2(h),
                F_PAD=_pow2(f), HAS_PLAT=e3 > 0)


def _consts_bwd(dm: dict) -> dict:
    return dict(M_PAD=_pow2(dm["M"]), EMB_PAD=_pow2(dm["E1"] + dm["E2"] + dm["E3"]), H_PAD=_pow2(dm["H"]),
                F_PAD=_pow2(dm["F"]), HAS_PLAT=dm["E3"] > 0)


def _bwd_args(args: list, dm: dict) -> tuple[list, list]:
    """The backward kernel's pointer arguments ([E_type | E_chan | E_plat] flattened into one fp32 buffer) and
    the widths (M, E1, E2, E3, O2, O3, H, F), O2/O3 being the starts of the second and third table."""
    tabs = [args[5], args[6]] + ([args[7]] if dm["E3"] else [])
    o2 = tabs[0].numel()
    o3 = o2 + tabs[1].numel()
    if o3 + (tabs[2].numel() if dm["E3"] else 0) >= 2**31:
        raise ValueError("FiLM embedding tables too large for the kernels' int32 offsets")
    emb = torch.cat([t.reshape(-1).float() for t in tabs])
    return [*args[:5], emb, *args[8:]], [dm["M"], dm["E1"], dm["E2"], dm["E3"], o2, o3, dm["H"], dm["F"]]


def supported(meta_dim: int, e1: int, e2: int, e3: int, hidden: int, out_dim: int) -> bool:
    """Whether the kernels cover these widths (each padded width, and the three embeddings together, at most 256)."""
    return max(_pow2(v) for v in (meta_dim, e1 + e2 + e3, hidden, out_dim)) <= MAX_PAD


_supported_cached = functools.lru_cache(maxsize=64)(supported)  # eager calls (Dynamo warns about the wrapper)


def _key(kind: str, dm: dict, n: int, out_dtype: torch.dtype) -> tuple:
    return (kind, str(out_dtype).removeprefix("torch."), dm["M"], dm["E1"], dm["E2"], dm["E3"], dm["H"], dm["F"],
            bucket(n))


def _args(obs, meta, obs_type, channel, platform, e_type, e_chan, e_plat, w1, b1, ln_w, ln_b, w2, b2):
    c = [t.contiguous() for t in (obs, meta, obs_type, channel, platform, e_type, e_chan)]
    c.append(e_plat.contiguous() if e_plat is not None else c[5])
    c += [t.contiguous() for t in (w1, b1, ln_w, ln_b, w2, b2)]
    return c


def _fwd_launch(cfg: dict, dm: dict, args: list, out: Tensor, eps: float) -> None:
    n = out.shape[0]
    if n == 0:
        return
    grid = (max(1, min(triton_cdiv(n, cfg["BLOCK_M"]), num_sms(out.device) * cfg["PROGS_PER_SM"])),)
    launch(
        K._film_fwd_kernel, grid, *args, out, n, dm["M"], dm["E1"], dm["E2"], dm["E3"], dm["H"], dm["F"], eps,
        **_consts(dm), BLOCK_M=cfg["BLOCK_M"], PREC=_prec(out.device, out.dtype), num_warps=cfg["num_warps"],
        num_stages=cfg["num_stages"])


def triton_cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def _part_size(c: dict) -> int:
    return c["H_PAD"] * (c["M_PAD"] + c["EMB_PAD"] + 3) + 2 * c["F_PAD"] * (c["H_PAD"] + 1)


def _unpack(part: Tensor, dm: dict) -> tuple[Tensor, ...]:
    """(dW1, db1, dγ, dβ, dW2, db2) from the summed per-program partials (layout: film_bwd.py)."""
    H, F = dm["H"], dm["F"]
    c = _consts_bwd(dm)
    hp, fp, mp, ep = c["H_PAD"], c["F_PAD"], c["M_PAD"], c["EMB_PAD"]
    gw1 = torch.cat([part[:hp * mp].view(hp, mp)[:H, :dm["M"]],
                     part[hp * mp:hp * (mp + ep)].view(hp, ep)[:H, :dm["E1"] + dm["E2"] + dm["E3"]]], dim=1)
    o = hp * (mp + ep)
    gb1, gg, gb = part[o:o + H], part[o + hp:o + hp + H], part[o + 2 * hp:o + 2 * hp + H]
    o += 3 * hp
    gw2 = part[o:o + 2 * fp * hp].view(2 * fp, hp)
    gw2 = torch.cat([gw2[:F, :H], gw2[fp:fp + F, :H]])
    o += 2 * fp * hp
    gb2 = torch.cat([part[o:o + F], part[o + fp:o + fp + F]])
    return gw1, gb1, gg, gb, gw2, gb2


def _bwd_launch(cfg: dict, dm: dict, args: list, d_out: Tensor, eps: float, rows_mode: bool, need_dobs: bool,
                need_dmeta: bool, n_embed: tuple[int, int, int]):
    """One backward run into fresh buffers: (part sums, emb grads (3), d_obs | None, d_meta | None)."""
    dev, n = d_out.device, d_out.shape[0]
    c = _consts_bwd(dm)
    f32 = dict(device=dev, dtype=torch.float32)
    d_obs = torch.empty(n, **f32) if need_dobs else None
    d_meta = torch.empty(n, dm["M"], **f32) if need_dmeta else None
    tiles = triton_cdiv(n, cfg["BLOCK_M"])
    grid = max(1, min(tiles, num_sms(dev) * cfg["PROGS_PER_SM"]))
    part = torch.zeros(grid, _part_size(c), **f32)
    widths = [dm[k] for k in ("E1", "E2", "E3")]
    # one embedding-gradient buffer: the tables flattened and concatenated, or (N, E1+E2+E3) per-row rows
    gbuf = torch.empty(n, sum(widths), **f32) if rows_mode else \
        torch.zeros(sum(ne * w for ne, w in zip(n_embed, widths)), **f32)
    if n:
        ptrs, sizes = _bwd_args(args, dm)
        launch(
            KB._film_bwd_kernel, (grid,),
            *ptrs, d_out, gbuf, d_obs if need_dobs else d_out, d_meta if need_dmeta else d_out, part, n, *sizes,
            eps, **c, BLOCK_M=cfg["BLOCK_M"], PREC=_prec(dev, d_out.dtype), DEMB_ROWS=rows_mode,
            NEED_DOBS=need_dobs, NEED_DMETA=need_dmeta, num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])
    gem, o = [], 0  # views into gbuf: (N, E) per-row blocks or (n_embed, E) tables
    for ne, w in zip(n_embed, widths):
        gem.append(gbuf[:, o:o + w] if rows_mode else gbuf[o:o + ne * w].view(ne, w))
        o += w if rows_mode else ne * w
    return part.sum(0), gem, d_obs, d_meta


def _fwd_impl(obs: Tensor, meta: Tensor, obs_type: Tensor, channel: Tensor, platform: Tensor, e_type: Tensor,
              e_chan: Tensor, e_plat: Tensor | None, w1: Tensor, b1: Tensor, ln_w: Tensor, ln_b: Tensor, w2: Tensor,
              b2: Tensor, eps: float, out_dtype: torch.dtype) -> Tensor:
    dm = _dims(meta, e_type, e_chan, e_plat, w1, w2)
    args = _args(obs, meta, obs_type, channel, platform, e_type, e_chan, e_plat, w1, b1, ln_w, ln_b, w2, b2)
    out = torch.empty(obs.shape[0], dm["F"], device=obs.device, dtype=out_dtype)
    cfg = FWD.choose(_key("fwd", dm, obs.shape[0], out_dtype), lambda c: _fwd_launch(c, dm, args, out, eps),
                     obs.device)
    _fwd_launch(cfg, dm, args, out, eps)
    return out


@torch.library.custom_op("healda::film_tokenizer_fwd", mutates_args=())
def film_fwd(obs: Tensor, meta: Tensor, obs_type: Tensor, channel: Tensor, platform: Tensor, e_type: Tensor,
             e_chan: Tensor, e_plat: Tensor | None, w1: Tensor, b1: Tensor, ln_w: Tensor, ln_b: Tensor, w2: Tensor,
             b2: Tensor, eps: float, out_dtype: torch.dtype) -> Tensor:
    """FiLM tokens (N, F) in ``out_dtype``."""
    return _fwd_impl(obs, meta, obs_type, channel, platform, e_type, e_chan, e_plat, w1, b1, ln_w, ln_b, w2, b2, eps,
                     out_dtype)


@film_fwd.register_fake
def _(obs, meta, obs_type, channel, platform, e_type, e_chan, e_plat, w1, b1, ln_w, ln_b, w2, b2, eps, out_dtype):
    dm = _dims(meta, e_type, e_chan, e_plat, w1, w2)
    return obs.new_empty((obs.shape[0], dm["F"]), dtype=out_dtype)


def _bwd_impl(d_out: Tensor, obs: Tensor, meta: Tensor, obs_type: Tensor, channel: Tensor, platform: Tensor,
              e_type: Tensor, e_chan: Tensor, e_plat: Tensor | None, w1: Tensor, b1: Tensor, ln_w: Tensor,
              ln_b: Tensor, w2: Tensor, b2: Tensor, eps: float, need_dobs: bool,
              need_dmeta: bool) -> tuple[Tensor, ...]:
    dm = _dims(meta, e_type, e_chan, e_plat, w1, w2)
    args = _args(obs, meta, obs_type, channel, platform, e_type, e_chan, e_plat, w1, b1, ln_w, ln_b, w2, b2)
    g = d_out.contiguous()
    n = obs.shape[0]
    rows_mode = torch.are_deterministic_algorithms_enabled()
    n_embed = (e_type.shape[0], e_chan.shape[0], e_plat.shape[0] if e_plat is not None else 1)

    def run(cfg: dict):
        return _bwd_launch(cfg, dm, args, g, eps, rows_mode, need_dobs, need_dmeta, n_embed)

    # "bwd2": the one-embedding-tile kernel; cache entries of an older backward layout are not reused
    cfg = BWD.choose(_key("bwd2", dm, n, d_out.dtype), run, obs.device)
    part, gem, d_obs, d_meta = run(cfg)
    if rows_mode:
        ids = (obs_type, channel, platform)
        tabs = []
        for k, ne, idx, rows in zip(("E1", "E2", "E3"), n_embed, ids, gem):
            t = torch.zeros(ne, max(dm[k], 1), device=obs.device, dtype=torch.float32)
            if n and dm[k]:
                t.index_put_((idx.long(),), rows, accumulate=True)
            tabs.append(t)
        gem = tabs
    gw1, gb1, gg, gb, gw2, gb2 = _unpack(part, dm)

    def empty():
        return obs.new_empty((0,), dtype=torch.float32)

    # outputs must not alias each other: slices of `part` are copied
    return (d_obs.to(obs.dtype) if need_dobs else empty(), d_meta.to(meta.dtype) if need_dmeta else empty(),
            gem[0].to(e_type.dtype, copy=True), gem[1].to(e_chan.dtype, copy=True),
            gem[2].to(e_plat.dtype, copy=True) if e_plat is not None else empty(),
            gw1.to(w1.dtype, copy=True), gb1.to(b1.dtype, copy=True), gg.to(ln_w.dtype, copy=True),
            gb.to(ln_b.dtype, copy=True), gw2.to(w2.dtype), gb2.to(b2.dtype))


@torch.library.custom_op("healda::film_tokenizer_bwd", mutates_args=())
def film_bwd(d_out: Tensor, obs: Tensor, meta: Tensor, obs_type: Tensor, channel: Tensor, platform: Tensor,
             e_type: Tensor, e_chan: Tensor, e_plat: Tensor | None, w1: Tensor, b1: Tensor, ln_w: Tensor,
             ln_b: Tensor, w2: Tensor, b2: Tensor, eps: float, need_dobs: bool,
             need_dmeta: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                                        Tensor]:
    """(d_obs, d_meta, dE_type, dE_chan, dE_plat, dW1, db1, dγ, dβ, dW2, db2); unused ones are empty."""
    return _bwd_impl(d_out, obs, meta, obs_type, channel, platform, e_type, e_chan, e_plat, w1, b1, ln_w, ln_b, w2,
                     b2, eps, need_dobs, need_dmeta)


@film_bwd.register_fake
def _(d_out, obs, meta, obs_type, channel, platform, e_type, e_chan, e_plat, w1, b1, ln_w, ln_b, w2, b2, eps,
      need_dobs, need_dmeta):
    def empty():
        return obs.new_empty((0,), dtype=torch.float32)

    def like(t):
        return t.new_empty(t.shape)

    return (like(obs) if need_dobs else empty(), like(meta) if need_dmeta else empty(), like(e_type), like(e_chan),
            like(e_plat) if e_plat is not None else empty(), like(w1), like(b1), like(ln_w), like(ln_b), like(w2),
            like(b2))


def _setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs[:14])
    ctx.has_plat = inputs[7] is not None
    ctx.eps = inputs[14]


def _grads(ctx, d_out, bwd) -> tuple:
    """The forward inputs' gradients from ``bwd`` (the op, or its implementation in eager mode)."""
    t = list(ctx.saved_tensors)
    if not ctx.has_plat:
        t[7] = None
    need_obs, need_meta = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    r = bwd(d_out, *t, ctx.eps, need_obs, need_meta)
    return (r[0] if need_obs else None, r[1] if need_meta else None, None, None, None, r[2], r[3],
            r[4] if ctx.has_plat else None, *r[5:], None, None)


def _backward(ctx, d_out):
    return _grads(ctx, d_out, film_bwd)


film_fwd.register_autograd(_backward, setup_context=_setup_context)


class _EagerFilm(torch.autograd.Function):
    """The ops' autograd pair for eager training, called without the op dispatcher (host time);
    ``torch.compile`` traces the registered ops instead. The caller launches the forward kernel first and passes
    its tokens last, in a tuple (opaque to autograd): the GPU starts while ``apply`` records the graph."""

    @staticmethod
    def forward(ctx, *args):  # noqa: ANN002, ANN205
        _setup_context(ctx, args[:-1], None)
        return args[-1][0]

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out):  # noqa: ANN001, ANN205
        return *_grads(ctx, d_out, _bwd_impl), None


def film_tokenize(module, obs: Tensor, float_metadata: Tensor, obs_type: Tensor, channel: Tensor,
                  platform: Tensor) -> Tensor:
    """``ObsTokenizerFiLM`` forward on the fused kernels (falls back to ``module.forward_torch`` for widths
    the kernel does not cover)."""
    lin1, ln, _, lin2 = module.cond_mlp
    plat = module.platform_embedding
    e_type, e_chan = module.embed_table.weight, module.channel_embedding.weight
    e_plat = plat.weight if plat is not None else None
    w1, b1, ln_w, ln_b, w2, b2 = lin1.weight, lin1.bias, ln.weight, ln.bias, lin2.weight, lin2.bias
    ok = supported if torch.compiler.is_compiling() else _supported_cached
    if b1 is None or ln_w is None or ln_b is None or b2 is None or not ok(
            float_metadata.shape[1], e_type.shape[1], e_chan.shape[1], 0 if e_plat is None else e_plat.shape[1],
            w1.shape[0], w2.shape[0] // 2):
        return module.forward_torch(obs, float_metadata, obs_type, channel, platform)
    dev = obs.device.type
    out_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else w1.dtype
    args = (obs, float_metadata, obs_type, channel, platform, e_type, e_chan, e_plat, w1, b1, ln_w, ln_b, w2, b2,
            float(ln.eps), out_dtype)
    if not eager_call():
        return film_fwd(*args)
    if not needs_grad(*args):
        return _fwd_impl(*args)
    with torch.no_grad():  # the kernel starts before autograd's bookkeeping (host time the GPU would wait for)
        out = _fwd_impl(*args)
    return _EagerFilm.apply(*args, (out,))
