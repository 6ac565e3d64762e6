"""``healda pack-obs`` end to end: stdout carries only the path, errors and exit codes, stdin inputs."""

from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.obs.raw import RawObs
from healda_core.obs.readers import write_canonical

T0 = 1704067200
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_tty(monkeypatch):
    for var in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def _raw(n: int = 60) -> RawObs:
    rng = np.random.default_rng(0)
    conv = np.arange(n) % 2 == 0
    return RawObs.from_columns(
        n, time_ns=(T0 + rng.integers(-10 * 3600, 3 * 3600, n)) * 10**9, lat=rng.uniform(-80, 80, n),
        lon=rng.uniform(0, 360, n), value=np.where(conv, 250.0, 230.0), sensor=np.where(conv, 6, 2),
        channel=np.where(conv, 6, 7), platform=np.where(conv, -1, 15),
        scan_angle=np.where(conv, np.nan, 5.0), sat_zenith=np.where(conv, np.nan, 5.0),
        solar_zenith=np.where(conv, np.nan, 5.0), pressure_hpa=np.where(conv, 500.0, np.nan),
        height=np.where(conv, np.nan, np.nan), obs_type=np.where(conv, 120, 0))


@pytest.fixture
def raw_file(tmp_path):
    p = tmp_path / "raw.nc"
    write_canonical(p, _raw())
    return p


def test_stdout_is_only_the_path(raw_file):
    res = runner.invoke(app, ["pack-obs", str(raw_file), "--time", "2024-01-01T00:00Z"])
    assert res.exit_code == 0, res.stderr
    out = raw_file.with_name("raw.packed.nc")
    assert res.stdout == f"{out}\n"
    assert "amsua" in res.stderr and "conv" in res.stderr and "kept" in res.stderr  # per-sensor table
    assert "heights and pressures derived" in res.stderr and "radiosonde" in res.stderr  # per-platform table
    (row,) = [line for line in res.stderr.splitlines() if "radiosonde" in line]
    assert row.split()[-2] == "30"  # 30 heights from the standard atmosphere (no station ids: no profiles)
    with xr.open_dataset(out) as ds:
        assert "Z: " in ds.attrs["history"]  # "<ISO time>Z: <argv>" (argv is pytest's under CliRunner)
        assert ds.sizes["obs"] == 60 and ds.sizes["analysis"] == 1


def test_refuses_overwrite_without_O(raw_file, tmp_path):
    out = tmp_path / "o.nc"
    assert runner.invoke(app, ["pack-obs", str(raw_file), "-o", str(out), "-t", "2024010100"]).exit_code == 0
    before = out.read_bytes()
    res = runner.invoke(app, ["pack-obs", str(raw_file), "-o", str(out), "-t", "2024010100"])
    assert res.exit_code == 2 and "-O" in res.stderr and res.stdout == ""
    assert out.read_bytes() == before
    res = runner.invoke(app, ["pack-obs", str(raw_file), "-o", str(out), "-t", "2024010100", "-O", "--no-history"])
    assert res.exit_code == 0
    with netCDF4.Dataset(out) as ds:
        assert "history" not in ds.ncattrs()


def test_stdin_inputs_and_json(raw_file, tmp_path):
    second = tmp_path / "raw2.nc"
    write_canonical(second, _raw(20))
    out = tmp_path / "both.nc"
    res = runner.invoke(app, ["pack-obs", "-", "-o", str(out), "--json", "-q", "-t", "2024010100"],
                        input=f"{raw_file}\n{second}\n")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["output"] == str(out) and summary["inputs"] == [str(raw_file), str(second)]
    assert sum(s["read"] for s in summary["sensors"]) == 80 and res.stderr == ""


def test_inferred_time_is_printed(raw_file, tmp_path):
    res = runner.invoke(app, ["pack-obs", str(raw_file), "-o", str(tmp_path / "x.nc")])
    assert res.exit_code == 0
    assert "inferred" in res.stderr and "2024-01-01T00:00:00Z" in res.stderr


def test_start_end_every(raw_file, tmp_path):
    res = runner.invoke(app, ["pack-obs", str(raw_file), "-o", str(tmp_path / "r.nc"), "--json",
                              "--start", "2024-01-01T00", "--end", "2024-01-01T12", "--every", "6h"])
    assert res.exit_code == 0
    assert len(json.loads(res.stdout)["analysis_times"]) == 3


@pytest.mark.parametrize(("content", "words"), [(b"", "empty file"), (b"not netcdf at all", "not a NetCDF")])
def test_bad_input_exit_3_no_output(tmp_path, content, words):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(content)
    res = runner.invoke(app, ["pack-obs", str(bad), "-t", "2024010100"])
    assert res.exit_code == 3 and res.stdout == ""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and words in lines[0]
    assert not (tmp_path / "bad.packed.nc").exists() and not list(tmp_path.glob(".*tmp*"))


def test_missing_variable_names_it(raw_file, tmp_path):
    with netCDF4.Dataset(raw_file, "a") as ds:
        ds.renameVariable("value", "obsval")
        ds.renameVariable("sensor", "sensor_code")
    res = runner.invoke(app, ["pack-obs", str(raw_file), "-t", "2024010100"])
    assert res.exit_code == 3  # no longer canonical: unrecognised layout
    assert "unrecognised layout" in res.stderr
    with netCDF4.Dataset(raw_file, "a") as ds:
        ds.renameVariable("obsval", "value")
        ds.renameVariable("sensor_code", "sensor")
        ds.renameVariable("lon", "longitude")
    res = runner.invoke(app, ["pack-obs", str(raw_file), "-t", "2024010100"])
    assert res.exit_code == 3 and "variable 'lon'" in res.stderr and str(raw_file) in res.stderr
    assert not raw_file.with_name("raw.packed.nc").exists()


def test_usage_errors(raw_file):
    res = runner.invoke(app, ["pack-obs", str(raw_file), "--time", "whenever"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["pack-obs", str(raw_file), "--start", "2024010100"])
    assert res.exit_code == 2
