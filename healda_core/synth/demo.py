"""``run_demo``: the embedded default — an observing-system simulation experiment (OSSE) end to end.

Through the same functions the commands run: ``synth`` → ``pack-obs`` → ``init-ckpt`` (preset ``healda-demo``)
→ ``train`` (a few CPU minutes) → ``assimilate`` held-out analysis times → verification against the nature
run, with two baselines: the climatology of the training period and a classical optimal interpolation (OI) of
the same observations. Writes ``report.md`` with PNG maps and ``scores.json`` into the work directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from healda_core.obs.frames import format_time, parse_time

START = "2024-01-01T00"
STEP = 6 * 3600
PRESET = "healda-demo"


@dataclass
class DemoSettings:
    """Knobs of the demo (defaults fit 10 minutes on 2 CPU cores)."""

    workdir: Path
    minutes: float = 8.5  # training budget
    days: float = 12.0
    level: int = 4  # nature-run level = the preset's level_in
    density: float = 0.15
    seed: int = 0
    test_fraction: float = 0.25
    overwrite: bool = True


@dataclass
class DemoResult:
    """Scores per method ({"healda": {...}, "climatology": {...}, "oi": {...}}), report path and timings."""

    scores: dict[str, dict[str, float]]
    report: Path
    timings: dict[str, float] = field(default_factory=dict)
    train_steps: int = 0
    test_times: list[str] = field(default_factory=list)


def _split_times(start_s: int, days: float, frac: float) -> tuple[list[int], list[int]]:
    """Analysis times with a full 42 h observation history; the last ``frac`` are held out."""
    first = start_s + 7 * STEP
    times = list(range(first, start_s + int(days * 86400) + 1, STEP))
    n_test = max(2, int(round(frac * len(times))))
    return times[:-n_test], times[-n_test:]


def _train_config(s: DemoSettings, packed: Path, nature: Path, static: Path, init: Path, steps: int):
    from healda_core.train.config import TrainConfig

    cfg = TrainConfig()
    cfg.model.preset, cfg.model.init_checkpoint = PRESET, str(init)
    cfg.data.train_obs, cfg.data.targets, cfg.data.static = [str(packed)], [str(nature)], str(static)
    cfg.data.num_workers, cfg.data.pin_memory = 0, False
    cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.decay_samples = 1e-2, 10, None
    cfg.optim.grad_clip_end, cfg.optim.weight_decay = None, 0.0
    cfg.train.max_steps, cfg.train.seed, cfg.train.log_every = steps, s.seed, 25
    cfg.train.val_every = cfg.train.ckpt_every = max(1, steps)
    cfg.train.keep_checkpoints, cfg.train.device = 1, "cpu"
    return cfg


def _train(s: DemoSettings, packed: Path, nature: Path, static: Path, init: Path, log: Callable[[str], None]
           ) -> tuple[Path, int]:
    """Time a few steps, then train for the budget; returns the final model checkpoint and the step count."""
    from healda_core.train.loop import Trainer

    probe = Trainer(_train_config(s, packed, nature, static, init, 4), s.workdir / "train-probe")
    probe.fit(max_steps=1)  # the first step pays for warm-up and uncached reads
    t0 = time.perf_counter()
    probe.fit(max_steps=4)
    per_step = (time.perf_counter() - t0) / 3
    steps = max(10, int(s.minutes * 60 / max(per_step, 1e-3)))
    log(f"train: {per_step:.2f} s/step → {steps} steps in {s.minutes:g} min")
    trainer = Trainer(_train_config(s, packed, nature, static, init, steps), s.workdir / "train", log=log)
    trainer.fit()
    latest = (s.workdir / "train" / "checkpoints" / "latest").read_text().strip()
    return s.workdir / "train" / "checkpoints" / latest / "model.safetensors", steps


def _baselines(nature: Path, obs: Path, train_times: list[int], test_times: list[int], level: int
               ) -> tuple[dict, dict[int, dict], dict[int, dict]]:
    """Truth at test times, climatology of the training period, and OI analyses at test times."""
    from healda_core.obs.readers import read_obs_file
    from healda_core.synth.evaluate import climatology, read_fields
    from healda_core.synth.oi import oi_analysis

    times, fields = read_fields(nature)
    idx = {int(t): i for i, t in enumerate(times)}
    clim_mean, clim_std = climatology({k: v[[idx[t] for t in train_times]] for k, v in fields.items()})
    truth = {t: {k: v[idx[t]] for k, v in fields.items()} for t in test_times}
    raw, _ = read_obs_file(obs)
    oi = {t: oi_analysis(raw, t, clim_mean, clim_std, level) for t in test_times}
    return clim_mean, truth, oi


def run_demo(s: DemoSettings, log: Callable[[str], None] = lambda m: None,
             stage: Callable[[str], None] = lambda m: None) -> DemoResult:
    """Run the whole OSSE in ``s.workdir``; ``stage`` is told each step's name, ``log`` gets messages."""
    from healda_core.assimilate import assimilate
    from healda_core.checkpoint.convert import write_safetensors
    from healda_core.obs.pack import pack_obs
    from healda_core.presets import init_checkpoint, preset_config
    from healda_core.synth.evaluate import mean_scores, read_fields, scores
    from healda_core.synth.report import write_report
    from healda_core.synth.run import synthesize

    w = Path(s.workdir)
    w.mkdir(parents=True, exist_ok=True)
    cfg = preset_config(PRESET)
    if cfg["level_in"] != s.level:
        raise ValueError(f"the demo preset needs level {cfg['level_in']}, got {s.level}")
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable, *a, **k):
        stage(name)
        t0 = time.perf_counter()
        out = fn(*a, **k)
        timings[name] = round(time.perf_counter() - t0, 2)
        return out

    start = parse_time(START)
    syn = timed("synth", synthesize, w / "synth", start, s.days, s.level, s.seed, s.overwrite, s.density)
    train_times, test_times = _split_times(start, s.days, s.test_fraction)
    log(f"{len(train_times)} training and {len(test_times)} held-out analysis times")
    pk = dict(n_frames=cfg["time_length"], level=cfg["level_model"], overwrite=s.overwrite)
    timed("pack-obs", pack_obs, [syn.obs], w / "train.packed.nc", times=train_times, **pk)
    pack_obs([syn.obs], w / "test.packed.nc", times=test_times, **pk)
    init = w / "init.safetensors"
    timed("init-ckpt", lambda: write_safetensors(init_checkpoint(PRESET, seed=s.seed), init, overwrite=True))
    ckpt, steps = timed("train", _train, s, w / "train.packed.nc", syn.nature, syn.static, init, log)
    timed("assimilate", assimilate, [w / "test.packed.nc"], ckpt, syn.static, w / "analysis.nc", device="cpu",
          overwrite=True)
    clim, truth, oi = timed("baselines", _baselines, syn.nature, syn.obs, train_times, test_times, s.level)
    a_times, analyses = read_fields(w / "analysis.nc")
    per = {"healda": [], "climatology": [], "oi": []}
    for i, t in enumerate(a_times.tolist()):
        per["healda"].append(scores({k: v[i] for k, v in analyses.items()}, truth[t]))
        per["climatology"].append(scores(clim, truth[t]))
        per["oi"].append(scores(oi[t], truth[t]))
    result = {k: mean_scores(v) for k, v in per.items()}
    report = timed("report", write_report, w, result, syn, test_times[-1], {t: oi[t] for t in test_times[-1:]},
                   steps, timings)
    (w / "scores.json").write_text(json.dumps({"scores": result, "timings": timings, "train_steps": steps,
                                               "test_times": [format_time(t) for t in test_times]}, indent=1))
    return DemoResult(result, report, timings, steps, [format_time(t) for t in test_times])


def headline_table(scores_by_method: dict[str, dict[str, float]]) -> list[dict[str, object]]:
    """Rows (score, unit, healda, climatology, oi) of the headline scores."""
    from healda_core.synth.evaluate import HEADLINE

    units = {"z": "m2 s-2", "t": "K", "wind": "m s-1", "q": "kg kg-1", "t2m": "K", "msl": "Pa"}
    return [{"score": name, "unit": units[var], **{m: float(np.round(v[name], 6)) for m, v in scores_by_method.items()}}
            for name, var, _ in HEADLINE]
