"""Kernel benchmarks: the Triton kernels against the PyTorch paths (``healda bench kernels``).

Workload (the kernels issue's): P = 98,304 pixels (B=1, T=8, level 5), 35% empty, lognormal(0, 1) weights
capped at 20× the median, N tokens drawn multinomially; n_q=64, n_kv=2, d=32, F=32; bf16. Times are
medians of CUDA-event timings after warm-up (and after autotuning). Rates: tokens/s, executed TFLOP/s and
minimum-traffic GB/s, and the fraction of the H200 roofline (783 TFLOP/s bf16, 4.24 TB/s).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable

import torch

from healda_core.kernels.tuning import event_ms
from healda_core.tune import counts_for

PEAK_TFLOPS = 783.0
PEAK_TBPS = 4.24
LAYOUT = dict(n_q=64, n_kv=2, d=32, f=32)
FILM = dict(meta_dim=50, out_dim=32, n_embed=1024, obs_type_embed_dim=4, channel_embed_dim=16, platform_embed_dim=8,
            hidden_dim=64)


def time_ms(fn: Callable[[], object], warmup: int = 2, reps: int = 10, max_ms: float = 3000.0) -> dict:
    """Median / min of CUDA-event timings after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    budget = max_ms
    for _ in range(reps):
        times.append(event_ms(fn))
        budget -= times[-1]
        if budget < 0 and len(times) >= 3:
            break
    return {"median_ms": statistics.median(times), "min_ms": min(times), "n": len(times)}


def roofline(flops: float, nbytes: float, ms: float) -> dict:
    s = ms * 1e-3
    floor_ms = max(flops / (PEAK_TFLOPS * 1e12), nbytes / (PEAK_TBPS * 1e12)) * 1e3
    return {"TFLOPs": flops / s / 1e12, "GBps": nbytes / s / 1e9, "floor_ms": floor_ms,
            "roofline_frac": floor_ms / ms}


def pa_model(n: int, p: int, p_nonempty: int, n_q=64, d=32, f=32) -> dict:
    """Executed FLOPs of the absorbed algorithm and minimum bytes (bf16 tensors, fp32 LSE)."""
    fwd_flops = n * 4 * n_q * f + p_nonempty * 4 * n_q * d * f
    bwd_flops = n * 12 * n_q * f + p_nonempty * 10 * n_q * d * f
    qb = n_q * d * 2
    fwd_bytes = n * f * 2 + p_nonempty * qb + p * qb + p * n_q * 4 + (p + 1) * 4
    bwd_bytes = n * f * 2 * 2 + p_nonempty * (3 * qb + n_q * 4) + p * qb + (p + 1) * 4
    return {"fwd_flops": fwd_flops, "bwd_flops": bwd_flops, "fwd_bytes": fwd_bytes, "bwd_bytes": bwd_bytes}


def film_model(n: int, c: dict = FILM) -> dict:
    m, h, f = c["meta_dim"], c["hidden_dim"], c["out_dim"]
    cond = m + c["obs_type_embed_dim"] + c["channel_embed_dim"] + c["platform_embed_dim"]
    fwd_flops = n * (2 * cond * h + 2 * h * 2 * f + 12 * h + 3 * f)
    in_bytes = n * (4 + 4 * m + 3 * 8)
    return {"fwd_flops": fwd_flops, "bwd_flops": 2 * fwd_flops, "fwd_bytes": in_bytes + n * f * 2,
            "bwd_bytes": in_bytes + n * f * 2}


def pa_inputs(n: int, p: int = 98_304, seed: int = 0, device: str = "cuda") -> dict:
    counts = counts_for(n, p, seed)
    ct = torch.as_tensor(counts, device=device)
    cu = torch.zeros(p + 1, dtype=torch.int32, device=device)
    cu[1:] = ct.cumsum(0).to(torch.int32)
    g = torch.Generator(device=device).manual_seed(seed + 7)
    bf = torch.bfloat16
    kd, f = LAYOUT["n_kv"] * LAYOUT["d"], LAYOUT["f"]
    bound = 1 / math.sqrt(f)
    return dict(
        counts=counts, cu=cu, maxlen=int(counts.max()), nonempty=int((counts > 0).sum()),
        tokens=torch.randn(n, f, device=device, dtype=bf, generator=g),
        q=torch.randn(p, LAYOUT["n_q"], LAYOUT["d"], device=device, dtype=bf, generator=g),
        dout=torch.randn(p, LAYOUT["n_q"], LAYOUT["d"], device=device, dtype=bf, generator=g),
        wk=(torch.rand(kd, f, device=device, generator=g) * 2 - 1) * bound,
        wv=(torch.rand(kd, f, device=device, generator=g) * 2 - 1) * bound,
        bv=(torch.rand(kd, device=device, generator=g) * 2 - 1) * bound)


def _row(op: str, impl: str, n: int, pas: str, t: dict, flops: float, nbytes: float) -> dict:
    r = {"op": op, "impl": impl, "N": n, "pass": pas, **t, "tokens_per_s": n / (t["median_ms"] * 1e-3)}
    r.update(roofline(flops, nbytes, t["median_ms"]))
    return r


def bench_pixel_attention(fn: Callable, inp: dict, impl: str, reps: int = 10) -> list[dict]:
    """fwd and fwd+bwd rows for ``fn(q, tokens, wk, wv, bv)`` on the prepared inputs."""
    n, p = inp["tokens"].shape[0], inp["q"].shape[0]
    m = pa_model(n, p, inp["nonempty"])
    leaves = [inp[k].detach().clone().requires_grad_() for k in ("q", "tokens", "wk", "wv", "bv")]

    def fwd():
        with torch.no_grad():
            return fn(*leaves)

    def fwd_bwd():
        return torch.autograd.grad(fn(*leaves), leaves, inp["dout"])

    rows = [_row("pixel_attention", impl, n, "fwd", time_ms(fwd, reps=reps), m["fwd_flops"], m["fwd_bytes"])]
    rows.append(_row("pixel_attention", impl, n, "fwd+bwd", time_ms(fwd_bwd, reps=reps),
                     m["fwd_flops"] + m["bwd_flops"], m["fwd_bytes"] + m["bwd_bytes"]))
    return rows


def film_inputs(n: int, seed: int = 11, device: str = "cuda") -> dict:
    g = torch.Generator(device=device).manual_seed(seed)
    return dict(obs=torch.randn(n, device=device, generator=g),
                float_metadata=torch.randn(n, FILM["meta_dim"], device=device, generator=g),
                obs_type=torch.randint(0, 1024, (n,), device=device, generator=g),
                channel=torch.randint(0, 1024, (n,), device=device, generator=g),
                platform=torch.randint(0, 1024, (n,), device=device, generator=g),
                dout=torch.randn(n, FILM["out_dim"], device=device, generator=g))


def bench_film(fn: Callable, params: list, x: dict, impl: str, reps: int = 10) -> list[dict]:
    """fwd and fwd+bwd rows for ``fn(obs, meta, type, chan, plat)`` (gradients of ``params``)."""
    n = x["obs"].shape[0]
    m = film_model(n)
    args = [x[k] for k in ("obs", "float_metadata", "obs_type", "channel", "platform")]

    def fwd():
        with torch.no_grad():
            return fn(*args)

    with torch.no_grad():  # the output gradient in the tokens' dtype, cast once outside the timed calls
        dout = x["dout"].to(fn(*args).dtype)

    def fwd_bwd():
        return torch.autograd.grad(fn(*args), params, dout)

    return [_row("film_tokenizer", impl, n, "fwd", time_ms(fwd, reps=reps), m["fwd_flops"], m["fwd_bytes"]),
            _row("film_tokenizer", impl, n, "fwd+bwd", time_ms(fwd_bwd, reps=reps), m["fwd_flops"] + m["bwd_flops"],
                 m["fwd_bytes"] + m["bwd_bytes"])]


def raw_obs(n: int, p: int = 98_304, seed: int = 0, device: str = "cuda") -> dict:
    counts = counts_for(n, p, seed)
    g = torch.Generator(device=device).manual_seed(seed + 1)
    pix = torch.repeat_interleave(torch.arange(p, device=device), torch.as_tensor(counts, device=device))
    flat = pix[torch.randperm(n, device=device, generator=g)]  # int64, unsorted (as a datapipe delivers)
    x = film_inputs(n, seed, device)
    x.pop("dout")
    x["flat_idx"] = flat
    return x


def bench_packing(fn: Callable, raw: dict, p: int, impl: str, reps: int = 10) -> list[dict]:
    n = raw["obs"].shape[0]
    nbytes = n * 2 * (4 + 4 + 4 * FILM["meta_dim"] + 3 * 8 + 4 + 4)  # keys twice, order, gathers in+out
    t = time_ms(lambda: fn(**raw, total_pixels=p), reps=reps)
    return [_row("packing", impl, n, "prepare_obs_context", t, 0.0, nbytes)]


def run(ns: Iterable[int] = (10_000_000, 30_000_000), ops: Iterable[str] = ("pixel_attention", "film", "packing"),
        torch_paths: bool = True, torch_max_n: int = 10_000_000, reps: int = 10,
        progress: Callable[[str], None] | None = None) -> list[dict]:
    """Benchmark rows (one dict per op × implementation × N × pass). Needs a CUDA device."""
    from healda_core.errors import AcceleratorError

    if not torch.cuda.is_available():
        raise AcceleratorError("`bench kernels` needs a CUDA GPU (none is visible to PyTorch)")
    from healda_core.kernels import kernels_enabled

    if not kernels_enabled(torch.device("cuda")):
        raise AcceleratorError("the Triton kernels are disabled or triton is missing (HEALDA_KERNELS / triton)")
    from healda_core.kernels.pixel_attn_op import pixel_attention as pa_kernel
    from healda_core.model.film import ObsTokenizerFiLM
    from healda_core.model.ragged import ragged_attention_torch
    from healda_core.obs.context import prepare_obs_context

    say = progress or (lambda s: None)
    ops = set(ops)
    rows: list[dict] = []
    for n in ns:
        if "pixel_attention" in ops:
            inp = pa_inputs(n)
            cu, mx = inp["cu"], inp["maxlen"]
            say(f"pixel attention N={n:,}")
            rows += bench_pixel_attention(lambda q, x, wk, wv, bv, cu=cu, mx=mx: pa_kernel(q, x, wk, wv, bv, cu, mx, None), inp,
                                          "healda-triton", reps)
            if torch_paths and n <= torch_max_n:
                rows += bench_pixel_attention(
                    lambda q, x, wk, wv, bv, cu=cu: ragged_attention_torch(q, x, wk, wv, bv, cu, 1 / math.sqrt(32)), inp,
                    "pytorch", max(3, reps // 3))
            del inp
            torch.cuda.empty_cache()
        if "film" in ops:
            x = film_inputs(n)
            mod = ObsTokenizerFiLM(**FILM).cuda()
            say(f"FiLM tokenizer N={n:,}")

            def fused(*a, mod=mod):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return mod(*a)

            rows += bench_film(fused, list(mod.parameters()), x, "healda-triton", reps)
            if torch_paths and n <= torch_max_n:
                def eager(*a, mod=mod):
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        return mod.forward_torch(*a)

                rows += bench_film(eager, list(mod.parameters()), x, "pytorch", max(3, reps // 3))
            del x, mod
            torch.cuda.empty_cache()
        if "packing" in ops:
            raw = raw_obs(n)
            say(f"packing N={n:,}")
            rows += bench_packing(prepare_obs_context, raw, 98_304, "healda-triton", reps)
            if torch_paths and n <= torch_max_n:
                from healda_core.kernels import use_kernels

                with use_kernels(False):
                    rows += bench_packing(prepare_obs_context, raw, 98_304, "pytorch", max(3, reps // 3))
            del raw
            torch.cuda.empty_cache()
    return rows
