"""The OSSE demo: independent realisations, no leak of the verification data into training, the multi-seed path."""

from __future__ import annotations

import itertools
import json

import netCDF4
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.synth import demo, experiment
from healda_core.synth.evaluate import HEADLINE


def test_realisations_have_own_seeds_and_disjoint_periods():
    seen_seeds: set[int] = set()
    for seed in (0, 1, 2):
        reals = experiment.realisations(seed, 4, 5.0, 3.5)
        test = [r for r in reals if r.role == "test"]
        assert len(test) == 1 and len(reals) == 5
        streams = [r.nature_seed for r in reals] + [r.nature_seed + 1 for r in reals]  # spectra, observations
        assert len(set(streams)) == len(streams) and not seen_seeds & set(streams)
        seen_seeds |= set(streams)
        assert len({r.planet_seed for r in reals}) == 1  # one planet, so the static inputs are shared
        spans = sorted((r.start_s, r.start_s + r.days * 86400) for r in reals)
        assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))  # no calendar overlap between realisations


def test_split_holds_the_independent_and_later_times_out_of_training():
    reals = experiment.realisations(0, 3, 5.0, 3.5)
    times = experiment.split_times(reals, 0.2)
    train = {t for v in times.values() for t in v["train"]}
    assert times["test"]["train"] == [] and times["test"]["test"]
    assert not train & set(times["test"]["test"]) and not train & set(times["train0"]["later"])
    assert times["train0"]["later"] and all(t > max(times["train0"]["train"]) for t in times["train0"]["later"])
    assert times["train1"]["later"] == [] and times["train1"]["train"] == reals[1].analysis_times()


def test_different_realisations_have_different_weather_on_one_planet():
    from healda_core.synth.nature import NatureRun

    a, b = NatureRun(3, seed=0, planet_seed=7), NatureRun(3, seed=2, planet_seed=7)
    assert np.array_equal(a.statics["orography"], b.statics["orography"])
    za, zb = a.fields(0.0)["z"][5], b.fields(0.0)["z"][5]
    assert np.corrcoef(za, zb)[0, 1] < 0.9


def test_loss_weights_follow_the_inverse_anomaly_spread():
    from healda_core.train.datasets import channel_names, era5_stats

    names = channel_names("era5_13_levels_74")
    _, era = era5_stats(names)
    clim_std = {v: np.full(13, 1.0) for v in "uvtzq"} | {n: np.float64(1.0) for n in names[65:]}
    clim_std["t"] = era[26:39] * 0.2  # spread of 0.2 normalised units
    clim_std["u"] = era[0:13] * 1.0  # spread of 1 normalised unit
    w = experiment.loss_weights(clim_std, names)
    assert len(w) == 74 and np.isclose(np.mean(w), 1.0)
    assert w[names.index("t850")] > w[names.index("u850")]


#: the code paths of the gpu recipe at a tiny size: synthesis in worker processes, loader workers, batches > 1
TINY = demo.Recipe(n_train=2, days=2.5, test_days=2.0, density=0.05, later_fraction=0.2, synth_workers=2,
                   train=experiment.TrainRecipe(preset="healda-tiny", minutes=0.02, lr=1e-3, warmup_steps=2,
                                                batch_size=2, num_workers=2, device="cpu"))


@pytest.mark.slow
def test_multi_seed_demo_scores_the_independent_realisation_only(tmp_path, monkeypatch):
    monkeypatch.setitem(demo.RECIPES, "tiny", TINY)
    res = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path), "--recipe", "tiny", "--seeds", "0,1",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    doc = json.loads((tmp_path / "scores.json").read_text())
    assert set(doc["per_seed"]) == {"0", "1"}
    # training read only the training realisations: the independent one is in no training input
    for seed in ("0", "1"):
        cfg = json.loads((tmp_path / f"seed-{seed}" / "train" / "config.json").read_text())
        files = cfg["data"]["train_obs"] + cfg["data"]["targets"]
        assert files and all("/test/" not in f for f in files)
        assert all(f"seed-{seed}/synth/train" in f for f in files)
        steps = doc["per_seed"][seed]["train_steps"]
        assert steps >= 1
    # summary = mean and spread of the per-seed values; wins = won for every seed
    for name, _v, _l in HEADLINE:
        for m in demo.METHODS:
            s = doc["summary"]["independent"][m][name]
            vals = [doc["per_seed"][k]["scores"]["independent"][m][name] for k in ("0", "1")]
            assert np.isclose(s["mean"], np.mean(vals)) and np.allclose(s["values"], vals)
            assert np.isclose(s["std"], np.std(vals, ddof=1))
        per = [doc["per_seed"][k]["scores"]["independent"] for k in ("0", "1")]
        assert doc["wins"][name]["vs_climatology"] == all(p["healda"][name] < p["climatology"][name] for p in per)
    assert "later" in doc["summary"] and out["headline"][0]["score"] == "z500"
    # the OI analyses the surface: its msl beats its background (climatology) where stations observe
    assert doc["summary"]["independent"]["oi"]["msl"]["mean"] < doc["summary"]["independent"]["climatology"]["msl"]["mean"]
    report = (tmp_path / "report.md").read_text()
    assert "| z500 |" in report and "± " in report and "Later times" in report
    pngs = [line.split("(")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert len(pngs) == 1 + 5 * len(HEADLINE)  # the bar chart, then truth, analysis, three errors per score
    for name in pngs:
        img = np.asarray(Image.open(tmp_path / name).convert("L"), dtype=float)
        assert img.shape[0] > 200 and img.shape[1] > 400 and img.std() > 10


@pytest.mark.slow
def test_climatology_is_the_mean_of_the_training_times_only(tmp_path):
    reals = experiment.realisations(3, 2, 2.5, 2.0)
    times = experiment.split_times(reals, 0.3)
    paths = experiment.make_realisations(reals, times, tmp_path, 2, 1, 0.05, 8, 1)
    mean, _ = experiment.training_climatology(paths, times)
    rows = []
    for name in ("train0", "train1"):
        with netCDF4.Dataset(paths[name]["nature"]) as ds:
            t = np.asarray(ds["time"][:], dtype=np.int64)
            rows.append(np.asarray(ds["t"][:])[np.isin(t, times[name]["train"])])
    expected = np.concatenate(rows).reshape(-1, 13, rows[0].shape[-1]).mean(0)
    assert np.allclose(mean["t"], expected, rtol=0, atol=1e-3)
    with netCDF4.Dataset(paths["test"]["nature"]) as ds:
        test_mean = np.asarray(ds["t"][:]).reshape(-1, 13, rows[0].shape[-1]).mean(0)
    assert not np.allclose(mean["t"], test_mean, atol=1e-3)  # the independent realisation is not in it


def test_unknown_recipe_and_bad_seeds_are_usage_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["demo", "--workdir", str(tmp_path), "--recipe", "nope"])
    assert res.exit_code == 2 and "recipe" in res.output
    res = runner.invoke(app, ["demo", "--workdir", str(tmp_path), "--seeds", "0,0"])
    assert res.exit_code == 2 and "distinct" in res.output
