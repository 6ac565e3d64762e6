"""``run_demo``: the embedded default — an observing-system simulation experiment (OSSE) end to end.

Per seed (:mod:`healda_core.synth.experiment`): synthesize training realisations and an independent one
(``synth`` + ``pack-obs``), train HealDA from a fresh initialisation for a wall-clock budget (``train``),
``assimilate`` the independent realisation (and the held-out later times of the first training realisation),
and score against the nature run beside climatology and an optimal interpolation (OI) of the same
conventional observations. Several seeds give mean and spread; a score is won only if won for every seed.
Writes ``scores.json`` (per-seed values and the summary) and ``report.md`` with the charts and maps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from healda_core.errors import UsageError
from healda_core.obs.frames import format_time
from healda_core.synth import experiment as ex

METHODS = ("healda", "climatology", "oi")
COLUMNS = ("independent", "later")


@dataclass
class Recipe:
    """Everything an experiment does besides the seed (``RECIPES``)."""

    n_train: int  # training realisations
    days: float  # length of each training realisation
    test_days: float  # length of the independent realisation
    density: float  # observing-network scale (see healda_core.synth.run.draw_observations)
    later_fraction: float  # of the first training realisation's times, held out for the secondary column
    train: ex.TrainRecipe
    synth_workers: int = 1


RECIPES: dict[str, Recipe] = {
    # 2 CPU cores, one seed in 10 minutes with set-up (docs/osse.md)
    "cpu": Recipe(n_train=8, days=3.5, test_days=3.5, density=0.15, later_fraction=0.2,
                  train=ex.TrainRecipe(preset="healda-demo", minutes=6.0, lr=2e-3, warmup_steps=10, batch_size=1,
                                       num_workers=0, device="cpu")),
    # one GPU with 16 CPU cores beside it, one seed in about 4 minutes
    "gpu": Recipe(n_train=24, days=6.0, test_days=3.5, density=0.3, later_fraction=0.2, synth_workers=13,
                  train=ex.TrainRecipe(preset="healda-demo-gpu", minutes=3.0, lr=2e-3, warmup_steps=50,
                                       batch_size=8, num_workers=10, device="cuda")),
}


@dataclass
class DemoSettings:
    """What ``healda demo`` runs: a recipe, seeds, and optional overrides of the recipe's budget and device."""

    workdir: Path
    seeds: list[int] = field(default_factory=lambda: [0])
    recipe: str = "cpu"
    minutes: float | None = None  # training budget per seed (None: the recipe's)
    days: float | None = None  # length of each training realisation (None: the recipe's)
    device: str | None = None  # None: the recipe's

    def resolved(self) -> Recipe:
        if self.recipe not in RECIPES:
            raise UsageError(f"--recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        r = RECIPES[self.recipe]
        train = replace(r.train, minutes=self.minutes or r.train.minutes, device=self.device or r.train.device)
        return replace(r, train=train, days=self.days or r.days)


@dataclass
class DemoResult:
    """``summary[column][method][score]`` = {"mean", "std", "values"}; ``wins[score]`` vs each baseline."""

    summary: dict[str, dict[str, dict[str, dict]]]
    wins: dict[str, dict[str, bool]]
    report: Path
    per_seed: dict[int, dict] = field(default_factory=dict)


def run_seed(rec: Recipe, seed: int, w: Path, log: Callable[[str], None], stage: Callable[[str], None]) -> dict:
    """One experiment in ``w``: returns {"scores": {column: {method: {score: rmse}}}, "timings", ...}."""
    from healda_core.presets import preset_config

    cfg = preset_config(rec.train.preset)
    level, timings = cfg["level_in"], {}  # nature run and scores at level_in, observations packed at level_model
    reals = ex.realisations(seed, rec.n_train, rec.days, rec.test_days)
    times = ex.split_times(reals, rec.later_fraction)
    stage(f"seed {seed}: synth + pack-obs")
    paths = ex.timed(timings, "synth+pack", ex.make_realisations, reals, times, w / "synth", level, cfg["level_model"],
                     rec.density, cfg["time_length"], rec.synth_workers)
    clim_mean, clim_std = ex.training_climatology(paths, times)
    n_train_times = sum(len(t["train"]) for t in times.values())
    log(f"seed {seed}: {rec.n_train} training realisations ({n_train_times} analysis times), "
        f"{len(times['test']['test'])} independent and {len(times['train0']['later'])} later times")
    from healda_core.synth.warmstart import normalised_climatology
    from healda_core.train.datasets import channel_names

    names = channel_names("era5_13_levels_74")
    weights = ex.loss_weights(clim_std, names) if rec.train.weighted_loss else None
    clim = normalised_climatology(clim_mean, names, level) if rec.train.climatology_start else None
    stage(f"seed {seed}: train")
    ckpt, steps = ex.timed(timings, "train", ex.train_model, rec.train, seed, paths, weights, clim, w, log)
    stage(f"seed {seed}: assimilate + baselines")
    from healda_core.synth.verify import verify

    scores, fields = ex.timed(timings, "assimilate+baselines", verify, paths, times, ckpt, clim_mean, clim_std,
                              level, rec.train.device, w)
    return {"seed": seed, "scores": scores, "timings": timings, "train_steps": steps, "fields": fields,
            "test_times": [format_time(t) for t in times["test"]["test"]],
            "realisations": [r.__dict__ for r in reals]}


def summarise(per_seed: dict[int, dict]) -> tuple[dict, dict]:
    """Mean, spread and per-seed values per column, method and score; wins over each baseline (every seed)."""
    from healda_core.synth.evaluate import HEADLINE

    seeds = sorted(per_seed)
    summary: dict = {}
    for col in (c for c in COLUMNS if c in per_seed[seeds[0]]["scores"]):
        summary[col] = {}
        for m in METHODS:
            keys = per_seed[seeds[0]]["scores"][col][m].keys()
            summary[col][m] = {k: _stats([per_seed[s]["scores"][col][m][k] for s in seeds]) for k in keys}
    ind = {s: per_seed[s]["scores"]["independent"] for s in seeds}
    wins = {name: {f"vs_{b}": all(ind[s]["healda"][name] < ind[s][b][name] for s in seeds)
                   for b in ("climatology", "oi")} for name, _v, _l in HEADLINE}
    return summary, wins


def _stats(values: list[float]) -> dict:
    a = np.array(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "values": [float(v) for v in a]}


def run_demo(s: DemoSettings, log: Callable[[str], None] = lambda m: None,
             stage: Callable[[str], None] = lambda m: None) -> DemoResult:
    """Run the OSSE for every seed of ``s`` in ``s.workdir/seed-N``; summary and report in ``s.workdir``."""
    from healda_core.synth.report import write_report

    rec = s.resolved()
    if not s.seeds or len(set(s.seeds)) != len(s.seeds):
        raise UsageError(f"--seeds must list distinct integers, got {s.seeds}")
    w = Path(s.workdir)
    w.mkdir(parents=True, exist_ok=True)
    per_seed = {}
    for seed in s.seeds:
        per_seed[seed] = run_seed(rec, seed, w / f"seed-{seed}", log, stage)
        summary, wins = summarise(per_seed)
        _write_scores(w, s, rec, summary, wins, per_seed)  # after every seed: a cut-off run keeps its seeds
    stage("report")
    report = write_report(w, summary, wins, per_seed, s, rec)
    return DemoResult(summary, wins, report, per_seed)


def _write_scores(w: Path, s: DemoSettings, rec: Recipe, summary: dict, wins: dict, per_seed: dict) -> None:
    doc = {"recipe": s.recipe, "seeds": sorted(per_seed), "summary": summary, "wins": wins,
           "settings": {"n_train": rec.n_train, "days": rec.days, "test_days": rec.test_days, "density": rec.density,
                        "later_fraction": rec.later_fraction, "train": rec.train.__dict__},
           "per_seed": {str(k): {kk: vv for kk, vv in v.items() if kk != "fields"} for k, v in per_seed.items()}}
    tmp = w / "scores.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(w / "scores.json")


def headline_table(summary: dict, column: str = "independent") -> list[dict[str, object]]:
    """Rows (score, unit, per method: mean and std) of the headline scores of ``column``."""
    from healda_core.synth.evaluate import HEADLINE, UNITS

    return [{"score": name, "unit": UNITS[name],
             **{m: round(summary[column][m][name]["mean"], 6) for m in METHODS},
             **{f"{m}_std": round(summary[column][m][name]["std"], 6) for m in METHODS}} for name, _v, _l in HEADLINE]
