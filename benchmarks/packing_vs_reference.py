"""Packing (sort + cu_seqlens + group map + gathers) of ours vs PhysicsNeMo 2.2.2, same process, same inputs (GPU).

The issue's packing workload (``healda_core.bench.kernels.raw_obs``: P = 98,304 pixels, 35 % empty, lognormal
counts). Both calls build the group map, as the reference harness does. Timings alternate ours/ref rounds so
clock drift favours neither. Needs the reference wheel (nvidia_physicsnemo) on the path; prints JSON lines.

    python benchmarks/packing_vs_reference.py --ns 10000000,30000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ns", default="10000000,30000000")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "bench_ref"))
    import pnm_import  # stubs the reference's optional imports (warp, ...) that the wheel alone lacks

    pnm_import.install()
    from physicsnemo.experimental.models.healda import prepare_obs_context as ref_prepare

    from healda_core.bench import kernels as B
    from healda_core.obs.context import prepare_obs_context

    p = 98_304
    for n in (int(v) for v in a.ns.split(",")):
        raw = B.raw_obs(n, p)
        ours = lambda: prepare_obs_context(**raw, total_pixels=p)  # noqa: B023 - called in this iteration
        ref = lambda: ref_prepare(**raw, total_pixels=p, build_group_map=True)  # noqa: B023 - called in this iteration
        c1, c2 = ours(), ref()
        same = (torch.equal(c1.cu_seqlens_k, c2.cu_seqlens_k) and c1.max_seqlen_k == c2.max_seqlen_k
                and torch.equal(c1.group_map.program_ptr, c2.group_map.program_ptr)
                and torch.equal(c1.group_map.program_pixels, c2.group_map.program_pixels))
        t_ours, t_ref = [], []
        for _ in range(a.rounds):
            t_ours.append(B.time_ms(ours, reps=10)["median_ms"])
            t_ref.append(B.time_ms(ref, reps=10)["median_ms"])
        o, r = statistics.median(t_ours), statistics.median(t_ref)
        print(json.dumps({"N": n, "ours_ms": round(o, 3), "ref_ms": round(r, 3), "speedup": round(r / o, 3),
                          "rounds_ours": [round(v, 3) for v in t_ours], "rounds_ref": [round(v, 3) for v in t_ref],
                          "cu_maxlen_groupmap_equal": same}), flush=True)


if __name__ == "__main__":
    main()
