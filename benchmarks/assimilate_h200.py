"""Forward latency and end-to-end ``healda assimilate`` of the default 1.5 B model on one GPU.

Setup (not timed as part of the result): synthetic observations (AMSU-A + conventional t/u/v, ``--n-obs``
in total, over the 45 h window of one analysis) are QC'd, framed and packed at level 5 (``pack_arrays`` +
``write_packed``, what ``healda pack-obs`` does); a synthetic global invariants file becomes the level-6
static file; the default ``healda-v2`` config is initialised on the GPU (seeded) and saved as a bf16
safetensors checkpoint.

Measured:
* model forward (B = 1, T = 8, bf16 autocast, fp32 weights, ``torch.inference_mode``): median of ``--iters``
  CUDA-event timings after ``--warmup`` runs, with the observations and with none (the difference is the
  observation path), peak allocated memory; with the kernels the model dispatches to, and with
  ``HEALDA_KERNELS=off`` (pure PyTorch);
* ``python -m healda_cli assimilate`` wall time (process start, checkpoint read + hash check, packed file read,
  features, forward, de-normalisation, NetCDF write), as a subprocess.

Usage: python benchmarks/assimilate_h200.py [--n-obs 10000000] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch


def env_info() -> dict:
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0]}
    try:
        import triton

        info["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        info["triton"] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        except Exception:  # noqa: BLE001
            info["driver"] = None
    return info


def make_inputs(work: Path, n_obs: int, analysis: str) -> dict:
    from healda_core.obs.pack import pack_arrays
    from healda_core.obs.packed import write_packed
    from healda_core.static import make_static, write_static
    from tests.cli.synthetic import synthetic_raw, write_latlon_invariants

    t0 = time.perf_counter()
    raw = synthetic_raw(analysis, n_sat=int(n_obs * 0.9), n_conv=n_obs - int(n_obs * 0.9), hours=45, seed=1)
    t_s = int(np.datetime64(analysis, "s").astype(np.int64))
    res = pack_arrays(raw, [t_s], level=5, consume=True)
    del raw
    packed = work / "obs.packed.nc"
    write_packed(packed, res.packed, {})
    n_packed = res.packed.n_obs
    del res
    t_pack = time.perf_counter() - t0
    inv = write_latlon_invariants(work / "inv.nc", deg=0.5)
    fields, attrs = make_static(inv, 6)
    static = work / "static.nc"
    write_static(static, fields, 6, attrs, "benchmark")
    return {"packed": packed, "static": static, "n_obs": n_packed, "pack_s": t_pack}


def timed_forward(model, x, t, sod, doy, ctx, warmup: int, iters: int) -> tuple[list[float], float]:
    times = []
    for i in range(warmup + iters):
        if i == warmup:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            y = model(x, t, sod, doy, ctx)
        end.record()
        torch.cuda.synchronize()
        if i >= warmup:
            times.append(start.elapsed_time(end))
        del y
    return times, torch.cuda.max_memory_allocated() / 2**30


def profile_forward(model, x, t, sod, doy, ctx) -> list[dict]:
    """Top CUDA kernels of one forward (torch.profiler), by total device time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof, torch.inference_mode(), \
            torch.autocast("cuda", dtype=torch.bfloat16):
        model(x, t, sod, doy, ctx)
        torch.cuda.synchronize()
    rows = []
    for ev in prof.key_averages():
        dt = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0)
        if dt:
            rows.append({"name": ev.key[:110], "ms": round(dt / 1e3, 2), "calls": ev.count})
    rows.sort(key=lambda r: -r["ms"])
    for r in rows[:30]:
        print(f"  {r['ms']:9.2f} ms {r['calls']:5d}x  {r['name']}", file=sys.stderr, flush=True)
    return rows[:40]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-obs", type=int, default=10_000_000)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--work", default="/tmp/healda-bench")
    ap.add_argument("--out", default=None)
    ap.add_argument("--skip-torch-path", action="store_true")
    ap.add_argument("--skip-assimilate", action="store_true")
    ap.add_argument("--profile", action="store_true", help="profile the last variant's forward (top kernels)")
    ap.add_argument("--profile-variant", default=None, help="which variants --profile profiles, comma-separated (default: the last)")
    ap.add_argument("--variants", default="kernels:HEALDA_KERNELS=on",
                    help="'name:ENV=V,ENV=V;name2:...' forward variants, timed in this order; the pseudo-variable "
                         "COMPILE_BLOCKS=1 compiles whole blocks (VideoDiT.compile_blocks) first")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"env": env_info(), "n_obs_requested": args.n_obs}
    print(json.dumps(result["env"]), flush=True)

    from healda_core.checkpoint import LoadedCheckpoint, cast_state_dict, write_safetensors
    from healda_core.checkpoint.format import default_conventions
    from healda_core.model.healda import HealDA, default_config
    from healda_core.obs.context import ObsContext
    from healda_core.obs.packed import load_batch
    from healda_core.static import load_static

    inp = make_inputs(work, args.n_obs, "2024-01-02T00:00")
    result.update(n_obs=inp["n_obs"], setup_pack_s=round(inp["pack_s"], 1))
    print(f"packed {inp['n_obs']:,} obs in {inp['pack_s']:.1f} s", flush=True)

    dev = torch.device("cuda")
    cfg = default_config()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(dev):
        model = HealDA(**cfg)
    model.to(dev)  # buffers built from NumPy (calendar longitudes) are created on the CPU
    model.eval().requires_grad_(False)
    result["init_on_gpu_s"] = round(time.perf_counter() - t0, 1)
    ckpt = work / "healda-v2.safetensors"
    t0 = time.perf_counter()
    sd = cast_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()}, torch.bfloat16)
    write_safetensors(LoadedCheckpoint(sd, cfg, default_conventions(cfg), "healda-init", "bench",
                                       {"preset": "healda-v2", "source": "benchmark"}), ckpt, overwrite=True)
    del sd
    result["save_ckpt_s"] = round(time.perf_counter() - t0, 1)
    # the benchmark forward uses the same (bf16-rounded) weights as the checkpoint
    model.load_state_dict({k: v.to(torch.bfloat16).float() if v.is_floating_point() and "freqs" not in k else v
                           for k, v in model.state_dict().items()})

    t0 = time.perf_counter()
    pb = load_batch(inp["packed"], [0], device=dev)
    torch.cuda.synchronize()
    result["load_batch_s"] = round(time.perf_counter() - t0, 2)
    static = torch.as_tensor(load_static(inp["static"], 6), device=dev)
    x = static[None, :, None, :].expand(1, -1, 8, -1).contiguous()
    t = torch.zeros(1, device=dev)
    sod, doy = pb.second_of_day.float(), pb.day_of_year.float()
    ctx = pb.context
    empty = ObsContext(obs=ctx.obs[:0], float_metadata=ctx.float_metadata[:0], obs_type=ctx.obs_type[:0],
                       channel=ctx.channel[:0], platform=ctx.platform[:0],
                       cu_seqlens_k=torch.zeros_like(ctx.cu_seqlens_k), max_seqlen_k=0, group_map=None)
    result["max_obs_per_pixel"] = int(ctx.max_seqlen_k)

    import torch._inductor.config as icfg

    from healda_core.model import attention as _att
    from healda_core.model import dit as _dit

    variants = [v.split(":", 1) for v in args.variants.split(";") if v]
    if not args.skip_torch_path:
        variants.append(["pytorch", "HEALDA_KERNELS=off,HEALDA_COMPILE=0"])
    for name, envs in variants:
        saved = dict(os.environ)
        env = dict(kv.split("=", 1) for kv in envs.split(",") if kv)
        if env.pop("COMPILE_BLOCKS", "0") == "1":  # whole blocks compiled in place (irreversible: list it last)
            model.dit.compile_blocks()
        # INDUCTOR_<NAME>=V sets torch._inductor.config.<name> for this variant; compiled code is dropped so
        # every variant traces afresh under its own settings
        saved_cfg = {}
        for k in [k for k in env if k.startswith("INDUCTOR_")]:
            opt = k.removeprefix("INDUCTOR_").lower()
            saved_cfg[opt] = getattr(icfg, opt)
            setattr(icfg, opt, env.pop(k) in ("1", "true", "True"))
        torch._dynamo.reset()
        _dit._compiled_regions.cache_clear()
        _att._compiled_core.cache_clear()
        os.environ.update(env)
        try:
            t0 = time.perf_counter()
            ms, peak = timed_forward(model, x, t, sod, doy, ctx, args.warmup, args.iters)
            first_s = time.perf_counter() - t0 - sum(ms) / 1e3
            ms0, peak0 = timed_forward(model, x, t, sod, doy, empty, 1, max(2, args.iters // 2))
            result[f"forward_{name}"] = {
                "env": envs, "median_ms": round(statistics.median(ms), 1), "min_ms": round(min(ms), 1),
                "all_ms": [round(v, 1) for v in ms], "peak_gib": round(peak, 2), "warmup_s": round(first_s, 1),
                "no_obs_median_ms": round(statistics.median(ms0), 1), "no_obs_peak_gib": round(peak0, 2),
                "obs_path_ms": round(statistics.median(ms) - statistics.median(ms0), 1)}
            if args.profile and name in (args.profile_variant or variants[-1][0]).split(","):
                result[f"profile_{name}"] = profile_forward(model, x, t, sod, doy, ctx)
        except Exception as exc:  # noqa: BLE001 - record and continue
            result[f"forward_{name}"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        os.environ.clear()
        os.environ.update(saved)
        for opt, v in saved_cfg.items():
            setattr(icfg, opt, v)
        print(name, json.dumps(result[f"forward_{name}"]), flush=True)
    if args.skip_assimilate:
        print(json.dumps(result, indent=1), flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=1))
        return
    os.environ.pop("HEALDA_KERNELS", None)
    del model, pb, ctx, empty, x
    torch.cuda.empty_cache()

    out_nc = work / "analysis.nc"
    cmd = [sys.executable, "-m", "healda_cli", "assimilate", str(inp["packed"]), "--ckpt", str(ckpt), "--static",
           str(inp["static"]), "-o", str(out_nc), "-O", "--json", "--lat-lon", "1.0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if "error" in result.get("forward_kernels", {}) and "error" not in result.get("forward_pytorch", {}):
        env["HEALDA_KERNELS"] = "off"  # the kernels failed above: measure the PyTorch path end to end
        result["assimilate_kernels"] = "off"
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - t0
    result["assimilate"] = {"wall_s": round(wall, 1), "rc": proc.returncode,
                            "stderr_tail": proc.stderr[-1500:]}
    if proc.returncode == 0:
        result["assimilate"].update(json.loads(proc.stdout.strip().splitlines()[-1]))
        result["assimilate"]["output_mb"] = round(out_nc.stat().st_size / 1e6, 1)
    print(json.dumps(result, indent=1), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
