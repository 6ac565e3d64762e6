"""Writers killed with SIGKILL leave nothing that the next run does not clean up, and never a partial output."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.fileio import atomic_output, remove_stale_temps, temp_path
from healda_core.obs.packed import read_packed
from tests.cli.synthetic import write_synthetic_raw

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
TIME = "2024-01-02T00Z"


def _temps(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".tmp" in p.name)


def _complete(out: Path) -> bool:
    return read_packed(out).n_obs > 100_000


def _spawn(raw: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEALDA_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "healda_cli", "-q", "pack-obs", str(raw), "-o", str(out),
                             "--time", TIME, "-O"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(proc: subprocess.Popen, folder: Path, delay: float) -> None:
    """SIGKILL ``proc`` ``delay`` seconds after its temporary output appears (or when it ends first)."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and not _temps(folder) and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_pack_obs_killed_at_random_points(tmp_path):
    raw = write_synthetic_raw(tmp_path / "raw.nc", n_sat=150_000, n_conv=30_000)
    work = tmp_path / "out"
    work.mkdir()
    out = work / "packed.nc"
    rng = random.Random(20240102)
    delays = [0.0] + [rng.uniform(0.0, 0.6) for _ in range(3)]
    left_behind = 0
    for delay in delays:
        _kill_when(_spawn(raw, out), work, delay)
        left_behind += bool(_temps(work))
        if out.exists():  # an output only ever appears whole (rename after the last byte)
            assert _complete(out)
    assert left_behind >= 1  # the first kill lands while the temporary file is being written
    res = runner.invoke(app, ["pack-obs", str(raw), "-o", str(out), "--time", TIME, "-O"])
    assert res.exit_code == 0, res.output
    assert _temps(work) == []  # the next run removed what the killed ones left
    assert _complete(out)


def test_stale_temps_of_dead_processes_only_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = temp_path(tmp_path / "x").name.split(".")[-2]
    stale = [tmp_path / f".a.nc.tmp.{host}.{dead.pid}", tmp_path / f".b.safetensors.tmp.{dead.pid}"]
    kept = [tmp_path / f".a.nc.tmp.{host}.{os.getpid()}",  # a live writer (this process)
            tmp_path / f".a.nc.tmp.otherhost.{dead.pid}",  # another host's writer on a shared file system
            tmp_path / "notes.tmp.txt", tmp_path / "a.nc"]
    for p in stale + kept:
        p.write_text("x")
    with atomic_output(tmp_path / "c.nc") as tmp:
        tmp.write_text("data")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in kept] + ["c.nc"])
    assert remove_stale_temps(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "o.nc"
    with pytest.raises(ValueError), atomic_output(out) as tmp:
        tmp.write_text("partial")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_training_checkpoint_temps_of_a_killed_run_are_removed(tmp_path):
    import torch

    from healda_core.presets import preset_config
    from healda_core.train import checkpointing

    root = tmp_path / "checkpoints"
    stale = root / ".step_00000002.tmp"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"partial")
    cfg = preset_config("healda-tiny")
    from healda_core.model.healda import HealDA

    model = HealDA(**cfg)
    torch.manual_seed(0)
    state = {"step": 4, "consumed": 8, "optimizer": {}, "scheduler": {}, "ema": None, "dp_size": 1, "cp_size": 1}
    final = checkpointing.save(root, 4, model_state=model.state_dict(), model_config=cfg, train_state=state,
                               ema_state=None, rank=0, extra={})
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_00000004"]
    assert (root / "latest").read_text().strip() == final.name


def test_metrics_line_torn_by_a_kill_is_dropped_on_resume(tmp_path):
    from healda_core.train.metrics import JsonlLog

    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n{"step": 3, "lo')
    JsonlLog(p, enabled=True).truncate_after(2)
    assert p.read_text() == '{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n'
    assert _temps(tmp_path) == []
