"""Model forward of the default 1.5 B HealDA, ours and PhysicsNeMo 2.2.2 ``VideoHealDA``, same process (GPU).

Workload: B = 1, T = 8, ``--n-obs`` observations over the P = 98,304 level-5 pixels (35 % empty, lognormal
counts: ``healda_core.bench.kernels.raw_obs``, the kernel benchmark's generator); both models get the same raw
observations and pack them with their own ``prepare_obs_context``. bf16 autocast over fp32 weights, no autograd,
eval mode, seeded random weights; medians of CUDA-event timings after ``--warmup`` calls, peak allocated memory.

Ours runs with ``--compile``: ``eager``, ``regions`` (each block's dense regions compiled: the default inference
path) or ``blocks`` (whole blocks compiled with Inductor's coordinate-descent tuning: what ``healda assimilate``
runs under ``HEALDA_COMPILE=tuned``). The spatial-attention backend is the user's setting (``HEALDA_SDPA``;
FlashAttention-3 when ``healda[fa3]`` is installed on a Hopper GPU, else cuDNN). The reference's
pixel-attention autotuner is limited to two configs so that its warm-up stays short.

``--fp8`` times ours with FP8 GEMMs in the blocks (``healda_core.model.fp8.to_fp8``, what ``healda assimilate
--fp8`` runs) and checks its accuracy on the same inputs: the adaLN modulation weights are first drawn
N(0, 0.2²) like the reference fixture's (the DiT initialisation zeroes them, which makes every block the
identity and hides any GEMM error), then the eager fp32 and eager bf16 forwards are kept, and the max and RMS
differences of the FP8 output to each (normalised units; ``bf16_vs_fp32`` for scale) go to ``accuracy``.

    python benchmarks/forward.py --out forward.json                      # ours (blocks) and the reference
    python benchmarks/forward.py --impl ours --compile regions --out forward_regions.json
    python benchmarks/forward.py --impl ours --fp8 --out forward_fp8.json # FP8 GEMMs, and their accuracy
    python benchmarks/forward.py --smoke --out /tmp/fwd.json             # tiny model on the CPU, ours only
    python benchmarks/forward.py --smoke --fp8 --out /tmp/fwd.json       # the same with the FP8 reference arithmetic
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "reference"))

import torch


def timed(fn, warmup: int, iters: int, cuda: bool) -> dict:
    """Median, min and every time (ms) of ``iters`` calls after ``warmup``, and the peak allocated GiB."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    first_s = time.perf_counter() - t0
    from healda_core.kernels.tuning import event_ms

    def wall_ms(fn) -> float:
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    times = [(event_ms if cuda else wall_ms)(fn) for _ in range(iters)]
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1),
            "all_ms": [round(v, 1) for v in times], "warmup_s": round(first_s, 1),
            "peak_gib": None if peak is None else round(peak, 2)}


def differences(y: torch.Tensor, ref: torch.Tensor) -> dict:
    """Max and RMS of ``y - ref`` and the RMS of ``ref`` (float32, the model's normalised units)."""
    d = y.float() - ref.float()
    return {"max_abs": float(d.abs().max()), "rms": float(d.square().mean().sqrt()),
            "ref_rms": float(ref.float().square().mean().sqrt())}


def modulated(model: torch.nn.Module) -> None:
    """Draw every adaLN modulation linear (blocks and detokenizer) N(0, 0.2²), weights and biases, seeded."""
    g = torch.Generator().manual_seed(3)
    for name, p in model.named_parameters():
        if "modulation" in name:
            p.data.copy_(torch.randn(p.shape, generator=g) * 0.2)


def ours(a: argparse.Namespace, raw: dict, dev: torch.device) -> dict:
    """Our forward under ``a.compile`` (with ``a.fp8``: FP8 GEMMs, and their accuracy)."""
    from healda_core.bench.model import config_for
    from healda_core.model.attention import spatial_attention_backend
    from healda_core.model.compile_policy import inference_compile
    from healda_core.model.fp8 import swap_linears, to_fp8
    from healda_core.model.healda import HealDA
    from healda_core.obs.context import prepare_obs_context

    torch.manual_seed(0)
    with torch.device(dev):
        model = HealDA(**config_for(a.preset, a.layers))
    model.to(dev).eval().requires_grad_(False)
    b, t = 1, model.time_length
    ctx = prepare_obs_context(**raw, total_pixels=b * t * model.npix_model)
    g = torch.Generator(device=dev).manual_seed(5)
    x = torch.randn(b, model.in_channels, t, model.npix_in, device=dev, generator=g)
    tt = torch.zeros(b, device=dev)
    sod = torch.rand(b, t, device=dev, generator=g) * 86400
    doy = torch.rand(b, t, device=dev, generator=g) * 365

    def eager(amp: bool) -> torch.Tensor:
        with inference_compile(False), torch.inference_mode(), \
                torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            return model(x, tt, sod, doy, ctx).float().cpu()

    refs = {}
    if a.fp8:
        modulated(model)
        refs = {"fp32": eager(False), "bf16": eager(dev.type == "cuda")}  # the CPU's default path is fp32
        if dev.type == "cuda":
            to_fp8(model)
        else:
            swap_linears(model)  # the FP8 reference arithmetic (to_fp8 refuses the CPU)
    if a.compile == "blocks":
        model.dit.compile_blocks(options={"coordinate_descent_tuning": True})
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32

    def fwd():
        with inference_compile(a.compile == "regions"), torch.inference_mode(), \
                torch.autocast(dev.type, dtype=dtype, enabled=dev.type == "cuda"):
            return model(x, tt, sod, doy, ctx)

    res = {"impl": "healda", "compile": a.compile, "attention": spatial_attention_backend(dev),
           "precision": "fp8" if a.fp8 else "bf16",
           "params": sum(p.numel() for p in model.parameters()), "max_seqlen_k": int(ctx.max_seqlen_k)}
    res |= timed(fwd, a.warmup, a.iters, dev.type == "cuda")
    if a.fp8:
        y = fwd().float().cpu()
        res["accuracy"] = {"fp8_vs_bf16": differences(y, refs["bf16"]), "fp8_vs_fp32": differences(y, refs["fp32"]),
                           "bf16_vs_fp32": differences(refs["bf16"], refs["fp32"])}
        print("accuracy", json.dumps(res["accuracy"]), file=sys.stderr, flush=True)
    return res


def reference(a: argparse.Namespace, raw: dict, dev: torch.device) -> dict:
    """PhysicsNeMo 2.2.2 ``VideoHealDA()`` (needs ``nvidia-physicsnemo==2.2.2`` importable)."""
    import harness

    harness.install()  # the reference's import stand-ins
    from physicsnemo.experimental.models.healda import VideoHealDA, prepare_obs_context

    harness.limit_pa_autotune()
    harness.patch_hpx_grid()
    t, x_pix, p = 8, 12 * 4**6, 8 * 12 * 4**5
    ctx = prepare_obs_context(**raw, total_pixels=p, build_group_map=True)
    g = torch.Generator(device=dev).manual_seed(5)
    x = torch.randn(1, 2, t, x_pix, device=dev, generator=g)
    tt = torch.zeros(1, device=dev)
    sod = torch.rand(1, t, device=dev, generator=g) * 86400
    doy = torch.rand(1, t, device=dev, generator=g) * 365
    torch.manual_seed(0)
    with torch.device(dev):
        model = VideoHealDA().to(dev).eval()

    def fwd():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            return model(x, tt, sod, doy, ctx)

    res = {"impl": "physicsnemo-2.2.2", "params": sum(p.numel() for p in model.parameters()),
           "max_seqlen_k": int(ctx.max_seqlen_k)}
    return res | timed(fwd, a.warmup, a.iters, True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--impl", choices=("both", "ours", "reference"), default="both")
    ap.add_argument("--compile", choices=("eager", "regions", "blocks"), default="blocks")
    ap.add_argument("--preset", default="healda-v2")
    ap.add_argument("--layers", type=int, default=None, help="num_layers override (the preset has 32)")
    ap.add_argument("--n-obs", type=int, default=10_000_000)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=9)
    ap.add_argument("--fp8", action="store_true", help="ours with FP8 GEMMs in the blocks, and their accuracy")
    ap.add_argument("--smoke", action="store_true", help="tiny model and 2,000 obs on the CPU, ours only, eager")
    ap.add_argument("--out", type=Path, default=None, help="JSON result file")
    a = ap.parse_args(argv)
    if a.smoke:
        a.impl, a.compile, a.preset, a.n_obs, a.warmup, a.iters = "ours", "eager", "healda-tiny", 2000, 1, 1
    from healda_core.bench.env import env_info
    from healda_core.bench.kernels import raw_obs

    dev = torch.device("cuda" if torch.cuda.is_available() and not a.smoke else "cpu")
    result: dict = {"env": env_info(), "n_obs": a.n_obs}
    p = 98_304 if not a.smoke else None
    if a.impl in ("both", "ours"):
        from healda_core.bench.model import config_for
        from healda_core.model.healda import HealDA

        if p is None:  # the tiny preset's pixel count
            with torch.device("meta"):
                m = HealDA(**config_for(a.preset, a.layers))
            p = m.time_length * m.npix_model
        raw = raw_obs(a.n_obs, p, device=dev.type)
        result["ours"] = ours(a, raw, dev)
        print("ours", json.dumps(result["ours"]), file=sys.stderr, flush=True)
        del raw
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    if a.impl in ("both", "reference"):
        raw = raw_obs(a.n_obs, 98_304, device="cuda")
        result["reference"] = reference(a, raw, dev)
        print("reference", json.dumps(result["reference"]), file=sys.stderr, flush=True)
    if "ours" in result and "reference" in result:
        result["speedup"] = round(result["reference"]["median_ms"] / result["ours"]["median_ms"], 3)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(a.out)
    print(json.dumps({k: v for k, v in result.items() if k != "env"}), flush=True)
    return result


if __name__ == "__main__":
    main()
