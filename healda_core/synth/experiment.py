"""One OSSE experiment (one seed): independent nature-run realisations, training, analyses, baselines, scores.

The split (``docs/osse.md``):

* ``n_train`` *training realisations*, each a nature run with its own random initial spectrum, statics and
  observing network (station positions, flights, error draws), over its own calendar period. The model trains
  on their analysis times; the climatology and the loss weights are computed from the same times only.
* one *independent realisation* (own spectrum, own statics, own observations, own period): never seen in
  training, climatology or any normalisation. Its analysis times give the headline scores.
* the *later times* of the first training realisation (the last ``later_fraction`` of its analysis times,
  held out of training): a secondary column, the easier test of continuing a trajectory the model saw.

Normalisation of inputs and outputs uses the shipped ERA5 statistics (fixed constants, independent of every
realisation).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from healda_core.obs.frames import parse_time

START = parse_time("2024-01-01T00")
STEP = 6 * 3600
DAY = 86400


@dataclass(frozen=True)
class Realisation:
    """One nature run: ``nature_seed`` draws its spectrum, ``nature_seed + 1`` its observations (network and
    errors); ``planet_seed`` the orography and land fraction, shared by the realisations of an experiment
    (one planet, independent weather: the model's static inputs are the same for all of them)."""

    name: str
    role: str  # "train" | "test"
    nature_seed: int
    start_s: int
    days: float
    planet_seed: int

    def analysis_times(self) -> list[int]:
        """Analysis times with a full 42-hour observation history (8 frames, 6 h apart)."""
        return list(range(self.start_s + 7 * STEP, self.start_s + int(self.days * DAY) + 1, STEP))


def realisations(seed: int, n_train: int, days: float, test_days: float) -> list[Realisation]:
    """The training realisations and the independent one of experiment ``seed``; disjoint periods and seeds.

    Nature seeds are ``10000·seed + 2k`` (training) and ``10000·seed + 5000`` (independent); observation
    seeds are one more, so no two random streams coincide within or across experiments (``n_train`` < 2500);
    the planet seed is ``10000·seed + 9999``.
    """
    if not 1 <= n_train < 2500:
        raise ValueError(f"n_train must be in [1, 2500), got {n_train}")
    spacing = (math.ceil(max(days, test_days)) + 3) * DAY
    planet = 10_000 * seed + 9_999
    train = [Realisation(f"train{k}", "train", 10_000 * seed + 2 * k, START + k * spacing, days, planet)
             for k in range(n_train)]
    return train + [Realisation("test", "test", 10_000 * seed + 5_000, START + n_train * spacing, test_days, planet)]


def split_times(reals: list[Realisation], later_fraction: float) -> dict[str, dict[str, list[int]]]:
    """{realisation name: {"train": [...], "later": [...], "test": [...]}} analysis times (s since 1970)."""
    out: dict[str, dict[str, list[int]]] = {}
    for i, r in enumerate(reals):
        times = r.analysis_times()
        if r.role == "test":
            out[r.name] = {"train": [], "later": [], "test": times}
            continue
        n_later = max(1, round(later_fraction * len(times))) if i == 0 and later_fraction > 0 else 0
        out[r.name] = {"train": times[:len(times) - n_later], "later": times[len(times) - n_later:], "test": []}
        if not out[r.name]["train"]:
            raise ValueError(f"{r.name}: {r.days} days leave no training analysis time")
    return out


def _make_realisation(r: Realisation, out: str, level: int, level_model: int, density: float, n_frames: int,
                      times: dict[str, list[int]]) -> dict[str, str]:
    """Synthesize one realisation and pack its observations per role (runs in a worker process)."""
    from healda_core.obs.pack import pack_obs
    from healda_core.synth.run import synthesize

    syn = synthesize(Path(out) / r.name, r.start_s, r.days, level, r.nature_seed, True, density,
                     planet_seed=r.planet_seed)
    paths = {"nature": str(syn.nature), "static": str(syn.static), "obs": str(syn.obs)}
    for role, ts in times.items():
        if ts:
            paths[role] = str(Path(out) / r.name / f"{role}.packed.nc")
            pack_obs([syn.obs], paths[role], times=ts, n_frames=n_frames, level=level_model, overwrite=True)
    return paths


def make_realisations(reals: list[Realisation], times: dict[str, dict[str, list[int]]], out: Path, level: int,
                      level_model: int, density: float, n_frames: int, workers: int) -> dict[str, dict[str, str]]:
    """Synthesize (at ``level``) and pack (at ``level_model``) every realisation, ``workers`` at a time
    (separate processes; 1: in this one)."""
    args = [(r, str(out), level, level_model, density, n_frames, times[r.name]) for r in reals]
    if workers <= 1:
        return {r.name: _make_realisation(*a) for r, a in zip(reals, args, strict=True)}
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    with ProcessPoolExecutor(min(workers, len(reals)), mp_context=ctx) as pool:
        futures = {r.name: pool.submit(_make_realisation, *a) for r, a in zip(reals, args, strict=True)}
        return {name: f.result() for name, f in futures.items()}


def training_climatology(paths: dict[str, dict[str, str]], times: dict[str, dict[str, list[int]]]
                         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Climatology (mean, std) over the training analysis times of the training realisations only."""
    from healda_core.synth.evaluate import climatology, read_fields

    stacks: dict[str, list[np.ndarray]] = {}
    for name, ts in times.items():
        if not ts["train"]:
            continue
        t_all, fields = read_fields(paths[name]["nature"])
        idx = [int(np.nonzero(t_all == t)[0][0]) for t in ts["train"]]
        for k, v in fields.items():
            stacks.setdefault(k, []).append(v[idx])
    return climatology({k: np.concatenate(v) for k, v in stacks.items()})


def loss_weights(clim_std: dict[str, np.ndarray], channels: list[str], lo: float = 0.25, hi: float = 4.0
                 ) -> list[float]:
    """Per-channel loss weights ∝ 1 / (climatological anomaly std in normalised units), mean 1, clipped.

    Equalises the loss across channels relative to what climatology already gets right: a channel whose
    training-period variability is small in ERA5-normalised units (t2m, t850) is weighted up.
    """
    from healda_core.train.datasets import era5_stats

    _, era_std = era5_stats(channels)
    sig = []
    for name, s in zip(channels, era_std, strict=True):
        var, lev = (name, None) if name in clim_std and np.ndim(clim_std[name]) == 0 else (name[0], int(name[1:]))
        val = float(clim_std[var]) if lev is None else float(clim_std[var][_LEVELS.index(lev)])
        sig.append(max(val / s, 1e-6))
    w = 1.0 / np.array(sig)
    w = np.clip(w / np.median(w), lo, hi)
    return [float(x) for x in w / w.mean()]


_LEVELS = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)


@dataclass
class TrainRecipe:
    """How the model is trained in an experiment (see ``RECIPES`` in :mod:`healda_core.synth.demo`)."""

    preset: str
    minutes: float
    lr: float
    warmup_steps: int
    batch_size: int
    num_workers: int
    device: str
    weighted_loss: bool = True
    climatology_start: bool = True  # healda_core.synth.warmstart


def train_model(recipe: TrainRecipe, seed: int, paths: dict[str, dict[str, str]], weights: list[float] | None,
                clim: np.ndarray | None, out: Path, log: Callable[[str], None]) -> tuple[Path, int]:
    """Train from a fresh initialisation (started from the normalised climatology ``clim`` (C, X) PAD_XY
    unless None) for ``recipe.minutes`` of wall-clock time; returns (model file, steps)."""
    from healda_core.checkpoint.convert import write_safetensors
    from healda_core.distributed import detect, init_distributed
    from healda_core.presets import init_checkpoint
    from healda_core.train.config import TrainConfig
    from healda_core.train.loop import Trainer

    init = out / "init.safetensors"
    write_safetensors(init_checkpoint(recipe.preset, seed=seed), init, overwrite=True)
    cfg = TrainConfig()
    cfg.model.preset, cfg.model.init_checkpoint = recipe.preset, str(init)
    cfg.data.train_obs = [p["train"] for p in paths.values() if "train" in p]
    cfg.data.targets = [p["nature"] for p in paths.values() if "train" in p]  # never the independent realisation
    cfg.data.static = next(p["static"] for p in paths.values() if "train" in p)
    cfg.data.batch_size, cfg.data.num_workers = recipe.batch_size, recipe.num_workers
    cfg.data.pin_memory = recipe.device != "cpu"
    cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.decay_samples = recipe.lr, recipe.warmup_steps, None
    cfg.optim.grad_clip_end, cfg.optim.weight_decay, cfg.optim.channel_weights = None, 0.0, weights
    cfg.train.max_steps, cfg.train.max_minutes, cfg.train.seed = 10**7, recipe.minutes, seed
    cfg.train.log_every, cfg.train.val_every = 25, 10**7
    cfg.train.ckpt_every, cfg.train.keep_checkpoints, cfg.train.device = 10**7, 1, recipe.device
    cfg.parallel.compile = False  # minutes of training: compiling would take a large share of the budget
    ps = init_distributed(detect(), cp=1, device=recipe.device)  # one process: no process group
    trainer = Trainer(cfg, out / "train", ps=ps, log=log)
    if clim is not None:
        from healda_core.synth.warmstart import start_from_climatology

        log(f"climatology start: initial misfit {start_from_climatology(trainer, clim):.4f} (normalised RMS)")
    trainer.fit()
    latest = (out / "train" / "checkpoints" / "latest").read_text().strip()
    return out / "train" / "checkpoints" / latest / "model.safetensors", trainer.step


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def timed(timings: dict[str, float], name: str, fn: Callable, *a, **k):
    """Call ``fn`` and add its wall time (s) to ``timings[name]``."""
    t0 = time.perf_counter()
    out = fn(*a, **k)
    timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - t0, 2)
    return out
