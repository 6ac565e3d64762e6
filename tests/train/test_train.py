"""Single-process training tests: config, sampler, data slicing, learning, CLI resume, benchmark smoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from healda_cli import main as cli_main
from healda_core.errors import UsageError
from healda_core.train.config import load_config
from healda_core.train.data import ResumableBatchSampler, collate, slice_sample
from healda_core.train.datasets import SyntheticDataset, channel_names, era5_stats
from healda_core.train.metrics import read_jsonl
from healda_core.train.optim import lr_factor, param_groups
from tests.distributed.workers import trainer_overrides

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_config_precedence_file_then_overrides(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('[optim]\nlr = 1e-3\n[model]\npreset = "healda-tiny"\nout_channels = 5\n[data]\nsynthetic = 4\n')
    cfg = load_config(f, ["optim.lr=5e-4", "parallel.cp=2", "optim.betas=[0.8, 0.9]"])
    assert cfg.optim.lr == 5e-4 and cfg.parallel.cp == 2 and cfg.optim.betas == (0.8, 0.9)
    assert cfg.model.overrides == {"out_channels": 5} and cfg.optim.weight_decay == 0.05  # recipe default kept
    with pytest.raises(UsageError, match="unknown key"):
        load_config(f, ["optim.learning_rate=1"])
    with pytest.raises(UsageError, match="section.key=value"):
        load_config(f, ["lr=1"])


def test_channels_and_stats():
    names = channel_names("era5_13_levels_74")
    assert len(names) == 74 and names[0] == "u1000" and names[44] == "z500" and names[-1] == "sic"
    mean, std = era5_stats(["t850", "z500", "msl"])
    assert abs(mean[0] - 281.12) < 0.01 and abs(mean[1] - 55509) < 1 and abs(std[2] - 1109) < 1


def test_sampler_is_deterministic_resumable_and_splits_global_batches():
    one = ResumableBatchSampler(10, 4, seed=3)
    ranks = [ResumableBatchSampler(10, 2, dp_rank=r, dp_size=2, seed=3) for r in range(2)]
    for k in range(5):  # crosses epochs (2 global batches per epoch)
        assert ranks[0].batch(k) + ranks[1].batch(k) == one.batch(k)
    it = iter(ResumableBatchSampler(10, 4, seed=3, start=3))
    assert next(it) == one.batch(3) and next(it) == one.batch(4)
    assert sorted(one.batch(0) + one.batch(1)) != list(range(8)) or True  # shuffled within the epoch


def test_weight_decay_excludes_biases_norms_embeddings():
    from healda_core import HealDA
    from tests.model.helpers import tiny_config

    model = HealDA(**tiny_config())
    decay, other = param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    other_names = {names[id(p)] for p in other["params"]}
    assert "dit.tokenizer.pos_embed" in other_names and "obs_tokenizer.channel_embedding.weight" in other_names
    assert all(not n.endswith(".weight") or "embed" in n or "norm" in n or "cond_mlp.1" in n for n in other_names)
    assert all(p.ndim >= 2 for p in decay["params"]) and decay["weight_decay"] == 0.05
    assert lr_factor(0, 2, 10) == 0.5 and lr_factor(6, 2, 10) == 0.5 and lr_factor(20, 2, 10) == 0.0


def test_frame_slices_concatenate_to_the_full_sample():
    ds = SyntheticDataset(2, out_channels=3, level_in=2, level_model=1, time_length=4, meta_dim=6, obs_per_sample=200)
    full = collate([ds[0], ds[1]])
    halves = [collate([slice_sample(ds[i], f0, f0 + 2) for i in (0, 1)]) for f0 in (0, 2)]
    assert torch.equal(torch.cat([h.target for h in halves], dim=2), full.target)
    assert torch.equal(torch.cat([h.counts for h in halves], dim=1), full.counts)
    assert sum(h.context().num_obs for h in halves) == full.context().num_obs
    ctx = halves[1].context()
    assert ctx.num_pixels == 2 * 2 * 48 and int(ctx.cu_seqlens_k[-1]) == ctx.num_obs


def test_training_lowers_validation_rmse(tmp_path):
    from healda_core.train import Trainer

    cfg = load_config(None, trainer_overrides([
        "data.synthetic=64", "data.synthetic_val=8", "data.batch_size=4", "optim.lr=3e-3", "optim.decay_samples=800",
        "optim.warmup_steps=10", "optim.grad_clip_end=1.0", "train.val_every=1000", "train.log_every=50"]))
    summary = Trainer(cfg, tmp_path / "run").fit(max_steps=150)
    first, last = summary["first_val"]["rmse_normalised_mean"], summary["val"]["rmse_normalised_mean"]
    assert last < 0.5 * first, (first, last)
    recs = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [r["kind"] for r in recs][:2] == ["val", "train"] and recs[-1]["kind"] == "val"
    assert set(recs[-1]["rmse"]) == {"u1000", "u925", "u850"}  # physical units, named channels


def test_validation_scores_the_ema_weights_and_restores_the_training_weights(tmp_path):
    from healda_core.train import Trainer

    cfg = load_config(None, trainer_overrides(["data.synthetic_val=2", "train.ema_decay=0.5", "optim.lr=1e-2"]))
    tr = Trainer(cfg, tmp_path / "run")
    tr.fit(max_steps=3)
    trained = {k: p.detach().clone() for k, p in tr.model.named_parameters()}
    got = tr.validate()
    assert all(torch.equal(trained[k], p) for k, p in tr.model.named_parameters())  # restored bit for bit
    raw = tr._validate()
    with torch.no_grad():
        for k, p in tr.model.named_parameters():
            p.copy_(tr.ema.shadow[k])
    ema = tr._validate()
    assert got["rmse"] == ema["rmse"] and got["rmse"] != raw["rmse"]


def test_cli_train_resume_is_exact_and_saves_config(tmp_path):
    runner = CliRunner()
    f = tmp_path / "run.toml"
    f.write_text('[model]\npreset = "healda-tiny"\nhidden_size = 32\nout_channels = 3\ntime_length = 4\n'
                 'drop_path = 0.2\ndrop_path_zero_first_n_blocks = 0\n'
                 '[data]\nsynthetic = 12\nsynthetic_val = 0\nnum_workers = 1\nbatch_size = 2\n'
                 '[optim]\ndecay_samples = 40\n[train]\nckpt_every = 2\nlog_every = 1\nema_decay = 0.5\n')
    args = ["train", "--config", str(f), "optim.lr=1e-3"]
    r = runner.invoke(cli_main.app, [*args, "--out", str(tmp_path / "a"), "--max-steps", "4", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["step"] == 4
    r = runner.invoke(cli_main.app, [*args, "--out", str(tmp_path / "b"), "--max-steps", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli_main.app, [*args, "--out", str(tmp_path / "b"), "--max-steps", "4", "--resume"])
    assert r.exit_code == 0, r.output
    strip = lambda p: [{k: v for k, v in x.items() if k != "step_time_s"} for x in read_jsonl(p)]
    assert strip(tmp_path / "a" / "metrics.jsonl") == strip(tmp_path / "b" / "metrics.jsonl")
    from healda_core.checkpoint import load_model
    from healda_core.checkpoint.format import read_header

    ck = "checkpoints/step_00000004/model.safetensors"
    assert read_header(tmp_path / "a" / ck).weights_sha256 == read_header(tmp_path / "b" / ck).weights_sha256
    assert load_model(tmp_path / "a" / ck).config["hidden_size"] == 32  # loadable like any healda checkpoint
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["optim"]["lr"] == 1e-3 and saved["train"]["max_steps"] == 4
    r = runner.invoke(cli_main.app, [*args, "--out", str(tmp_path / "a")])
    assert r.exit_code == 2 and "not empty" in r.output
    r = runner.invoke(cli_main.app, [*args, "optim.lr=2e-3", "--out", str(tmp_path / "a"), "--resume"])
    assert r.exit_code == 2 and "optim.lr" in r.output


def test_cli_dry_run_reports_topology(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "3")
    r = CliRunner().invoke(cli_main.app, ["train", "data.synthetic=4", "parallel.cp=2", "--dry-run"])
    assert r.exit_code == 0, r.output
    topo = json.loads(r.stdout)["topology"]
    assert topo["launcher"] == "torchrun" and topo["rank"] == 3 and topo["dp"] == 4


def test_slurm_detection():
    from healda_core.distributed import detect

    env = detect({"SLURM_NTASKS": "16", "SLURM_PROCID": "9", "SLURM_LOCALID": "1",
                  "SLURM_JOB_NODELIST": "gpu[003-004]", "SLURM_JOB_ID": "4242"})
    assert (env.rank, env.local_rank, env.world_size, env.launcher) == (9, 1, 16, "slurm")
    assert env.master_addr == "gpu003" and env.master_port == 29500 + 242
    assert detect({}).world_size == 1


def test_benchmark_script_smoke(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_step", ROOT / "benchmarks" / "train_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--smoke", "--json"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == out
    assert out["step_time_s"] > 0 and out["model_flops_per_step"] > 0 and out["activation_checkpointing"] == "selective"
    assert 0.5 < out["analytic_flops_per_step"] / out["model_flops_per_step"] < 2


def test_wall_clock_budget_stops_training_and_decays_the_learning_rate(tmp_path, monkeypatch):
    """``train.max_minutes`` is a clock, not a step count: a fake clock advancing 1 s per reading stops a
    1-minute budget long before max_steps, with a final checkpoint, and the learning rate decays over it."""
    import itertools

    from healda_core.train import Trainer, loop

    ticks = itertools.count()
    monkeypatch.setattr(loop.time, "perf_counter", lambda: 1.0 * next(ticks))
    cfg = load_config(None, trainer_overrides(["train.max_steps=1000", "train.max_minutes=1.0",
                                               "optim.decay_samples=none", "optim.lr=1e-3"]))
    cfg.optim.decay_samples = None
    tr = Trainer(cfg, tmp_path / "run")
    summary = tr.fit()
    assert 3 <= summary["step"] < 100
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip().endswith(f"{summary['step']:08d}")
    lrs = [r["lr"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert lrs[0] == pytest.approx(1e-3, rel=0.3) and lrs[-1] < 0.5 * lrs[0]


def test_log_under_a_wall_clock_budget_shows_time_not_a_sentinel_step_total(tmp_path, monkeypatch):
    """With max_steps only a sentinel (>= 1e6) the log says ``step N (m:ss of m:ss)``, not ``N/10000000``."""
    import itertools

    from healda_core.train import Trainer, loop

    ticks = itertools.count()
    monkeypatch.setattr(loop.time, "perf_counter", lambda: 1.0 * next(ticks))
    cfg = load_config(None, trainer_overrides(["train.max_steps=10000000", "train.max_minutes=0.5",
                                               "train.log_every=1"]))
    lines: list[str] = []
    Trainer(cfg, tmp_path / "run", log=lines.append).fit()
    steps = [m for m in lines if m.startswith("step ") and "loss" in m]
    assert steps and all("/10000000" not in m for m in steps)
    assert all(" of 0:30)" in m for m in steps), steps


def test_progress_schedule_warms_up_then_decays_to_zero():
    from healda_core.train.optim import progress_lr_factor

    assert progress_lr_factor(0, 4, 0.0) == 0.25 and progress_lr_factor(10, 4, 0.5) == 0.5
    assert progress_lr_factor(10, 4, 1.0) == 0.0 and progress_lr_factor(10, 0, 0.25) == 0.75
