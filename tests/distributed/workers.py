"""Process launcher and worker functions for the 2-process gloo tests (importable by spawned children)."""

from __future__ import annotations

import os
import tempfile
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from healda_core.distributed import DistEnv, init_distributed
from healda_core.distributed.verify import (
    cp_equivalence,
    randomize_zero_params,
    tiny_trainer_overrides,
    trainer_step,
)

__all__ = ["cp_model_worker", "ddp_resume_worker", "randomize_zero_params", "spawn", "trainer_overrides"]


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


def cp_model_worker(ps, out_dir: Path, cp: int) -> dict:
    """CP forward/backward of a tiny HealDA (RoPE on) against the single-process result, T = 4 and 8."""
    from tests.model.helpers import tiny_config

    res = {f"T{t_len}": cp_equivalence(tiny_config(time_length=t_len, use_rope=True), ps.cp_group, b=2, n_obs=400)
           for t_len in (4, 8)}
    res["trainer"] = _trainer_step(ps, out_dir)
    return res


def trainer_overrides(extra: list[str] | None = None) -> list[str]:
    """A tiny synthetic training configuration for the loop tests."""
    return tiny_trainer_overrides(extra)


def _trainer_step(ps, out_dir: Path) -> dict:
    """One optimiser step of the Trainer with the given DP × CP layout: loss and the updated weights."""
    from healda_core.train import load_config

    cfg = load_config(None, trainer_overrides([f"parallel.cp={ps.cp_size}", f"data.batch_size={2 // ps.dp_size}",
                                               "model.drop_path=0.0"]))
    return trainer_step(cfg, out_dir / f"trainer_cp{ps.cp_size}", ps)


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
