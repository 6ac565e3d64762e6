"""The training loop: build (model, data, optimiser) from a :class:`TrainConfig`, train, validate, checkpoint.

One code path for one CPU, one GPU and DP × CP process groups:

* Data parallel: DDP over the whole world. Context-parallel ranks hold different frames of the same samples,
  so averaging gradients over the world is the gradient of the mean loss over (samples, frames).
* Context parallel (``parallel.cp = N``): each rank's dataset returns only its frames
  (:func:`~healda_core.distributed.local_frames`), the model reshards around temporal attention.
* Exact resume: weights, optimiser, scheduler, EMA, the sampler position and every rank's RNG state are
  checkpointed; the same configuration and world size continue bit-exactly.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from healda_core import grid
from healda_core.distributed.activation_checkpoint import apply_activation_checkpointing
from healda_core.distributed.context_parallel import enable_context_parallel, local_frames
from healda_core.distributed.env import ParallelState
from healda_core.errors import CheckpointError, UsageError
from healda_core.static import STATIC_VARS, load_static
from healda_core.train import checkpointing
from healda_core.train.config import TrainConfig, save_config
from healda_core.train.data import Batch, DevicePrefetcher, ResumableBatchSampler, eval_batches, make_loader
from healda_core.train.datasets import (
    PackedTargetDataset,
    SyntheticDataset,
    TargetStore,
    channel_names,
    era5_stats,
)
from healda_core.train.metrics import JsonlLog, RmseAccumulator
from healda_core.train.optim import EMA, build_optimizer, build_scheduler, clip_value, huber_loss

#: config keys that may change between a run and its resumption
RESUMABLE_CHANGES = {"train.max_steps", "train.log_every", "train.val_every", "train.val_batches",
                     "train.ckpt_every", "train.keep_checkpoints", "train.device", "data.num_workers",
                     "data.prefetch_factor", "data.pin_memory", "data.val_obs", "data.synthetic_val"}


def model_config(cfg: TrainConfig) -> dict[str, Any]:
    """Every ``HealDA`` keyword: preset (or the init checkpoint's config), then ``model.overrides``."""
    from healda_core.model.healda import default_config
    from healda_core.presets import preset_config

    if cfg.model.init_checkpoint:
        from healda_core.checkpoint import read_checkpoint

        base = read_checkpoint(cfg.model.init_checkpoint).config
    else:
        base = preset_config(cfg.model.preset)
    unknown = set(cfg.model.overrides) - set(default_config())
    if unknown:
        raise UsageError(f"config: unknown model keyword(s) {', '.join(sorted(unknown))}")
    from healda_core.model.config_rules import config_problems

    full = {**base, **cfg.model.overrides}
    problems = config_problems(full)
    if problems:
        raise UsageError(f"config [model]: {'; '.join(problems[:4])}")
    return full


def set_determinism(seed_rank: int, deterministic: bool) -> None:
    """Seed every generator; with ``deterministic`` apply the torchtitan set (deterministic algorithms,
    cuDNN deterministic, no benchmark, ``CUBLAS_WORKSPACE_CONFIG``)."""
    import random

    import numpy as np

    torch.manual_seed(seed_rank)
    random.seed(seed_rank)
    np.random.seed(seed_rank % 2**32)
    if deterministic:
        from healda_core.kernels.tuning import configure

        configure(deterministic=True)  # cached or default kernel configs only: no timing-dependent choices
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


class Trainer:
    """Builds everything from ``cfg`` and trains into ``out``.

    Args:
        cfg: the resolved configuration. out: run directory (config.json, metrics.jsonl, checkpoints/).
        ps: the process groups (:func:`~healda_core.distributed.init_distributed`); single process if None.
        log: receives one human-readable line per event (rank 0 only; the CLI prints it to stderr).
    """

    def __init__(self, cfg: TrainConfig, out: str | Path, ps: ParallelState | None = None,
                 log: Callable[[str], None] | None = None):
        self.cfg, self.out, self.ps = cfg, Path(out), ps or ParallelState()
        if self.ps.cp_size != cfg.parallel.cp:
            raise UsageError(f"parallel.cp = {cfg.parallel.cp} but the process groups have cp = {self.ps.cp_size}")
        self.device = self.ps.device
        self.log = log if (log is not None and self.ps.is_main) else (lambda msg: None)
        self.mcfg = model_config(cfg)
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        from healda_core.model.healda import HealDA

        with torch.device(self.device):
            model = HealDA(**self.mcfg)
        if cfg.model.init_checkpoint:
            from healda_core.checkpoint import read_checkpoint

            model.load_state_dict(read_checkpoint(cfg.model.init_checkpoint).state_dict, strict=True)
        self.frames = local_frames(model.time_length, self.ps.cp_size, self.ps.cp_rank)
        enable_context_parallel(model, self.ps.cp_group)
        apply_activation_checkpointing(model, cfg.parallel.activation_checkpointing)
        self.model = model
        self.ddp = self._wrap(model)
        self.global_batch = self.ps.dp_size * cfg.data.batch_size * cfg.train.grad_accum
        self.optimizer = build_optimizer(model, cfg.optim)
        self._clock: tuple[float, float] | None = None  # (fit start, budget s) while a wall-clock budget runs
        progress = self._progress if cfg.train.max_minutes else None
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, cfg.train.max_steps, self.global_batch, progress)
        self.ema = EMA(model, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None
        self._build_data(model)
        self.step, self.consumed = 0, 0
        set_determinism(cfg.train.seed + self.ps.dp_rank, cfg.train.deterministic)  # CP ranks share drop-path draws
        self.metrics = JsonlLog(self.out / "metrics.jsonl", self.ps.is_main)
        self.autocast = cfg.train.bf16 and self.device.type == "cuda"

    # ------------------------------------------------------------------------------------------ setup
    def _wrap(self, model: nn.Module) -> nn.Module:
        fwd = model
        if self.cfg.parallel.compile and self.device.type == "cuda" and self.ps.cp_size == 1:
            model.dit.compile_blocks()  # in place: blocks share one graph, checkpointing included
        if dist.is_initialized() and dist.get_world_size() > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            with warnings.catch_warnings():  # torch 2.13 deprecates broadcast_buffers; the buffers are constants
                warnings.simplefilter("ignore", FutureWarning)
                fwd = DDP(fwd, device_ids=ids, broadcast_buffers=False,
                          find_unused_parameters=self.cfg.parallel.find_unused_parameters)
        return fwd

    def _build_data(self, model: nn.Module) -> None:
        d = self.cfg.data
        names = channel_names(d.channels)
        if d.synthetic:
            names = (names * (1 + model.out_channels // len(names)))[:model.out_channels]
            kw = {"out_channels": model.out_channels, "level_in": model.level_in, "level_model": model.level_model,
                  "time_length": model.time_length, "meta_dim": model.obs_tokenizer.meta_dim,
                  "obs_per_sample": d.synthetic_obs_per_sample, "frames": self.frames}
            self.train_set = SyntheticDataset(d.synthetic, seed=self.cfg.train.seed, **kw)
            self.val_set = SyntheticDataset(d.synthetic_val, seed=self.cfg.train.seed, first_index=10**6, **kw) \
                if d.synthetic_val else None
            static = SyntheticDataset(1, seed=self.cfg.train.seed, **kw).p[:model.in_channels]
            static = torch.cat([static, torch.zeros(max(0, model.in_channels - static.shape[0]), static.shape[1])])
        else:
            if len(names) != model.out_channels:
                raise UsageError(f"data.channels has {len(names)} channels; the model has out_channels="
                                 f"{model.out_channels}")
            targets = TargetStore(d.targets, names, model.level_in)
            kw = {"level_model": model.level_model, "time_length": model.time_length, "frames": self.frames}
            self.train_set = PackedTargetDataset(d.train_obs, targets, **kw)
            self.val_set = PackedTargetDataset(d.val_obs, targets, **kw) if d.val_obs else None
            static = self._static(d.static, model)
        self.channel_names = names
        self.static = static.to(self.device)
        self.std = torch.as_tensor(era5_stats(names)[1], device=self.device)
        w = self.cfg.optim.channel_weights
        if w is not None and len(w) != model.out_channels:
            raise UsageError(f"optim.channel_weights has {len(w)} values, expected {model.out_channels}")
        self.channel_weights = torch.tensor(w, device=self.device, dtype=torch.float32) if w else None


    def _static(self, path: str | None, model: nn.Module) -> torch.Tensor:
        """(C_in, X) static inputs, PAD_XY: the file's (:func:`~healda_core.static.load_static`), or zeros."""
        if path is None:
            self.log("warning: data.static is not set; static inputs are zeros")
            return torch.zeros(model.in_channels, grid.npix(model.level_in))
        if model.in_channels != len(STATIC_VARS):
            raise UsageError(f"the static file provides {len(STATIC_VARS)} channels ({', '.join(STATIC_VARS)}); "
                             f"the model has in_channels={model.in_channels}")
        return torch.from_numpy(load_static(path, model.level_in))
    def _loader(self, batch_sampler) -> DevicePrefetcher:
        d = self.cfg.data
        cuda = self.device.type == "cuda"
        loader = make_loader(self.train_set if isinstance(batch_sampler, ResumableBatchSampler) else self.val_set,
                             batch_sampler, num_workers=d.num_workers, pin_memory=d.pin_memory and cuda,
                             prefetch_factor=d.prefetch_factor, build_group_map=cuda, seed=self.cfg.train.seed)
        return DevicePrefetcher(loader, self.device)

    # ------------------------------------------------------------------------------------------ steps
    def forward(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        """The model output (B, C_out, T_loc, X) for a device batch."""
        b, t_loc = batch.batch_size, batch.second_of_day.shape[1]
        x = self.static[None, :, None, :].expand(b, -1, t_loc, -1).contiguous()
        noise = torch.zeros(b, device=self.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            return module(x, noise, batch.second_of_day, batch.day_of_year, batch.context())

    def train_step(self, batches: list[Batch]) -> dict[str, float]:
        """One optimiser step over ``len(batches)`` micro-batches (gradient accumulation)."""
        self.ddp.train()
        n = len(batches)
        total = torch.zeros((), device=self.device)
        for i, batch in enumerate(batches):
            sync = i == n - 1 or not hasattr(self.ddp, "no_sync")
            ctx = self.ddp.no_sync() if not sync else _null()
            with ctx:
                pred = self.forward(self.ddp, batch)
                loss = huber_loss(pred, batch.target, self.cfg.optim.huber_delta, self.channel_weights) / n
                loss.backward()
            total += loss.detach()
        clip = clip_value(self.step, self.cfg.optim, self.global_batch)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self.consumed += n
        if dist.is_initialized():
            dist.all_reduce(total)  # SUM (gloo has no AVG)
            total /= dist.get_world_size()
        return {"loss": float(total), "grad_norm": float(grad_norm), "lr": lr, "clip": clip}

    @torch.no_grad()
    def validate(self) -> dict[str, Any] | None:
        """Per-channel RMSE in physical units over the validation set (all ranks; None without one).

        With EMA on, the EMA weights are scored (the weights ``ema.safetensors`` holds); the training
        weights are restored exactly afterwards."""
        if self.val_set is None:
            return None
        with self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext():
            return self._validate()

    def _validate(self) -> dict[str, Any]:
        self.model.eval()
        last = self.model.time_length - 1
        f0, f1 = self.frames
        acc = RmseAccumulator(self.std, last - f0 if f0 <= last < f1 else None)
        batches = eval_batches(len(self.val_set), self.cfg.data.batch_size, self.ps.dp_rank, self.ps.dp_size,
                               self.cfg.train.val_batches)
        for batch in self._loader(batches):
            acc.add(self.forward(self.model, batch).float(), batch.target)
        self.model.train()
        return acc.result(self.channel_names)

    # ------------------------------------------------------------------------------------------ state
    def save(self) -> Path:
        state = {"step": self.step, "consumed": self.consumed, "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
                 "dp_size": self.ps.dp_size, "cp_size": self.ps.cp_size, "global_batch": self.global_batch}
        ema_sd = self.ema.full_state_dict(self.model) if self.ema else None
        path = checkpointing.save(self.out / "checkpoints", self.step, model_state=self.model.state_dict(),
                                  model_config=self.mcfg, train_state=state, ema_state=ema_sd, rank=self.ps.env.rank,
                                  extra={"source": "healda train", "channels": ",".join(self.channel_names)},
                                  keep=self.cfg.train.keep_checkpoints)
        self.log(f"step {self.step}: checkpoint {path}")
        return path

    def load(self, path: str | Path) -> None:
        """Restore everything from a checkpoint directory (or a run directory) for an exact resume."""
        ckpt_dir = checkpointing.find(Path(path))
        self._check_resumable(ckpt_dir.parent.parent / "config.json")
        ck = checkpointing.load(ckpt_dir, self.ps.env.rank)
        st = ck["train_state"]
        if (st["dp_size"], st["cp_size"]) != (self.ps.dp_size, self.ps.cp_size):
            raise UsageError(f"{ckpt_dir}: written with dp={st['dp_size']} cp={st['cp_size']}; this run has "
                             f"dp={self.ps.dp_size} cp={self.ps.cp_size} (exact resume needs the same layout)")
        if ck["config"] != self.mcfg:
            diff = sorted(k for k in ck["config"].keys() | self.mcfg.keys() if ck["config"].get(k) != self.mcfg.get(k))
            raise CheckpointError(f"{ckpt_dir}/model.safetensors: written for another model configuration "
                                  f"({', '.join(diff[:6])})")
        try:
            self.model.load_state_dict(ck["model"], strict=True)
            self.optimizer.load_state_dict(st["optimizer"])
            self.scheduler.load_state_dict(st["scheduler"])
            if self.ema is not None and st["ema"] is not None:
                self.ema.load_state_dict(st["ema"])
            checkpointing.set_rng_state(ck["rng"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise CheckpointError(f"{ckpt_dir}: the saved training state does not fit this run ({msg})") from None
        self.step, self.consumed = st["step"], st["consumed"]
        self.metrics.truncate_after(self.step)
        self.log(f"resumed from {ckpt_dir} at step {self.step}")

    def _check_resumable(self, saved_path: Path) -> None:
        """Refuse to resume with a configuration that changes the computation (see RESUMABLE_CHANGES)."""
        import json

        if not saved_path.is_file():
            return
        flat = lambda d: {f"{s}.{k}": v for s, sec in d.items() for k, v in sec.items()}
        old = flat(json.loads(saved_path.read_text()))
        new = flat(json.loads(json.dumps(self.cfg.to_dict())))
        diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
        if diff:
            raise UsageError(f"{saved_path}: --resume with a different configuration ({', '.join(diff)}); "
                             "only " + ", ".join(sorted(RESUMABLE_CHANGES)) + " may change")

    # ------------------------------------------------------------------------------------------ run
    def _progress(self, step: int) -> float:
        """Fraction of the run done: the larger of steps / max_steps and elapsed / wall-clock budget."""
        frac = step / max(1, self.cfg.train.max_steps)
        if self._clock is not None:
            frac = max(frac, (time.perf_counter() - self._clock[0]) / self._clock[1])
        return min(1.0, frac)

    def _progress_text(self, max_steps: int, t0: float) -> str:
        """``N/max_steps``; under a wall-clock budget also ``(elapsed of budget)``, and without the step total when
        that is only a sentinel (``max_steps`` ≥ 10⁶, as the demo sets it)."""
        steps = f"{self.step}" if self._clock is not None and max_steps >= 10**6 else f"{self.step}/{max_steps}"
        if self._clock is None:
            return steps
        mmss = lambda sec: f"{int(sec // 60)}:{int(sec % 60):02d}"  # noqa: E731
        return f"{steps} ({mmss(time.perf_counter() - t0)} of {mmss(self._clock[1])})"

    def _out_of_time(self, mean_step_s: float) -> bool:
        """True when one more step (at the mean step time so far) would overrun the wall-clock budget.

        Every rank takes rank 0's decision, so all ranks stop after the same step."""
        if self._clock is None:
            return False
        stop = torch.tensor(float(time.perf_counter() - self._clock[0] + mean_step_s >= self._clock[1]),
                            device=self.device)
        if dist.is_initialized():
            dist.broadcast(stop, 0)
        return bool(stop)

    def fit(self, max_steps: int | None = None, stop_after: int | None = None) -> dict[str, Any]:
        """Train until ``max_steps`` (default ``train.max_steps``); ``stop_after`` simulates a kill after
        that many steps of this call (tests). Returns a summary."""
        t = self.cfg.train
        max_steps = t.max_steps if max_steps is None else max_steps
        if self.ps.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, self.out / "config.json")
        first_val = self.validate() if self.step == 0 and self.val_set is not None else None
        if first_val is not None:
            self._log_val(first_val)
        sampler = ResumableBatchSampler(len(self.train_set), self.cfg.data.batch_size, self.ps.dp_rank,
                                        self.ps.dp_size, seed=t.seed, shuffle=self.cfg.data.shuffle,
                                        start=self.consumed)
        it = self._loader(sampler)
        done, last_val, t0, losses = 0, first_val, time.perf_counter(), []
        if t.max_minutes:
            self._clock = (t0, 60.0 * t.max_minutes)
        last = self._out_of_time(0.0)
        while self.step < max_steps and not last and (stop_after is None or done < stop_after):
            rec = self.train_step([next(it) for _ in range(t.grad_accum)])
            done += 1
            losses.append(rec["loss"])
            last = self.step == max_steps or self._out_of_time((time.perf_counter() - t0) / done)
            if self.step % t.log_every == 0 or last:
                dt = (time.perf_counter() - t0) / max(1, done)
                self.metrics.write({"kind": "train", "step": self.step, **rec, "samples": self.step * self.global_batch,
                                    "step_time_s": dt})
                self.log(f"step {self._progress_text(max_steps, t0)}  loss {rec['loss']:.5f}  "
                         f"grad_norm {rec['grad_norm']:.3f}  lr {rec['lr']:.3g}  {dt:.3f} s/step")
            if not math.isfinite(rec["loss"]):
                raise FloatingPointError(f"step {self.step}: loss is {rec['loss']}")
            if self.step % t.val_every == 0 or last:
                last_val = self.validate()
                if last_val is not None:
                    self._log_val(last_val)
            if self.step % t.ckpt_every == 0 or last:
                self.save()
        self._clock = None
        del it
        return {"step": self.step, "losses": losses, "val": last_val, "first_val": first_val,
                "checkpoint": str(self.out / "checkpoints")}

    def _log_val(self, v: dict[str, Any]) -> None:
        self.metrics.write({"kind": "val", "step": self.step, **v})
        self.log(f"step {self.step}: validation normalised RMSE {v['rmse_normalised_mean']:.4f}")


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
