"""Traps a new user meets packing real files: packed metadata, analysis times without data, plot defaults."""

from __future__ import annotations

import netCDF4
import numpy as np
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.obs import vocab
from healda_core.obs.packed_schema import CF_VERSION
from healda_core.plot import plot_map
from tests.cli.synthetic import write_synthetic_raw

runner = CliRunner()


def _pack(tmp_path, *args):
    raw = write_synthetic_raw(tmp_path / "raw.nc", analysis="2024-01-02T00:00", n_sat=300, n_conv=100)
    return runner.invoke(app, ["pack-obs", str(raw), "-o", str(tmp_path / "p.nc"), *args])


def test_packed_metadata_is_self_consistent(tmp_path):
    res = _pack(tmp_path, "--time", "2024-01-02T00Z", "--json")
    assert res.exit_code == 0, res.stderr
    import json

    summary = json.loads(res.stdout)
    with netCDF4.Dataset(tmp_path / "p.nc") as ds:
        assert ds.Conventions == CF_VERSION == "CF-1.13"  # the analyses' version (tests/cli/test_assimilate.py)
        units = list(ds["channel_units"][:])
        names = list(ds["channel_name"][:])
        by_name = dict(zip(names, units))
        assert by_name["amsua_7"] == "K" and by_name["t_500"] == "K" and by_name["u_250"] == "m s-1"
        assert by_name["ps"] == "hPa" and by_name["q_850"] == "kg kg-1" and by_name["iasi-pca_1"] == "1"
        for name in ("channel_mean", "channel_std", "channel_valid_min", "channel_valid_max", "value_raw"):
            atts = ds[name].__dict__
            assert "units" not in atts or atts["units"] != "1"  # not dimensionless: per-channel units
        for v in ds.variables.values():  # every variable named in a comment exists
            for text in (getattr(v, "long_name", ""), getattr(v, "comment", "")):
                assert "channel_units" not in text or "channel_units" in ds.variables
        file_sensors = set(ds["sensor_name"][:])
    packed = [row["sensor"] for row in summary["sensors"]]
    assert "conv-plevel" in packed and set(packed) <= file_sensors


def test_time_without_observations_warns_and_strict_refuses(tmp_path):
    res = _pack(tmp_path, "--time", "2025-06-01T00Z")
    assert res.exit_code == 0 and "warning: no observation falls in the window of analysis time 2025-06-01" \
        in res.stderr
    (tmp_path / "p.nc").unlink()
    res = _pack(tmp_path, "--time", "2025-06-01T00Z", "--strict")
    assert res.exit_code == 3 and "--strict" in res.stderr and not (tmp_path / "p.nc").exists()


def test_non_synoptic_time_warns_and_strict_refuses(tmp_path):
    res = _pack(tmp_path, "--time", "2024-01-01T21Z")
    assert res.exit_code == 0 and "not a synoptic hour" in res.stderr
    (tmp_path / "p.nc").unlink()
    res = _pack(tmp_path, "--time", "2024-01-01T21Z", "--strict")
    assert res.exit_code == 2 and "not a synoptic hour" in res.stderr and not (tmp_path / "p.nc").exists()


def _analysis_like(path):
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", 2)
        ds.createDimension("level", len(vocab.PLEVELS_HPA))
        ds.createDimension("cell", 48)
        t = ds.createVariable("time", "i8", ("time",))
        t.units, t.calendar = "seconds since 1970-01-01T00:00:00Z", "proleptic_gregorian"
        t[:] = [1704153600, 1704175200]  # 2024-01-02 00 and 06 UTC
        ds.createVariable("level", "f4", ("level",))[:] = vocab.PLEVELS_HPA
        v = ds.createVariable("t", "f4", ("time", "level", "cell"))
        v.units, v.long_name = "K", "air temperature"
        v[:] = np.arange(2 * 13 * 48, dtype=np.float32).reshape(2, 13, 48)
    return path


def test_plot_titles_by_date_and_reports_its_defaults(tmp_path):
    src = _analysis_like(tmp_path / "an.nc")
    path, title, defaults = plot_map(src, "t", tmp_path / "m.png")
    assert path.exists() and "500 hPa" in title and "2024-01-02 06:00 UTC" in title
    assert any("level 500 hPa" in d for d in defaults) and any("last time of 2" in d for d in defaults)
    _, title, defaults = plot_map(src, "t", tmp_path / "m2.png", level=850, time=0)
    assert "850 hPa" in title and "2024-01-02 00:00 UTC" in title and defaults == []
    res = runner.invoke(app, ["plot", str(src), "--var", "t", "-o", str(tmp_path / "m3.png")])
    assert res.exit_code == 0 and res.stdout.strip() == str(tmp_path / "m3.png")
    assert "level 500 hPa (--level picks another)" in res.stderr
