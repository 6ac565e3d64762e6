"""Launch-setting lab for the Triton kernels (GPU only): one launch setting, timed and checked.

Runs the issue's kernel workload (``healda_core.bench.kernels``: bf16, n_q=64, n_kv=2, d=32, F=32, P=98,304,
35 % empty, lognormal counts) at one N with autotuning off and ``HEALDA_KERNEL_OVERRIDE`` forcing the launch
setting, and prints one JSON line: fwd and fwd+bwd medians, and the scale-relative max error of the output
and of every gradient against the fp32 PyTorch path on the same inputs. Meant to be run once per setting in
its own process (a compiler fault that corrupts the CUDA context then costs one line, not the sweep):

    for s in num_warps=2 num_warps=4 num_warps=8; do
        HEALDA_KERNEL_OVERRIDE=$s python benchmarks/kernel_lab.py --ops pa,film --n 10000000; done

``--film-dot tf32|bf16`` forces the FiLM product precision; ``--pa-max-block-q 32`` splits the kv heads.
``--set film_bwd:num_stages=2,PROGS_PER_SM=2`` changes one kernel's default setting (repeatable; run with
``HEALDA_KERNEL_OVERRIDE=""`` so that nothing overrides it), to time the forward and backward at different settings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("HEALDA_AUTOTUNE", "off")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch


def err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def top_kernels(fn, k: int = 6) -> list:
    """CUDA time per kernel name (ms) of one ``fn()`` call, largest first."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    tot: dict[str, float] = {}
    for e in prof.events():
        if e.device_type.name == "CUDA":
            tot[e.name[:60]] = tot.get(e.name[:60], 0.0) + e.device_time / 1e3
    return sorted(([n, round(v, 3)] for n, v in tot.items()), key=lambda r: -r[1])[:k]


PROFILE = False


def host_and_stream(fn, name: str, reps: int = 20) -> dict:
    """Host time of one call (no sync: launch overhead) and the per-call time of ``reps`` back-to-back calls
    between two CUDA events (GPU-bound: launch latency hidden)."""
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    host_us = (time.perf_counter() - t0) * 1e6
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(reps):
        fn()
    e.record()
    e.synchronize()
    return {f"{name}_host_us": round(host_us, 1), f"{name}_stream_ms": round(s.elapsed_time(e) / reps, 4)}


def lab_pa(n: int, reps: int) -> dict:
    from healda_core.bench.kernels import bench_pixel_attention, pa_inputs
    from healda_core.kernels.pixel_attn_op import pixel_attention
    from healda_core.model.ragged import ragged_attention_torch

    inp = pa_inputs(n)
    cu, mx = inp["cu"], inp["maxlen"]
    rows = bench_pixel_attention(lambda q, x, wk, wv, bv: pixel_attention(q, x, wk, wv, bv, cu, mx, None), inp,
                                 "healda-triton", reps)
    leaves = [inp[k].detach().clone().requires_grad_() for k in ("q", "tokens", "wk", "wv", "bv")]
    out = pixel_attention(*leaves, cu, mx, None)
    grads = torch.autograd.grad(out, leaves, inp["dout"])
    ref_leaves = [t.detach().float().requires_grad_() for t in leaves]
    ref = ragged_attention_torch(*ref_leaves, cu, 1 / math.sqrt(32))
    ref_grads = torch.autograd.grad(ref, ref_leaves, inp["dout"].float())
    errs = {"out": err(out, ref)} | {f"d{k}": err(g, r) for k, g, r in
                                     zip(("q", "tokens", "wk", "wv", "bv"), grads, ref_grads, strict=True)}
    res = {"pa_fwd_ms": rows[0]["median_ms"], "pa_fwdbwd_ms": rows[1]["median_ms"], "pa_err": errs}
    res |= host_and_stream(lambda: pixel_attention(inp["q"], inp["tokens"], inp["wk"], inp["wv"], inp["bv"], cu, mx,
                                                   None), "pa_fwd")
    if PROFILE:
        res["pa_profile"] = top_kernels(lambda: torch.autograd.grad(pixel_attention(*leaves, cu, mx, None), leaves,
                                                                    inp["dout"]))
    return res


def lab_film(n: int, reps: int, dot: str) -> dict:
    from healda_core.bench.kernels import FILM, bench_film, film_inputs
    from healda_core.kernels import film_op
    from healda_core.model.film import ObsTokenizerFiLM

    if dot != "auto":
        film_op._prec = lambda device, out_dtype: dot if device.type == "cuda" else "ieee"
    x = film_inputs(n)
    mod = ObsTokenizerFiLM(**FILM).cuda()
    params = list(mod.parameters())

    def fused(*a):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return mod(*a)

    rows = bench_film(fused, params, x, "healda-triton", reps)
    args = [x[k] for k in ("obs", "float_metadata", "obs_type", "channel", "platform")]
    out = fused(*args)
    grads = torch.autograd.grad(out, params, x["dout"].to(out.dtype))
    ref = mod.forward_torch(*args)
    ref_grads = torch.autograd.grad(ref, params, x["dout"])
    names = [k for k, _ in mod.named_parameters()]
    errs = {"out": err(out, ref)} | {k: err(g, r) for k, g, r in zip(names, grads, ref_grads, strict=True)}
    res = {"film_fwd_ms": rows[0]["median_ms"], "film_fwdbwd_ms": rows[1]["median_ms"], "film_err": errs}
    if PROFILE:
        res["film_profile"] = top_kernels(lambda: torch.autograd.grad(fused(*args), params, x["dout"].to(out.dtype)))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--ops", default="pa,film")
    p.add_argument("--film-dot", default="auto", choices=("auto", "tf32", "bf16"),
                   help="FiLM product precision (auto: the shipped choice, bf16 operands for bf16 tokens)")
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--pa-max-block-q", type=int, default=None,
                   help="cap the query rows per program (32: one kv head per launch, no block-diagonal tile)")
    p.add_argument("--profile", action="store_true", help="also list the CUDA kernels of one fwd+bwd by time")
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms(True)")
    p.add_argument("--set", action="append", default=[], metavar="KERNEL:K=V,...",
                   help="change one tuner's default setting, e.g. film_bwd:num_stages=2")
    a = p.parse_args()
    if a.set:
        from healda_core.kernels import film_op, pixel_attn_op  # noqa: F401 - registers the tuners
        from healda_core.kernels.tuning import TUNERS

        for item in a.set:
            name, kv = item.split(":", 1)
            TUNERS[name].default = {**TUNERS[name].default,
                                    **{k: int(v) for k, v in (x.split("=") for x in kv.split(","))}}
    global PROFILE
    PROFILE = a.profile
    if a.deterministic:
        torch.use_deterministic_algorithms(True)
    if a.pa_max_block_q:
        from healda_core.kernels import pixel_attn_op

        pixel_attn_op.MAX_BLOCK_Q = a.pa_max_block_q
    res = {"override": os.environ.get("HEALDA_KERNEL_OVERRIDE"), "set": a.set, "film_dot": a.film_dot, "n": a.n,
           "pa_max_block_q": a.pa_max_block_q,
           "DISABLE_MMA_V3": os.environ.get("DISABLE_MMA_V3"), "deterministic": a.deterministic}
    t0 = time.perf_counter()
    for op in a.ops.split(","):
        try:
            res |= lab_pa(a.n, a.reps) if op == "pa" else lab_film(a.n, a.reps, a.film_dot)
        except Exception as exc:  # noqa: BLE001 - record and go on to the next op
            res[f"{op}_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    print("LAB " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
