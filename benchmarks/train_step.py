"""One HealDA training step at the default 1.5 B configuration on one GPU: step time, peak memory, MFU.

Default: preset healda-v2 (hidden 1536 × 32 layers), B=1, T=8, 10 M observations, selective activation
checkpointing (attention outputs saved, the rest recomputed), bf16 autocast over fp32 master weights,
fused AdamW with the recipe's hyper-parameters, Huber loss and gradient clipping — the same pieces
``healda train`` uses. The reference PhysicsNeMo step needs ≈ 464 GiB and ≈ 4.35 s (extrapolated); the goal
is ≤ 141 GB and ≤ 5.0 s on one H200.

MFU = model FLOPs per step / step time / peak dense bf16 FLOP/s (``--peak-tflops``, 989 for H100/H200 SXM).
Model FLOPs are 3 × the forward FLOPs counted by ``torch.utils.flop_counter`` (matmuls and SDPA; the
recomputation of checkpointing is *not* counted, as is usual for MFU; the ragged cross-attention kernel and
element-wise ops are not counted either, so MFU is slightly understated). An analytic estimate is also printed.

Usage::

    python benchmarks/train_step.py                 # the real thing (CUDA)
    python benchmarks/train_step.py --smoke         # tiny model on the CPU: checks the script runs
    python benchmarks/train_step.py --ac full --steps 20 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="healda-v2")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--n-obs", type=int, default=10_000_000)
    p.add_argument("--ac", choices=("none", "full", "selective"), default="selective")
    p.add_argument("--no-bf16", action="store_true", help="disable bf16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile every DiT block (VideoDiT.compile_blocks)")
    p.add_argument("--analytic-flops", action="store_true",
                   help="MFU from the analytic FLOP count (skips the FlopCounterMode forward)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="peak dense bf16 TFLOP/s of the device")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--smoke", action="store_true", help="tiny model, few obs, 2 steps (CPU check)")
    p.add_argument("--json", action="store_true", help="one JSON line on stdout")
    p.add_argument("--out", type=Path, default=None, help="also write the result to this JSON file")
    a = p.parse_args(argv)
    if a.smoke:
        a.preset, a.n_obs, a.steps, a.warmup = "healda-tiny", 2000, 1, 1
    return a


def build(a: argparse.Namespace):
    from healda_core.distributed.activation_checkpoint import apply_activation_checkpointing
    from healda_core.model.healda import HealDA
    from healda_core.presets import preset_config
    from healda_core.train.config import OptimSection
    from healda_core.train.optim import build_optimizer

    cfg = {**preset_config(a.preset), "time_length": a.frames}
    dev = torch.device(a.device)
    torch.manual_seed(0)
    with dev:
        model = HealDA(**cfg)
    apply_activation_checkpointing(model, a.ac)
    opt = build_optimizer(model, OptimSection())
    if a.compile:
        model.dit.compile_blocks()
    fwd = model
    return model, fwd, opt, cfg


def make_batch(model, a: argparse.Namespace) -> tuple:
    from healda_core.obs.context import prepare_obs_context

    dev = next(model.parameters()).device
    b, t, xm = a.batch, a.frames, model.npix_model
    g = torch.Generator(device=dev).manual_seed(1)
    n, meta = a.n_obs, model.obs_tokenizer.meta_dim
    x = torch.randn(b, model.in_channels, t, model.npix_in, device=dev, generator=g)
    sod = torch.randint(0, 4, (b, t), device=dev, generator=g).float() * 21600
    doy = torch.rand(b, t, device=dev, generator=g) * 365
    ctx = prepare_obs_context(
        torch.randn(n, device=dev, generator=g), torch.randn(n, meta, device=dev, generator=g),
        torch.randint(0, 1024, (n,), device=dev, generator=g), torch.randint(0, 1024, (n,), device=dev, generator=g),
        torch.randint(0, 1024, (n,), device=dev, generator=g), torch.randint(0, b * t * xm, (n,), device=dev, generator=g),
        b * t * xm)
    target = torch.randn(b, model.out_channels, t, model.npix_in, device=dev, generator=g)
    return x, torch.zeros(b, device=dev), sod, doy, ctx, target


def forward_flops(model, batch, bf16: bool) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    x, t, sod, doy, ctx, _ = batch
    with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=bf16), \
            FlopCounterMode(display=False) as fc:
        model(x, t, sod, doy, ctx)
    return int(fc.get_total_flops())


def analytic_flops(cfg: dict, a: argparse.Namespace) -> float:
    """6·(token-wise linear params)·tokens + 3·(spatial attention 4·B·T·X'²·D) per layer."""
    d, layers, r = cfg["hidden_size"], cfg["num_layers"], cfg["mlp_ratio"]
    xm = 12 * 4 ** cfg["level_model"]
    tokens = a.batch * a.frames * xm
    per_layer = d * 3 * d + d * d + 2 * r * d * d + 4 * d * d + d * cfg["pixel_attn_n_q_heads"] * cfg["pixel_attn_head_dim"] * 2
    dense = 6 * per_layer * layers * tokens
    attn = 3 * 4 * a.batch * a.frames * xm * xm * d * layers
    return float(dense + attn)


def step(model, fwd, opt, batch, bf16: bool) -> float:
    from healda_core.train.optim import huber_loss

    x, t, sod, doy, ctx, target = batch
    with torch.autocast("cuda", torch.bfloat16, enabled=bf16):
        out = fwd(x, t, sod, doy, ctx)
    loss = huber_loss(out, target, 0.1)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    cuda = a.device.startswith("cuda")
    bf16 = cuda and not a.no_bf16
    model, fwd, opt, cfg = build(a)
    batch = make_batch(model, a)
    n_params = sum(p.numel() for p in model.parameters())
    fwd_flops = analytic_flops(cfg, a) / 3 if a.analytic_flops else forward_flops(model, batch, bf16)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times = []
    for i in range(a.warmup + a.steps):
        if cuda and i == a.warmup:
            torch.cuda.reset_peak_memory_stats()
        sync()
        t0 = time.perf_counter()
        loss = step(model, fwd, opt, batch, bf16)
        sync()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
        print(f"step {i}: {time.perf_counter() - t0:.3f} s  loss {loss:.4f}", file=sys.stderr)
    step_s = statistics.median(times)
    flops = 3 * fwd_flops
    res = {
        "preset": a.preset, "parameters": n_params, "batch": a.batch, "frames": a.frames, "n_obs": a.n_obs,
        "activation_checkpointing": a.ac, "bf16": bf16, "compile": a.compile, "device": _device_name(a.device),
        "torch": torch.__version__, "triton": _triton(), "step_time_s": step_s, "step_time_mean_s": statistics.fmean(times),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
        "model_flops_per_step": flops, "analytic_flops_per_step": analytic_flops(cfg, a),
        "mfu": flops / step_s / (a.peak_tflops * 1e12), "peak_tflops": a.peak_tflops,
    }
    print(json.dumps(res) if a.json else "\n".join(f"{k}: {v}" for k, v in res.items()))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.with_suffix(".tmp").write_text(json.dumps(res, indent=1))
        a.out.with_suffix(".tmp").replace(a.out)
    return res


def _triton() -> str | None:
    from healda_core.kernels import triton_version

    return triton_version()


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


if __name__ == "__main__":
    main()
