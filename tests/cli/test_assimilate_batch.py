"""`healda assimilate` over several packed files: one model load, background reading and writing.

A batch must give bitwise the outputs of one call per analysis; a failure anywhere (reading, the forward,
writing, a corrupt checkpoint found by the background hash check) leaves no output and no thread behind.
"""

from __future__ import annotations

import threading
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.analysis_io import ATMOS_VARS, SURFACE_VARS
from tests.cli.synthetic import write_latlon_invariants, write_synthetic_raw

runner = CliRunner()
TIMES = ("2024-01-02T00:00Z", "2024-01-02T06:00Z", "2024-01-02T12:00Z")
VARS = [v.name for v in ATMOS_VARS + SURFACE_VARS]


def _ok(*args: object):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("batch")
    raw = write_synthetic_raw(d / "raw.nc", analysis="2024-01-02T12:00", hours=60)
    packed = []
    for i, t in enumerate(TIMES):  # one file per analysis time
        packed.append(d / f"obs{i}.nc")
        _ok("pack-obs", raw, "--time", t, "--level", 1, "-o", packed[-1])
    _ok("make-static", write_latlon_invariants(d / "inv.nc"), "--level", 2, "-o", d / "static.nc")
    _ok("init-ckpt", "--preset", "healda-tiny", "-o", d / "tiny.safetensors")
    return {"dir": d, "packed": packed, "static": d / "static.nc", "ckpt": d / "tiny.safetensors"}


def _assimilate(work: dict, packed: list[Path], out: Path, *extra: object):
    return runner.invoke(app, ["assimilate", *map(str, packed), "--ckpt", str(work["ckpt"]), "--static",
                               str(work["static"]), "-o", str(out), *map(str, extra)])


def _fields(path: Path) -> dict[str, np.ndarray]:
    with netCDF4.Dataset(path) as ds:
        return {"time": ds["time"][:].data, **{v: ds[v][:].data for v in VARS}}


def _no_pipeline_threads() -> bool:
    names = ("healda-reader", "healda-writer", "healda-hash", "healda-read")
    return not [t for t in threading.enumerate() if t.name.startswith(names) and t.is_alive()]


def test_a_batch_equals_one_analysis_at_a_time_bitwise(work):
    d = work["dir"]
    res = _assimilate(work, work["packed"], d / "all.nc", "--lat-lon", 10)
    assert res.exit_code == 0, res.output
    batch, batch_ll = _fields(d / "all.nc"), _fields(d / "all.latlon.nc")
    assert batch["time"].size == 3
    for i, p in enumerate(work["packed"]):
        res = _assimilate(work, [p], d / f"one{i}.nc", "--lat-lon", 10)
        assert res.exit_code == 0, res.output
        for got, one in ((batch, _fields(d / f"one{i}.nc")), (batch_ll, _fields(d / f"one{i}.latlon.nc"))):
            assert one["time"].size == 1 and one["time"][0] == got["time"][i]
            for v in VARS:
                assert np.array_equal(got[v][i], one[v][0], equal_nan=True), (v, i)
    assert _no_pipeline_threads()


def test_the_packed_hashes_are_recorded_once_every_file_is_read(work):
    import hashlib
    import json

    out = work["dir"] / "hashes.nc"
    assert _assimilate(work, work["packed"], out).exit_code == 0
    with netCDF4.Dataset(out) as ds:
        recorded = json.loads(ds.healda_packed_sha256)
    assert recorded == [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in work["packed"]]


def _left(d: Path, stem: str) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith((stem, f".{stem}")))


@pytest.mark.parametrize("where", ["read", "forward", "write"])
def test_a_failure_mid_batch_leaves_no_output_and_no_thread(work, monkeypatch, where):
    import healda_core.analysis_io as aio
    import healda_core.inference as inference
    import healda_core.obs.packed as packed_mod
    from healda_core.errors import InputError

    calls = {"n": 0}

    def second_fails(real):
        def wrapped(*a, **k):
            calls["n"] += 1
            if calls["n"] == 2:
                if where == "read":
                    raise InputError("obs1.nc: unreadable observations (test)")
                raise RuntimeError(f"{where} failed (test)")
            return real(*a, **k)
        return wrapped

    if where == "read":
        monkeypatch.setattr(packed_mod, "read_packed", second_fails(packed_mod.read_packed))
    elif where == "forward":
        monkeypatch.setattr(inference.AnalysisStep, "__call__", second_fails(inference.AnalysisStep.__call__))
    else:
        monkeypatch.setattr(aio.AnalysisWriter, "write", second_fails(aio.AnalysisWriter.write))
    stem = f"fail_{where}"
    res = _assimilate(work, work["packed"], work["dir"] / f"{stem}.nc", "--lat-lon", 10)
    assert res.exit_code == (3 if where == "read" else 1), res.output
    assert calls["n"] == 2
    assert _left(work["dir"], stem) == []  # neither output nor temporary files
    assert _no_pipeline_threads()


def test_a_corrupt_checkpoint_found_by_the_background_hash_leaves_no_output(work, tmp_path):
    from healda_core.checkpoint.format import read_raw_header

    bad = tmp_path / "flipped.safetensors"
    data = bytearray(Path(work["ckpt"]).read_bytes())
    header = read_raw_header(work["ckpt"])
    base = len(data) - max(int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__")
    name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32"
                and "weight" in k and int(v["data_offsets"][1]) - int(v["data_offsets"][0]) >= 64)
    at = base + int(header[name]["data_offsets"][0]) + 1
    data[at] ^= 0x01  # a finite value stays finite: only the hash can tell
    bad.write_bytes(bytes(data))
    out = tmp_path / "an.nc"
    res = runner.invoke(app, ["assimilate", *map(str, work["packed"]), "--ckpt", str(bad), "--static",
                              str(work["static"]), "-o", str(out)])
    assert res.exit_code == 3, res.output
    assert "weight hash mismatch" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flipped.safetensors"]
    assert _no_pipeline_threads()


def test_json_reports_the_breakdown_per_analysis(work):
    import json

    out = work["dir"] / "timed.nc"
    res = _assimilate(work, work["packed"], out, "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["analyses"] == 3 and len(info["timings"]) == 3
    for row in info["timings"]:
        assert set(row) == {"analyses", "n_obs", "read", "wait", "h2d", "forward", "write", "written"}
        assert row["analyses"] == 1 and row["n_obs"] > 0 and min(row.values()) >= 0
    written = [row["written"] for row in info["timings"]]
    assert written == sorted(written) and written[0] == pytest.approx(info["first_analysis_s"], abs=1e-3)
    assert sum(r["n_obs"] for r in info["timings"]) == info["n_obs"]
    assert 0 < info["checkpoint_s"] <= info["first_analysis_s"] <= info["wall_s"]


def test_assimilate_compiles_every_forward_after_the_first_when_enough_follow():
    from healda_core.assimilate import COMPILE_MIN_FORWARDS, _compile_now

    n = COMPILE_MIN_FORWARDS + 1
    assert [_compile_now(k, n) for k in range(n)] == [False] + [True] * (n - 1)
    assert not any(_compile_now(k, n - 1) for k in range(n - 1))
