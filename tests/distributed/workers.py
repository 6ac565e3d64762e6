"""Process launcher and worker functions for the 2-process gloo tests (importable by spawned children)."""

from __future__ import annotations

import copy
import os
import tempfile
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from healda_core.distributed import DistEnv, enable_context_parallel, init_distributed, local_frames
from healda_core.obs.context import prepare_obs_context


def spawn(fn, world: int, out_dir: Path, *args) -> list[dict]:
    """Run ``fn(ps, out_dir, *args)`` on ``world`` gloo processes; returns each rank's result dict."""
    init_file = Path(tempfile.mkdtemp(dir=out_dir)) / "rendezvous"
    mp.spawn(_entry, args=(world, str(init_file), fn, str(out_dir), args), nprocs=world, join=True)
    return [torch.load(Path(out_dir) / f"result_{r}.pt", weights_only=True) for r in range(world)]


def _entry(rank: int, world: int, init_file: str, fn, out_dir: str, args: tuple) -> None:
    torch.set_num_threads(1)
    os.environ["RANK"] = str(rank)
    try:
        cp = args[0] if args and isinstance(args[0], int) else 1
        ps = init_distributed(DistEnv(rank=rank, world_size=world, launcher="test"), cp=cp, device="cpu",
                              init_method=f"file://{init_file}")
        result = fn(ps, Path(out_dir), *args)
        torch.save(result, Path(out_dir) / f"result_{rank}.pt")
    except Exception:
        traceback.print_exc()
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def randomize_zero_params(model: torch.nn.Module, seed: int = 1) -> None:
    """Fill all-zero parameters (adaLN-Zero, zero biases) with N(0, 0.2²) so no block is an identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def local_context(raw: dict, b: int, t: int, xm: int, f0: int, f1: int):
    """The ObsContext of frames [f0, f1) only, from raw observations of the full (B, T) batch."""
    ti = raw["t_idx"]
    keep = (ti >= f0) & (ti < f1)
    bi, pix = raw["flat_idx"] // (t * xm), raw["flat_idx"] % xm
    flat = (bi * (f1 - f0) + ti - f0) * xm + pix
    return prepare_obs_context(raw["obs"][keep], raw["float_metadata"][keep], raw["obs_type"][keep],
                               raw["channel"][keep], raw["platform"][keep], flat[keep], b * (f1 - f0) * xm)


def cp_model_worker(ps, out_dir: Path, cp: int) -> dict:
    """CP forward/backward of a tiny HealDA (RoPE on) against the single-process result, T = 4 and 8."""
    from healda_core import HealDA
    from tests.model.helpers import context_of, random_batch, tiny_config

    res = {}
    for t_len in (4, 8):
        torch.manual_seed(0)
        ref = HealDA(**tiny_config(time_length=t_len, use_rope=True)).train()
        randomize_zero_params(ref)
        model = copy.deepcopy(ref)
        b = 2
        x, t, sod, doy, raw = random_batch(ref, b=b, n_obs=400, seed=3)
        w = torch.randn(b, ref.out_channels, t_len, ref.npix_in, generator=torch.Generator().manual_seed(5))
        out_full = ref(x, t, sod, doy, context_of(ref, raw, b))
        (out_full * w).mean().backward()  # a mean loss, as in training
        enable_context_parallel(model, ps.cp_group)
        f0, f1 = local_frames(t_len, ps.cp_size, ps.cp_rank)
        ctx = local_context(raw, b, t_len, ref.npix_model, f0, f1)
        out = model(x[:, :, f0:f1].contiguous(), t, sod[:, f0:f1], doy[:, f0:f1], ctx)
        (out * w[:, :, f0:f1]).sum().div(w.numel()).backward()
        out_err = float((out - out_full[:, :, f0:f1]).detach().abs().max())
        grad_err, grad_scale = 0.0, 0.0
        for p_ref, p in zip(ref.parameters(), model.parameters()):
            g = p.grad.clone() if p.grad is not None else torch.zeros_like(p)
            dist.all_reduce(g, group=ps.cp_group)
            grad_err = max(grad_err, float((g - p_ref.grad).abs().max()))
            grad_scale = max(grad_scale, float(p_ref.grad.abs().max()))
        # the temporal attention really rotates: RoPE off changes the output
        rope_effect = _rope_effect(ref, x, t, sod, doy, context_of(ref, raw, b), out_full)
        res[f"T{t_len}"] = {"out_err": out_err, "grad_err": grad_err, "grad_scale": grad_scale,
                            "out_scale": float(out_full.detach().abs().max()), "rope_effect": rope_effect}
    res["trainer"] = _trainer_step(ps, out_dir)
    return res


def _rope_effect(model, x, t, sod, doy, ctx, out_full) -> float:
    with torch.no_grad():
        for blk in model.dit.blocks:
            blk.temporal_attention.use_rope = False
        try:
            alt = model(x, t, sod, doy, ctx)
        finally:
            for blk in model.dit.blocks:
                blk.temporal_attention.use_rope = True
    return float((alt - out_full).abs().max())


def trainer_overrides(extra: list[str] | None = None) -> list[str]:
    """A tiny synthetic training configuration for the loop tests."""
    return ["model.preset='healda-tiny'", "model.hidden_size=32", "model.out_channels=3", "model.time_length=4",
            "model.drop_path=0.0", "data.synthetic=16", "data.synthetic_val=0", "data.num_workers=0",
            "data.batch_size=1", "data.synthetic_obs_per_sample=128", "train.log_every=1", "train.val_every=1000",
            "train.ckpt_every=1000", "optim.decay_samples=64", "optim.grad_clip_end=0.5",
            "optim.grad_clip_ramp_samples=32", *(extra or [])]


def _trainer_step(ps, out_dir: Path) -> dict:
    """One optimiser step of the Trainer with the given DP × CP layout: loss and the updated weights."""
    from healda_core.train import Trainer, load_config

    cfg = load_config(None, trainer_overrides([f"parallel.cp={ps.cp_size}", f"data.batch_size={2 // ps.dp_size}",
                                               "model.drop_path=0.0"]))
    tr = Trainer(cfg, out_dir / f"trainer_cp{ps.cp_size}", ps)
    randomize_zero_params(tr.model)
    rec = tr.fit(max_steps=1)
    return {"loss": rec["losses"][0], "state": {k: v.clone() for k, v in tr.model.state_dict().items()}}


def ddp_resume_worker(ps, out_dir: Path, cp: int) -> dict:
    """(a) one DDP step (batch 1 per rank) and (b) an interrupted + resumed run against an uninterrupted one."""
    from healda_core.train import Trainer, load_config

    res = {"ddp": _trainer_step(ps, out_dir)}
    extra = ["model.drop_path=0.2", "model.drop_path_zero_first_n_blocks=0", "train.ema_decay=0.9",
             "train.grad_accum=2", "train.ckpt_every=3", "train.val_every=3", "data.synthetic_val=4",
             "optim.warmup_steps=2"]
    cfg = load_config(None, trainer_overrides(extra))
    full_tr = Trainer(cfg, out_dir / "full", ps)
    full = full_tr.fit(max_steps=6)
    part = Trainer(cfg, out_dir / "part", ps).fit(max_steps=6, stop_after=3)
    torch.manual_seed(12345)  # the resumed run must not depend on the state this process happens to be in
    resumed = Trainer(cfg, out_dir / "part", ps)
    resumed.load(out_dir / "part")
    rest = resumed.fit(max_steps=6)
    res["resume"] = {"full_losses": full["losses"], "resumed_losses": part["losses"] + rest["losses"],
                     "full_val": full["val"]["rmse"], "resumed_val": rest["val"]["rmse"],
                     "full_state": full_tr.model.state_dict(), "resumed_state": resumed.model.state_dict(),
                     "full_ema": full_tr.ema.state_dict(), "resumed_ema": resumed.ema.state_dict()}
    return res
