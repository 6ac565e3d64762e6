"""`healda fit` in the OSSE: fitting the nature run itself gives the synth observation errors back.

The synth observations are the nature run interpolated bilinearly at each station (the same scheme as
`grid.interp_weights`), on the 13 standard levels for sondes, plus Gaussian errors of known standard deviation
(`synth.observe.ERRORS`). So O − A of the nature run is exactly that error for observations at the analysis
times: the RMSE must match the error std within sampling (relative standard error 1/sqrt(2n) ≈ 1.5 % for
n ≈ 2000; tolerance 6 %), and the bias must be within 4 standard errors of zero.
"""

from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.obs.readers import read_obs_file
from healda_core.synth.observe import ERRORS
from healda_core.synth.run import synthesize

T0 = 1704067200  # 2024-01-01T00Z
runner = CliRunner()


@pytest.fixture(scope="module")
def osse(tmp_path_factory):
    d = tmp_path_factory.mktemp("osse")
    synthesize(d, T0, 1.0, level=4, seed=3, density=0.25)
    return d


def _fit(osse, *args):
    res = runner.invoke(app, ["fit", str(osse / "nature.nc"), *map(str, args), "--json", "-O"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout), res


def _row(summary, platform, variable):
    (row,) = [r for r in summary["rows"] if r["platform"] == platform and r["variable"] == variable]
    return row


@pytest.mark.parametrize(("platform", "variable", "std"), [
    ("radiosonde", "t", ERRORS["t"]), ("radiosonde", "u", ERRORS["uv"]), ("radiosonde", "v", ERRORS["uv"]),
    ("surface", "ps", ERRORS["ps_hpa"]),
])
def test_fit_of_the_nature_run_recovers_the_observation_errors(osse, platform, variable, std):
    summary, res = _fit(osse, osse / "obs.nc", "-o", osse / "fit.nc", "--window", "10min")
    row = _row(summary, platform, variable)
    n = row["count"]
    assert n > 300
    assert row["oma_rmse"] == pytest.approx(std, rel=max(0.06, 4 / np.sqrt(2 * n)))
    assert abs(row["oma_bias"]) < 4 * std / np.sqrt(n)
    assert "O-A rmse" in res.stderr and platform in res.stderr  # the table is on stderr


def test_humidity_error_is_relative(osse):
    """q errors are 10 % of the value: RMSE = 0.1 · rms(q_true)."""
    summary, _ = _fit(osse, osse / "obs.nc", "-o", osse / "fit.nc", "--window", "10min")
    row = _row(summary, "radiosonde", "q")
    with netCDF4.Dataset(osse / "fit.nc") as ds:
        q_true = np.ma.compressed(ds["hofx/specificHumidity"][:])
    assert row["oma_rmse"] == pytest.approx(ERRORS["q_rel"] * np.sqrt((q_true ** 2).mean()), rel=0.08)


def test_fit_file_is_ioda_and_background_gives_omb(osse, tmp_path):
    with netCDF4.Dataset(osse / "nature.nc") as src, netCDF4.Dataset(tmp_path / "clim.nc", "w") as dst:
        # a one-time climatology: the time mean of the nature run, in the same layout
        for name, dim in src.dimensions.items():
            dst.createDimension(name, 1 if name == "time" else len(dim))
        for name, v in src.variables.items():
            out = dst.createVariable(name, v.dtype, v.dimensions)
            out.setncatts({k: v.getncattr(k) for k in v.ncattrs() if k != "_FillValue"})
            data = v[:]
            out[:] = data.mean(axis=0, keepdims=True).astype(v.dtype) if v.dimensions[:1] == ("time",) else data
    summary, res = _fit(osse, osse / "obs.nc", "-o", tmp_path / "fit.nc", "--background", tmp_path / "clim.nc")
    row = _row(summary, "radiosonde", "t")
    assert row["omb_rmse"] > 1.5 * row["oma_rmse"] and "O-B rmse" in res.stderr
    # as the analysis, the one-time file only fits the observations within its window (not all 30 hours)
    as_analysis = runner.invoke(app, ["fit", str(tmp_path / "clim.nc"), str(osse / "obs.nc"), "-o",
                                      str(tmp_path / "c.nc"), "--window", "1h", "--json"])
    one = json.loads(as_analysis.stdout)
    assert 0 < one["n_fitted"] < summary["n_fitted"] / 3 and one["not_fitted"]["outside_time_window"] > 0
    raw, fmt = read_obs_file(tmp_path / "fit.nc")  # the fit file reads back as IODA: its observations
    assert fmt == "ioda" and int(np.isfinite(raw.value).sum()) == summary["n_fitted"]
    with netCDF4.Dataset(tmp_path / "fit.nc") as ds:
        assert set(ds.groups) == {"MetaData", "ObsValue", "hofx", "oman", "ombg"}
        o, a = ds["ObsValue/airTemperature"][:], ds["hofx/airTemperature"][:]
        np.testing.assert_allclose(ds["oman/airTemperature"][:].compressed(), (o - a).compressed(), atol=1e-4)


def test_fit_of_a_packed_file_matches_the_raw_file(osse, tmp_path):
    packed = tmp_path / "p.nc"
    res = runner.invoke(app, ["pack-obs", str(osse / "obs.nc"), "--time", "2024-01-01T12Z", "-o", str(packed)])
    assert res.exit_code == 0, res.output
    from_packed, _ = _fit(osse, packed, "-o", tmp_path / "fp.nc", "--window", "10min")
    row = _row(from_packed, "radiosonde", "t")
    assert row["count"] > 100 and row["oma_rmse"] == pytest.approx(ERRORS["t"], rel=0.15)
    assert {r["variable"] for r in from_packed["rows"]} >= {"t", "q", "u", "v", "ps"}


def test_bad_inputs(osse, tmp_path):
    res = runner.invoke(app, ["fit", str(osse / "obs.nc"), str(osse / "obs.nc"), "-o", str(tmp_path / "x.nc")])
    assert res.exit_code == 3 and "required variable missing" in res.stderr and not (tmp_path / "x.nc").exists()
