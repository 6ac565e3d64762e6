"""Forward latency of the reference PhysicsNeMo 2.2.2 ``VideoHealDA`` (default 1.5 B config) on one GPU.

Measurement tooling only, for the side-by-side comparison in docs/benchmarks.md ("Model forward / assimilate"):
the same workload as ``tools/bench_ref`` (B = 1, T = 8, 10 M observations over P = 98,304 level-5 pixels, 35 %
empty, lognormal counts, the reference's own ``prepare_obs_context``), bf16 autocast, ``torch.no_grad``, eval
mode; medians of CUDA-event timings after warm-up. The reference's pixel-attention autotuner is limited to two
configs (as ``tools/bench_ref`` does outside its ``pa`` section) so the warm-up stays within a device call.

Needs ``nvidia-physicsnemo==2.2.2`` importable (``benchmarks/gpu_setup.sh reference``).

    python benchmarks/reference_forward_h200.py --n-obs 10000000 --iters 9 --out ref_forward.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "bench_ref"))

import bench_healda_ref as H  # noqa: E402  (installs the reference's import stand-ins)
import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-obs", type=int, default=10_000_000)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=9)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import triton
    from physicsnemo.experimental.models.healda import VideoHealDA, prepare_obs_context
    from physicsnemo.experimental.models.healda.kernels import pixel_attention as pam

    two = [triton.Config({"TILE_K": 64}, num_warps=4, num_stages=2),
           triton.Config({"TILE_K": 32}, num_warps=4, num_stages=2)]
    for t in (pam._pixel_attn_gqa_fwd, pam._pixel_attn_gqa_bwd):
        t.configs = two
    H.pnm_import.patch_hpx_grid()
    dev = "cuda"
    T, X, P = 8, 12 * 4**6, 8 * 12 * 4**5
    _, raw = H.make_obs(args.n_obs, P, meta_dim=50, seed=0, device=dev)
    ctx = prepare_obs_context(**raw, total_pixels=P, build_group_map=True)
    del raw
    g = torch.Generator(device=dev)
    g.manual_seed(5)
    x = torch.randn(1, 2, T, X, device=dev, generator=g)
    t = torch.zeros(1, device=dev)
    sod = torch.rand(1, T, device=dev, generator=g) * 86400
    doy = torch.rand(1, T, device=dev, generator=g) * 365
    with torch.device(dev):
        model = VideoHealDA().to(dev).eval()
    res = {"params": sum(p.numel() for p in model.parameters()), "n_obs": args.n_obs,
           "max_seqlen_k": int(ctx.max_seqlen_k), "torch": torch.__version__, "triton": triton.__version__,
           "gpu": torch.cuda.get_device_name()}

    def fwd():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            return model(x, t, sod, doy, ctx)

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        fwd()
    torch.cuda.synchronize()
    res["warmup_s"] = round(time.perf_counter() - t0, 1)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fwd()
        e.record()
        e.synchronize()
        times.append(round(s.elapsed_time(e), 1))
    res |= {"median_ms": statistics.median(times), "min_ms": min(times), "all_ms": times,
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    print("reference_forward", json.dumps(res), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
