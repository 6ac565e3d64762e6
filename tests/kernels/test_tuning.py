"""Autotune cache: opt-in, atomic, corrupt/foreign files re-tune with a warning, deterministic mode."""

from __future__ import annotations

import json

import pytest
import torch

from healda_core.kernels import tuning
from tests.kernels.conftest import gpu


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    monkeypatch.setattr(tuning, "OVERRIDE", None)
    for var in ("HEALDA_AUTOTUNE", "HEALDA_AUTOTUNE_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)  # the caller's environment must not decide these tests
    monkeypatch.setattr(tuning, "STATE", tuning._State())
    monkeypatch.setattr(tuning, "TUNERS", {})
    monkeypatch.setattr(tuning, "can_time", lambda device: True)
    monkeypatch.setattr(tuning, "time_ms", lambda fn, budget_ms=40.0: fn())
    t = tuning.Tuner("k", [dict(A=1), dict(A=2), dict(A=3)], dict(A=1))
    return t, tmp_path


def _tune(t, key=("x", 1)):
    calls = []
    cfg = t.choose(key, lambda c: calls.append(c) or {1: 3.0, 2: 1.0, 3: 2.0}[c["A"]], torch.device("cpu"))
    return cfg, calls


def test_tunes_once_per_bucket_and_writes_nothing_unless_asked(fresh):
    t, tmp = fresh
    cfg, calls = _tune(t)
    assert cfg == dict(A=2) and len(calls) == 3
    assert _tune(t)[1] == []  # cached in memory
    assert tuning.cache_path() is None and tuning.save_cache() is None
    assert list(tmp.iterdir()) == []


def test_saved_cache_is_reused_without_timing(fresh):
    t, tmp = fresh
    tuning.configure(cache_dir=tmp, save=True)
    _tune(t)
    path = tuning.cache_path()
    assert path.exists() and not list(tmp.glob("*.tmp"))
    doc = json.loads(path.read_text())
    assert doc["format"] == tuning.FORMAT and doc["kernels"]["k"]
    t.cache.clear()
    tuning.STATE.loaded = False
    cfg, calls = _tune(t)
    assert cfg == dict(A=2) and calls == []


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 999, "kernels": {}}), "[]"])
def test_corrupt_or_foreign_cache_warns_and_retunes(fresh, content):
    t, tmp = fresh
    tuning.configure(cache_dir=tmp, save=False)
    tuning.cache_path().write_text(content)
    with pytest.warns(UserWarning, match="autotune cache"):
        cfg, calls = _tune(t)
    assert cfg == dict(A=2) and len(calls) == 3


def test_invalid_entry_is_ignored(fresh):
    t, tmp = fresh
    tuning.configure(cache_dir=tmp, save=False)
    doc = dict(tuning._header(), kernels={"k": {json.dumps(["x", 1]): {"A": "evil"}}})
    tuning.cache_path().write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="invalid"):
        cfg, calls = _tune(t)
    assert len(calls) == 3


def test_deterministic_mode_never_times(fresh):
    t, _ = fresh
    tuning.configure(deterministic=True)
    cfg, calls = _tune(t)
    assert cfg == t.default and calls == []


def test_env_opt_in(monkeypatch, tmp_path):
    monkeypatch.setenv("HEALDA_AUTOTUNE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HEALDA_AUTOTUNE", "deterministic")
    s = tuning._State()
    assert s.cache_dir == tmp_path and s.save and s.deterministic


def test_kernel_force_applies_unless_the_override_variable_is_set(fresh, monkeypatch):
    t = tuning.Tuner("w", [dict(A=1, num_warps=4), dict(A=2, num_warps=8)], dict(A=1, num_warps=4),
                     force=dict(num_warps=2))
    timings = {(1, 2): 2.0, (2, 2): 1.0, (1, 4): 3.0, (2, 8): 0.5, (1, 16): 1.0, (2, 16): 4.0}

    def choose(key):
        return t.choose(key, lambda c: timings[(c["A"], c["num_warps"])], torch.device("cpu"))

    assert choose(("a",)) == dict(A=2, num_warps=2)  # the kernel's own known-good warp count
    monkeypatch.setattr(tuning, "OVERRIDE", {})
    assert choose(("b",)) == dict(A=2, num_warps=8)  # nothing forced: every candidate as listed
    monkeypatch.setattr(tuning, "OVERRIDE", {"num_warps": 16})
    assert choose(("c",)) == dict(A=1, num_warps=16)  # the override wins over the kernel's setting


@gpu
def test_time_ms_times_rounds_of_back_to_back_calls():
    calls = []
    tuning.time_ms(lambda: calls.append(1))
    assert len(calls) == 1 + 1 + 5 * 50  # warm-up, sizing call, 5 rounds at the 50-call cap (microsecond calls)
    calls.clear()
    x = torch.randn(4096, 4096, device="cuda")
    tuning.time_ms(lambda: calls.append(x @ x), budget_ms=5.0, rounds=2)  # ~0.1 ms each: fewer per round
    assert 1 + 1 + 2 <= len(calls) < 1 + 1 + 2 * 50


def _write_entries(cache_dir: str, worker: int, n: int, barrier) -> None:
    """One process of the concurrent-writer test: ``n`` entries of its own, one cache write after each."""
    tuning.STATE = tuning._State()
    tuning.TUNERS = {}
    tuning.configure(cache_dir=cache_dir, save=True)
    t = tuning.Tuner("k", [dict(A=1), dict(A=2)], dict(A=1))
    barrier.wait()
    for i in range(n):
        t.cache[json.dumps([worker, i])] = dict(A=worker * 1000 + i)
        tuning.save_cache()


def test_concurrent_cache_writers_keep_every_entry(fresh):
    import multiprocessing as mp

    _, tmp = fresh
    ctx = mp.get_context("fork")  # the children only read and write JSON files
    workers, n = 4, 40
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_write_entries, args=(str(tmp), w, n, barrier)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    tuning.configure(cache_dir=tmp)
    entries = json.loads(tuning.cache_path().read_text())["kernels"]["k"]
    assert entries == {json.dumps([w, i]): dict(A=w * 1000 + i) for w in range(workers) for i in range(n)}
    assert not list(tmp.glob("*.tmp"))


def test_a_killed_writers_temporary_is_removed_by_the_next_write(fresh):
    t, tmp = fresh
    tuning.configure(cache_dir=tmp, save=True)
    path = tuning.cache_path()
    stale = tmp / f"{path.name}.abc123.tmp"
    stale.write_text('{"torn')
    _tune(t)
    assert path.exists() and not stale.exists()
