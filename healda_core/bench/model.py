"""Whole-model benchmark (``healda bench model``): inference and a training step with and without the kernels.

Presets are those of ``healda init-ckpt`` (``healda_core.presets``; ``healda-v2`` is the 1.5B reference
configuration); ``layers`` overrides num_layers to fit a quick run. Observations follow the kernel benchmark's workload at the
model's pixel count. bf16 autocast, medians of CUDA-event timings after warm-up.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def config_for(preset: str, layers: int | None = None) -> dict:
    from healda_core.model.healda import default_config
    from healda_core.presets import preset_config

    cfg = default_config()
    cfg.update(preset_config(preset))
    if layers is not None:
        cfg["num_layers"] = layers
    return cfg


def run(preset: str = "healda-v2", n_obs: int = 10_000_000, layers: int | None = 4, reps: int = 5,
        torch_paths: bool = True, progress: Callable[[str], None] | None = None) -> list[dict]:
    """Rows: impl × {inference, train_step} with median ms, obs/s and peak GiB."""
    from healda_core import HealDA
    from healda_core.bench.kernels import raw_obs, time_ms
    from healda_core.errors import AcceleratorError
    from healda_core.kernels import use_kernels
    from healda_core.obs.context import prepare_obs_context

    if not torch.cuda.is_available():
        raise AcceleratorError("`bench model` needs a CUDA GPU (none is visible to PyTorch)")
    say = progress or (lambda s: None)
    cfg = config_for(preset, layers)
    model = HealDA(**cfg).cuda()
    b, t = 1, model.time_length
    p = b * t * model.npix_model
    raw = raw_obs(n_obs, p)
    g = torch.Generator(device="cuda").manual_seed(5)
    x = torch.randn(b, model.in_channels, t, model.npix_in, device="cuda", generator=g)
    tt = torch.zeros(b, device="cuda")
    sod = torch.rand(b, t, device="cuda", generator=g) * 86400
    doy = torch.rand(b, t, device="cuda", generator=g) * 365
    rows = []
    for impl, on in (("healda-triton", True), ("pytorch", False)):
        if not on and not torch_paths:
            continue
        with use_kernels(on):
            ctx = prepare_obs_context(**raw, total_pixels=p)

            def fwd(ctx=ctx):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return model(x, tt, sod, doy, ctx)

            def step(fwd=fwd):
                model.zero_grad(set_to_none=True)
                fwd().float().square().mean().backward()

            for name, fn in (("inference", fwd), ("train_step", step)):
                say(f"model {preset} {impl} {name}")
                model.train(name == "train_step")
                torch.cuda.reset_peak_memory_stats()
                with torch.set_grad_enabled(name == "train_step"):
                    tm = time_ms(fn, warmup=1, reps=reps, max_ms=10_000)
                rows.append({"op": "model", "preset": preset, "layers": cfg["num_layers"], "impl": impl, "N": n_obs,
                             "pass": name, **tm, "obs_per_s": n_obs / (tm["median_ms"] * 1e-3),
                             "peak_GiB": torch.cuda.max_memory_allocated() / 2**30})
            del ctx, fwd, step
    return rows
