"""Where a single forward+backward call of a kernel op spends its time: host versus GPU (GPU only).

Wraps the ops' launch functions (``pixel_attn_op._fwd_launch`` / ``_bwd_launch``, ``film_op._fwd_launch`` /
``_bwd_launch``) so that each records a CUDA event and a host timestamp just before and just after it, then times
single fwd+bwd calls the way ``healda bench kernels`` does (CUDA events around one call, synchronised before).
For each event it prints the host time (ms since the call began) and the GPU time (ms since the start event
ran). ``gpu_idle_before_bwd`` = GPU time of "bwd launch begins" minus GPU time of "fwd launch ends": positive
means the GPU finished the forward and waited for the host to reach the backward's launch.

    python benchmarks/host_timeline.py --ops pa,film --n 10000000 [--cprofile 30]

``--cprofile K`` also prints the K functions with the most host time (cProfile, 100 calls of each fwd+bwd, and of
the forward alone in grad mode by cumulative time); ``--no-gc`` runs with Python's garbage collector off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HEALDA_AUTOTUNE", "off")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

MARKS: list = []


def _wrap(mod, name: str, tag: str) -> None:
    inner = getattr(mod, name)

    def wrapped(*a, **k):  # noqa: ANN002, ANN003, ANN202
        _mark(f"{tag}_begin")
        r = inner(*a, **k)
        _mark(f"{tag}_end")
        return r

    setattr(mod, name, wrapped)


def _mark(tag: str) -> None:
    ev = torch.cuda.Event(enable_timing=True)
    ev.record()
    MARKS.append((tag, time.perf_counter(), ev))


PROFILE_TOP = 0


def host_profile(fn, tag: str, calls: int = 100, sort: str = "tottime") -> None:
    """Print the ``PROFILE_TOP`` functions with the most host time (``sort``: own or cumulative) over ``calls``
    calls of ``fn``."""
    import cProfile
    import pstats

    torch.cuda.synchronize()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(calls):
        fn()
        torch.cuda.synchronize()
    pr.disable()
    print(f"--- cProfile {tag} ({calls} calls, {sort})", flush=True)
    pstats.Stats(pr, stream=sys.stdout).sort_stats(sort).print_stats(PROFILE_TOP)


def timeline(fn, reps: int = 10) -> dict:
    """Median host and GPU times (ms from the call's start) of every mark, over ``reps`` single calls."""
    fn()
    fn()
    torch.cuda.synchronize()
    rows: dict[str, list] = {}
    for _ in range(reps):
        MARKS.clear()
        torch.cuda.synchronize()
        _mark("start")
        fn()
        _mark("end")
        torch.cuda.synchronize()
        t0, e0 = MARKS[0][1], MARKS[0][2]
        for tag, t, ev in MARKS:
            rows.setdefault(tag, []).append(((t - t0) * 1e3, e0.elapsed_time(ev)))
    med = {tag: [round(statistics.median(v[0] for v in vals), 4), round(statistics.median(v[1] for v in vals), 4)]
           for tag, vals in rows.items()}
    res = {"host_gpu_ms": med}
    if "fwd_end" in med and "bwd_begin" in med:
        res["gpu_idle_before_bwd"] = round(med["bwd_begin"][1] - med["fwd_end"][1], 4)
        res["gpu_idle_before_fwd"] = round(med["fwd_begin"][1], 4)
        res["after_bwd_kernel"] = round(med["end"][1] - med["bwd_end"][1], 4)
    return res


def run_pa(n: int) -> dict:
    from healda_core.bench.kernels import pa_inputs
    from healda_core.kernels import pixel_attn_op as op

    _wrap(op, "_fwd_launch", "fwd")
    _wrap(op, "_bwd_launch", "bwd")
    inp = pa_inputs(n)
    cu, mx = inp["cu"], inp["maxlen"]
    leaves = [inp[k].detach().clone().requires_grad_() for k in ("q", "tokens", "wk", "wv", "bv")]

    def fwd_bwd():
        return torch.autograd.grad(op.pixel_attention(*leaves, cu, mx, None), leaves, inp["dout"])

    def fwd():
        with torch.no_grad():
            return op.pixel_attention(*leaves, cu, mx, None)

    res = {"pa_fwd_bwd": timeline(fwd_bwd), "pa_fwd": timeline(fwd)}
    if PROFILE_TOP:
        host_profile(fwd_bwd, "pixel attention fwd+bwd")
        host_profile(lambda: op.pixel_attention(*leaves, cu, mx, None), "pixel attention fwd, grad mode",
                     sort="cumulative")
    return res


def run_film(n: int) -> dict:
    from healda_core.bench.kernels import FILM, film_inputs
    from healda_core.kernels import film_op as op
    from healda_core.model.film import ObsTokenizerFiLM

    _wrap(op, "_fwd_launch", "fwd")
    _wrap(op, "_bwd_launch", "bwd")
    x = film_inputs(n)
    mod = ObsTokenizerFiLM(**FILM).cuda()
    args = [x[k] for k in ("obs", "float_metadata", "obs_type", "channel", "platform")]
    params = list(mod.parameters())
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        dout = x["dout"].to(mod(*args).dtype)

    def fwd_bwd():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = mod(*args)
        return torch.autograd.grad(out, params, dout)

    res = {"film_fwd_bwd": timeline(fwd_bwd)}
    if PROFILE_TOP:
        host_profile(fwd_bwd, "FiLM fwd+bwd")

        def fwd_grad():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return mod(*args)

        host_profile(fwd_grad, "FiLM fwd, grad mode", sort="cumulative")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", default="pa,film")
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--cprofile", type=int, default=0, metavar="K")
    ap.add_argument("--no-gc", action="store_true", help="disable Python's garbage collector (its pauses)")
    a = ap.parse_args()
    if a.no_gc:
        import gc

        gc.disable()
    global PROFILE_TOP
    PROFILE_TOP = a.cprofile
    res: dict = {"n": a.n, "torch": torch.__version__, "gc": not a.no_gc}
    for o in a.ops.split(","):
        res |= {"pa": run_pa, "film": run_film}[o](a.n)
    print("TIMELINE " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
