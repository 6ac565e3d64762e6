"""Pixel-attention sections of the reference harness: ``pa`` (PhysicsNeMo's Triton pixel attention and the
``PixelCrossAttention`` module) and ``naive`` (plain-PyTorch segment softmax, torch varlen attention)."""
import inspect
import math
import time

import harness as H
import torch
import torch.nn.functional as F
from harness import (
    BF16,
    DEV,
    MISMATCH,
    PRECOMPILE,
    R,
    bench,
    count_stats,
    first_call,
    free,
    guarded,
    install_parallel_precompile,
    left,
    log,
    make_obs,
    make_pa_inputs,
    pa_cache_report,
    pa_model,
    peak_gib,
    peak_reset,
    pin_pa_configs,
    rates,
    relerr,
    save,
    sync,
    tuner_report,
)


# ---------------------------------------------------------------------------------------
# Plain PyTorch alternatives
# ---------------------------------------------------------------------------------------
def naive_pixel_attention(Q, tokens, Wk, Wv, Bv, pix, n_kv, scale, chunk=1 << 20):
    """What a user would write: per-token K/V projection, gather each token's pixel Q,
    segment softmax with scatter_reduce(amax) + index_add, index_add the weighted values.
    bf16 matmuls, fp32 softmax statistics and fp32 output accumulation."""
    N = tokens.shape[0]
    P, Hq, d = Q.shape
    qpk = Hq // n_kv
    K = F.linear(tokens, Wk.to(tokens.dtype)).view(N, n_kv, d)
    V = F.linear(tokens, Wv.to(tokens.dtype), Bv.to(tokens.dtype)).view(N, n_kv, d)
    Qv = Q.view(P, n_kv, qpk, d)
    s_parts = []
    for c0 in range(0, N, chunk):
        sl = slice(c0, min(N, c0 + chunk))
        Qg = Qv[pix[sl]]  # (C, n_kv, qpk, d)
        s = torch.matmul(Qg, K[sl].unsqueeze(-1)).squeeze(-1)  # (C, n_kv, qpk)
        s_parts.append(s.reshape(-1, Hq).float() * scale)
    s = torch.cat(s_parts) if len(s_parts) > 1 else s_parts[0]
    idx = pix.unsqueeze(1).expand(N, Hq)
    smax = torch.full((P, Hq), float("-inf"), device=Q.device, dtype=torch.float32)
    smax = smax.scatter_reduce(0, idx, s.detach(), reduce="amax", include_self=True)
    e = torch.exp(s - smax[pix])
    den = torch.zeros(P, Hq, device=Q.device, dtype=torch.float32).index_add(0, pix, e)
    w = e / den[pix]
    out = torch.zeros(P, Hq, d, device=Q.device, dtype=torch.float32)
    for c0 in range(0, N, chunk):
        sl = slice(c0, min(N, c0 + chunk))
        C = sl.stop - sl.start
        wv = w[sl].view(C, n_kv, qpk, 1) * V[sl].float().view(C, n_kv, 1, d)
        out = out.index_add(0, pix[sl], wv.view(C, Hq, d))
    return out.to(Q.dtype)


def get_varlen():
    try:
        from torch.nn.attention import varlen as VL
    except Exception as ex:
        return None, f"torch.nn.attention.varlen not importable: {ex}"
    fn = getattr(VL, "varlen_attn", None)
    if fn is None:
        return None, "torch.nn.attention.varlen has no varlen_attn"
    return fn, str(inspect.signature(fn))


def varlen_pixel_attention(vfn, Q, tokens, Wk, Wv, Bv, cu, maxlen, n_kv, scale, max_seqs=32768):
    """torch.nn.attention.varlen.varlen_attn (FlashAttention varlen): one query row per pixel.
    Pixels are processed in slices of <= max_seqs sequences (FlashAttention puts the batch in
    gridDim.y, which is capped at 65535). Without an enable_gqa argument the 2 KV heads are
    expanded to the 64 query heads (per slice)."""
    N = tokens.shape[0]
    P, Hq, d = Q.shape
    K = F.linear(tokens, Wk.to(tokens.dtype)).view(N, n_kv, d)
    V = F.linear(tokens, Wv.to(tokens.dtype), Bv.to(tokens.dtype)).view(N, n_kv, d)
    params = inspect.signature(vfn).parameters
    kw = {}
    if "scale" in params:
        kw["scale"] = scale
    gqa = "enable_gqa" in params
    if gqa:
        kw["enable_gqa"] = True
    cu_host = cu.tolist()
    outs = []
    for p0 in range(0, P, max_seqs):
        p1 = min(P, p0 + max_seqs)
        t0, t1 = cu_host[p0], cu_host[p1]
        Kc, Vc = K[t0:t1], V[t0:t1]
        if not gqa:
            Kc = Kc.repeat_interleave(Hq // n_kv, dim=1)
            Vc = Vc.repeat_interleave(Hq // n_kv, dim=1)
        cu_k = (cu[p0:p1 + 1] - t0).to(torch.int32)
        cu_q = torch.arange(p1 - p0 + 1, device=Q.device, dtype=torch.int32)
        o = vfn(Q[p0:p1], Kc, Vc, cu_q, cu_k, 1, int(maxlen), **kw)
        outs.append(o[0] if isinstance(o, tuple) else o)
    return torch.cat(outs) if len(outs) > 1 else outs[0]



# ---------------------------------------------------------------------------------------
# pixel attention (reference Triton kernels)
# ---------------------------------------------------------------------------------------
def pa_sizes():
    if H.ARGS.smoke:
        return 2, 8 * 12, [300, 3000]  # B*T, X', Ns
    return 8, 12288, [int(x) for x in H.ARGS.pa_ns.split(",")]


@guarded("pa")
def section_pa():
    from physicsnemo.experimental.models.healda import prepare_obs_context
    from physicsnemo.experimental.models.healda.kernels import pixel_attention as pam

    BT, Xp, Ns = pa_sizes()
    P = BT * Xp
    n_q, n_kv, d, Fd = 64, 2, 32, 32
    scale = 1.0 / math.sqrt(d)
    tuners = {"fwd": pam._pixel_attn_gqa_fwd, "bwd": pam._pixel_attn_gqa_bwd}
    R["pa"]["autotune_space_size"] = {k: len(t.configs) for k, t in tuners.items()}
    R["pa"]["autotune_key"] = ["Q_PER_KV", "N_KV_HEADS", "COMPUTE_DTYPE", "max_seqlen_k_bucket", "n_pix", "GROUPED"]
    if H.ARGS.smoke:
        import triton
        one = [triton.Config({"TILE_K": 32}, num_warps=4, num_stages=2)]
        for t in tuners.values():
            t.configs = one
    elif H.ARGS.pa_configs == "subset":
        import triton
        sub = [triton.Config({"TILE_K": tk}, num_warps=nw, num_stages=ns)
               for tk, nw, ns in [(32, 4, 2), (64, 4, 2), (128, 4, 2), (64, 8, 2), (64, 4, 1), (32, 8, 1)]]
        for t in tuners.values():
            t.configs = sub
    R["pa"]["configs_used"] = {k: len(t.configs) for k, t in tuners.items()}
    for k, t in tuners.items():
        install_parallel_precompile(k, t, H.ARGS.threads)

    runs = R["pa"].setdefault("runs", [])
    R["pa"]["precompile"] = PRECOMPILE
    R["pa"]["precompile_mismatch"] = MISMATCH
    for N in Ns:
        if left() < H.ARGS.pa_reserve and runs:
            log(f"pa: skipping N={N}, deadline")
            break
        free()
        t = time.perf_counter()
        counts, raw = make_obs(N, P, meta_dim=50, seed=H.ARGS.seed)
        sync()
        st = count_stats(counts)
        log(f"pa N={N}: obs generated in {time.perf_counter() - t:.1f}s; stats {st}")
        ent = {"N": N, "P": P, "B": 1, "T": BT, "Xp": Xp, "counts": st}
        runs.append(ent)
        # packing cost (physicsnemo.prepare_obs_context: counting sort + gathers, + group map)
        ctx_g = prepare_obs_context(**{k: raw[k] for k in ["obs", "float_metadata", "obs_type", "channel", "platform", "flat_idx"]},
                                    total_pixels=P, build_group_map=True)
        ent["prepare_obs_context_ms"] = bench(lambda: prepare_obs_context(
            **raw, total_pixels=P, build_group_map=True), warmup=1, reps=5, max_ms=2000)
        ent["prepare_obs_context_nogroup_ms"] = bench(lambda: prepare_obs_context(
            **raw, total_pixels=P, build_group_map=False), warmup=1, reps=5, max_ms=2000)
        del raw
        free()
        cu = ctx_g.cu_seqlens_k
        maxlen = ctx_g.max_seqlen_k
        gm = ctx_g.group_map
        ent["max_seqlen_k"] = maxlen
        ent["max_seqlen_k_bucket"] = pam._bucket_max_seqlen_k(maxlen)
        ent["n_programs_grouped"] = int(gm.program_ptr.numel() - 1)
        ent["model"] = pa_model(N, P, st["nonempty"], n_q, n_kv, d, Fd)
        # keep only what the kernels need
        del ctx_g
        free()
        inp = make_pa_inputs(N, P, n_q, n_kv, d, Fd)
        ent["cu_matches_prepare_obs_context"] = bool(torch.equal(inp["cu"], cu))
        tokens, Q, dO, Wk, Wv, Bv = (inp[k] for k in ("tokens", "Q", "dO", "Wk", "Wv", "Bv"))
        del inp
        leaves = [x.detach().clone().requires_grad_(True) for x in (Q, tokens, Wk, Wv, Bv)]
        for grouped in (True, False):
            tag = "grouped" if grouped else "ungrouped"
            gmap = gm if grouped else None

            def fwd(inp=(Q, tokens, Wk, Wv, Bv)):
                q, tk, wk, wv, bv = inp
                return pam.pixel_attention(q, tk, wk, wv, cu, maxlen, n_kv_heads=n_kv, scale=scale,
                                           B_k=None, B_v=bv, group_map=gmap)

            def fwd_bwd():
                out = fwd(leaves)
                return torch.autograd.grad(out, leaves, dO)

            sub = ent.setdefault(tag, {})
            with torch.no_grad():
                out0, t_first = first_call(fwd)
            sub["first_fwd_call_s"] = t_first
            sub["autotune_fwd"] = tuner_report(tuners["fwd"])
            log(f"pa N={N} {tag}: first fwd call {t_first:.1f}s best {sub['autotune_fwd']['best_config']}")
            save()
            _, t_first_b = first_call(fwd_bwd)
            sub["first_fwd_bwd_call_s"] = t_first_b
            sub["autotune_bwd"] = tuner_report(tuners["bwd"])
            log(f"pa N={N} {tag}: first fwd+bwd call {t_first_b:.1f}s best {sub['autotune_bwd']['best_config']}")
            save()
            with torch.no_grad():
                sub["fwd"] = bench(fwd, warmup=3, reps=20)
            base = peak_reset()
            sub["fwd_bwd"] = bench(fwd_bwd, warmup=2, reps=15)
            sub["fwd_bwd_mem"] = peak_gib(base)
            m = ent["model"]
            sub["fwd_rates"] = rates(m["fwd_flops"], m["fwd_min_bytes"], sub["fwd"]["median_ms"])
            bwd_ms = sub["fwd_bwd"]["median_ms"] - sub["fwd"]["median_ms"]
            sub["bwd_only_ms_est"] = bwd_ms
            sub["fwd_bwd_rates"] = rates(m["fwd_flops"] + m["bwd_flops_model"],
                                         m["fwd_min_bytes"] + m["bwd_min_bytes"], sub["fwd_bwd"]["median_ms"])
            if bwd_ms > 0:
                sub["bwd_rates_est"] = rates(m["bwd_flops_model"], m["bwd_min_bytes"], bwd_ms)
            log(f"pa N={N} {tag}: fwd {sub['fwd']['median_ms']:.3f} ms, fwd+bwd {sub['fwd_bwd']['median_ms']:.3f} ms "
                f"({sub['fwd_rates']['TFLOPs']:.1f} TF/s fwd, {sub['fwd_rates']['TBps_min_bytes']:.2f} TB/s min-bytes)")
            if grouped:
                ref_out = out0
            else:
                sub["grouped_vs_ungrouped_max_abs_diff"] = float((out0.float() - ref_out.float()).abs().max())
            save()
        del leaves, dO, Q, tokens, out0, ref_out
        free()
        save()

    # module-level PixelCrossAttention (q_proj + kernel + out_proj), bf16 autocast, one size
    if not H.ARGS.smoke and left() > H.ARGS.pa_reserve - 30:
        section_pca()


def section_pca():
    from physicsnemo.experimental.models.healda import PixelCrossAttention, prepare_obs_context

    N = H.ARGS.model_n
    BT, Xp, _ = pa_sizes()
    P = BT * Xp
    D = 1536
    counts, raw = make_obs(N, P, meta_dim=50, seed=H.ARGS.seed)
    ctx = prepare_obs_context(**raw, total_pixels=P, build_group_map=True)
    del raw
    free()
    mod = PixelCrossAttention(D, 32, 64, 2, 32, use_proj_bias=True).to(DEV)
    g = torch.Generator(device=DEV)
    g.manual_seed(3)
    h = torch.randn(1, BT, Xp, D, device=DEV, dtype=BF16, generator=g).requires_grad_(True)
    tok = torch.randn(N, 32, device=DEV, dtype=BF16, generator=g).requires_grad_(True)
    gout = torch.randn(1, BT, Xp, D, device=DEV, dtype=BF16, generator=g)
    kw = dict(tokens=tok, cu_seqlens_k=ctx.cu_seqlens_k, max_seqlen_k=ctx.max_seqlen_k, group_map=ctx.group_map)
    params = [h, tok] + list(mod.parameters())

    def f():
        with torch.autocast("cuda", dtype=BF16):
            return mod(h, **kw)

    def fb():
        with torch.autocast("cuda", dtype=BF16):
            o = mod(h, **kw)
        return torch.autograd.grad(o, params, gout)

    ent = {"N": N, "P": P, "hidden": D}
    with torch.no_grad():
        ent["fwd"] = bench(f, warmup=3, reps=20)
    base = peak_reset()
    ent["fwd_bwd"] = bench(fb, warmup=2, reps=15)
    ent["fwd_bwd_mem"] = peak_gib(base)
    R["pa"]["PixelCrossAttention_module"] = ent
    log(f"PixelCrossAttention module N={N}: fwd {ent['fwd']['median_ms']:.3f} ms, fwd+bwd {ent['fwd_bwd']['median_ms']:.3f} ms")
    del mod, h, tok, gout, ctx, kw, params


# ---------------------------------------------------------------------------------------
# naive PyTorch + varlen
# ---------------------------------------------------------------------------------------
@guarded("naive")
def section_naive():
    n_kv, d = 2, 32
    scale = 1.0 / math.sqrt(d)
    vfn, vsig = get_varlen()
    R["naive"]["varlen_signature"] = vsig
    R["naive"]["flex_attention"] = (
        "not run: FlexAttention needs torch.compile (tens of seconds of compile per shape) and "
        "its dense 128x128 block tiles would spend >=128x the useful score FLOPs here (one query "
        "row per pixel per head, every token belongs to exactly one pixel)")
    from physicsnemo.experimental.models.healda.kernels import pixel_attention as pam

    BT, Xp, _ = pa_sizes()
    P = BT * Xp
    pin_pa_configs("naive")
    for N in H.ARGS.naive_ns_list:
        if left() < H.ARGS.naive_reserve:
            log(f"naive: skipping N={N}, deadline")
            break
        free()
        s = make_pa_inputs(N, P)
        ent = {"N": N}
        R["naive"].setdefault("runs", []).append(ent)
        Q, tokens, dO, Wk, Wv, Bv = s["Q"], s["tokens"], s["dO"], s["Wk"], s["Wv"], s["Bv"]
        pix, cu, maxlen = s["pix"], s["cu"], s["maxlen"]
        m = pa_model(N, P, s["nonempty"])
        # reference output from the physicsnemo kernel (autotuned config loaded from the
        # HEALDA_PIXEL_ATTN_AUTOTUNE_CACHE_DIR cache written by the pa section)
        t_ref = time.perf_counter()
        with torch.no_grad():
            s["ref_out"] = pam.pixel_attention(Q, tokens, Wk, Wv, cu, maxlen, n_kv_heads=n_kv, scale=scale,
                                               B_k=None, B_v=Bv, group_map=None)
        sync()
        ent["ref_kernel_first_call_s"] = time.perf_counter() - t_ref
        with torch.no_grad():
            ent["triton_ungrouped_fwd_same_process"] = bench(lambda: pam.pixel_attention(
                Q, tokens, Wk, Wv, cu, maxlen, n_kv_heads=n_kv, scale=scale, B_k=None, B_v=Bv, group_map=None),
                warmup=2, reps=10)
        chunk = H.ARGS.naive_chunk

        def nf(inp=(Q, tokens, Wk, Wv, Bv)):
            return naive_pixel_attention(*inp, pix, n_kv, scale, chunk=chunk)

        # correctness vs the Triton output
        try:
            if not H.ARGS.naive_fwd:
                raise RuntimeError("naive fwd skipped (--naive-fwd 0)")
            with torch.no_grad():
                o = nf()
            ent["relerr_vs_triton_fwd"] = relerr(o, s["ref_out"])
            del o
            free()
            with torch.no_grad():
                ent["fwd"] = bench(nf, warmup=1, reps=5, max_ms=3000)
            ent["fwd_rates"] = rates(m["fwd_flops"], m["fwd_min_bytes"], ent["fwd"]["median_ms"])
            log(f"naive N={N}: fwd {ent['fwd']['median_ms']:.2f} ms relerr {ent['relerr_vs_triton_fwd']:.2e}")
        except Exception as ex:
            ent["fwd_error"] = f"{type(ex).__name__}: {str(ex)[:300]}"
            log(f"naive N={N} fwd failed: {ent['fwd_error']}")
            del ex
        free()
        save()
        # fwd+bwd: autograd keeps the gathered per-token Q (n_q*d*2 = 4 KiB per token)
        est_gib = N * (64 * 32 * 2 + 64 * 4 * 4) / 2**30
        ent["fwd_bwd_est_saved_GiB"] = est_gib
        if est_gib < H.ARGS.naive_mem_cap_gib and left() > 60:
            leaves = [x.detach().clone().requires_grad_(True) for x in (Q, tokens, Wk, Wv, Bv)]

            def nfb():
                out = nf(leaves)
                return torch.autograd.grad(out, leaves, dO)

            try:
                base = peak_reset()
                ent["fwd_bwd"] = bench(nfb, warmup=1, reps=3, max_ms=3000)
                ent["fwd_bwd_mem"] = peak_gib(base)
                log(f"naive N={N}: fwd+bwd {ent['fwd_bwd']['median_ms']:.2f} ms peak {ent['fwd_bwd_mem']}")
            except Exception as ex:
                ent["fwd_bwd_error"] = f"{type(ex).__name__}: {str(ex)[:300]}"
                log(f"naive N={N} fwd+bwd failed: {ent['fwd_bwd_error'][:200]}")
                del ex
            del leaves
        else:
            ent["fwd_bwd_error"] = f"not run: estimated {est_gib:.0f} GiB of saved activations"
        free()
        save()
        # varlen (FlashAttention through torch.nn.attention.varlen)
        if vfn is not None and left() > 45 and N in [int(v) for v in H.ARGS.varlen_ns.split(",")]:
            v = ent.setdefault("varlen", {})

            def vf(inp=(Q, tokens, Wk, Wv, Bv)):
                return varlen_pixel_attention(vfn, *inp, cu, maxlen, n_kv, scale)

            try:
                with torch.no_grad():
                    o = vf()
                v["relerr_vs_triton_fwd"] = relerr(o, s["ref_out"])
                v["has_nan"] = bool(torch.isnan(o.float()).any())
                del o
                with torch.no_grad():
                    v["fwd"] = bench(vf, warmup=2, reps=10, max_ms=3000)
                log(f"varlen N={N}: fwd {v['fwd']['median_ms']:.3f} ms relerr {v['relerr_vs_triton_fwd']:.2e}")
                leaves = [x.detach().clone().requires_grad_(True) for x in (Q, tokens, Wk, Wv, Bv)]

                def vfb():
                    out = vf(leaves)
                    return torch.autograd.grad(out, leaves, dO)

                base = peak_reset()
                v["fwd_bwd"] = bench(vfb, warmup=2, reps=10, max_ms=3000)
                v["fwd_bwd_mem"] = peak_gib(base)
                log(f"varlen N={N}: fwd+bwd {v['fwd_bwd']['median_ms']:.3f} ms")
                del leaves
            except Exception as ex:
                v["error"] = f"{type(ex).__name__}: {str(ex)[:400]}"
                log(f"varlen N={N} failed: {v['error'][:300]}")
                del ex
            free()
            save()
        del s, Q, tokens, dO, pix
        free()
    if DEV == "cuda":
        R["naive"]["pa_tuner_cache_after"] = pa_cache_report()
