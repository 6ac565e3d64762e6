"""``pack-obs`` on hostile or broken observation files: extreme times, absurd claimed sizes, repeats, bad fields.

Each test reruns a probe: exit 0 with the bad rows counted as dropped, or exit 3 with one ``error:`` line;
never a traceback, never an output file.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.obs.raw import NAT, TIME_MAX_NS, TIME_MIN_NS
from healda_core.obs.readers import read_obs_file
from healda_core.obs.readers.common import to_time_ns
from tests.checkpoint.test_refusals import refused
from tests.cli.synthetic import write_synthetic_raw

runner = CliRunner()
TIME = "2024-01-02T00Z"


def _cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def raw(tmp_path) -> Path:
    return write_synthetic_raw(tmp_path / "raw.nc", n_sat=60, n_conv=40)


def _set(path: Path, name: str, index, value) -> None:
    with netCDF4.Dataset(path, "a") as ds:
        v = ds[name]
        v.set_auto_maskandscale(False)
        a = v[:]
        a[index] = value
        v[:] = a


@pytest.mark.parametrize("value", [np.iinfo(np.int64).max, np.iinfo(np.int64).min + 1, -(2**62), 8 * 10**18])
def test_extreme_times_are_dropped_not_overflowed(raw, tmp_path, value):
    _set(raw, "time", 3, value)
    out = tmp_path / "o.nc"
    res = _cli("pack-obs", raw, "-o", out, "--json")  # no --time: the times are inferred from the file
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    assert "bad time" in res.stderr  # the row is counted as a drop
    assert read_obs_file(raw)[0].time_ns[3] == NAT


def test_time_conversion_never_wraps():
    big = np.array([np.iinfo(np.int64).max, 2**62, 10**9, -(2**62), 0], dtype=np.int64)
    got = to_time_ns(big, 1_000_000_000, 0, np.zeros(5, bool))
    assert got.tolist() == [NAT, NAT, 10**18, NAT, 0]
    hours = np.array([1e300, -np.inf, np.nan, 1.5])
    got = to_time_ns(hours, 3_600_000_000_000, 1704067200 * 10**9, np.isnan(hours))
    assert got.tolist() == [NAT, NAT, NAT, 1704067200 * 10**9 + 5_400_000_000_000]
    edges = np.array([TIME_MIN_NS - 1, TIME_MIN_NS, TIME_MAX_NS - 1, TIME_MAX_NS], dtype=np.int64)
    assert to_time_ns(edges, 1, 0, np.zeros(4, bool)).tolist() == [NAT, TIME_MIN_NS, TIME_MAX_NS - 1, NAT]


@pytest.mark.parametrize("when", ["9999-01-01T00Z", "1066-10-14T09Z"])
def test_absurd_analysis_time_is_a_usage_error(raw, tmp_path, when):
    res = _cli("pack-obs", raw, "-o", tmp_path / "o.nc", "--time", when)
    assert res.exit_code == 2 and "outside 1900" in res.stderr and "Traceback" not in res.output


def test_absurd_time_units_reference_refused(raw, tmp_path):
    with netCDF4.Dataset(raw, "a") as ds:
        ds["time"].units = "seconds since 9999-01-01T00:00:00Z"
    out = tmp_path / "o.nc"
    refused(_cli("pack-obs", raw, "-o", out, "--time", TIME), "variable 'time'", "outside 1900", out=out)


def _claiming(path: Path, rows: int, written: int = 100) -> Path:
    """A canonical file whose obs dimension claims ``rows`` rows while only ``written`` hold data."""
    src = write_synthetic_raw(path.with_name("src.nc"), n_sat=written // 2, n_conv=written - written // 2)
    with netCDF4.Dataset(src) as s, netCDF4.Dataset(path, "w") as d:
        d.createDimension("obs", rows)
        d.setncatts({a: s.getncattr(a) for a in s.ncattrs()})
        for name, v in s.variables.items():
            nv = d.createVariable(name, v.dtype, v.dimensions, zlib=True, chunksizes=(min(rows, 1 << 20),))
            nv.setncatts({a: v.getncattr(a) for a in v.ncattrs() if a != "_FillValue"})
            nv[:written] = v[:]
    return path


def test_file_claiming_two_billion_rows_refused_before_allocating(tmp_path):
    huge = _claiming(tmp_path / "huge.nc", 2_000_000_000)
    assert huge.stat().st_size < 200_000
    out = tmp_path / "o.nc"
    refused(_cli("pack-obs", huge, "-o", out, "--time", TIME), "claim", "GB", "cannot be there", out=out)


def test_claim_beyond_the_memory_budget_refused(tmp_path, monkeypatch):
    from healda_core import fileio

    f = _claiming(tmp_path / "big.nc", 200_000, written=200_000)
    monkeypatch.setattr(fileio, "available_memory", lambda: 10_000_000)  # 10 MB: half is below the claim
    out = tmp_path / "o.nc"
    refused(_cli("pack-obs", f, "-o", out, "--time", TIME), "memory budget", out=out)
    monkeypatch.undo()
    assert _cli("pack-obs", f, "-o", out, "--time", TIME).exit_code == 0


def test_every_row_with_a_bad_latitude_names_the_latitude(raw, tmp_path):
    with netCDF4.Dataset(raw, "a") as ds:
        ds["lat"][:] = np.full(ds.dimensions["obs"].size, 123.0, np.float32)
    out = tmp_path / "o.nc"
    line = refused(_cli("pack-obs", raw, "-o", out), "bad_latlon 100", "give --time", out=out)
    assert "no valid observation times" not in line


def test_same_input_twice_is_packed_once_with_a_warning(raw, tmp_path):
    once, twice = tmp_path / "once.nc", tmp_path / "twice.nc"
    assert _cli("pack-obs", raw, "-o", once, "--time", TIME).exit_code == 0
    res = _cli("pack-obs", raw, str(raw.parent / ".." / raw.parent.name / raw.name), "-o", twice, "--time", TIME)
    assert res.exit_code == 0, res.output
    assert "the same file as" in res.stderr
    from healda_core.obs.packed import read_packed

    assert read_packed(twice).n_obs == read_packed(once).n_obs


def test_parquet_claim_beyond_the_memory_budget_refused(tmp_path, monkeypatch):
    from healda_core import fileio
    from healda_core.obs.readers import write_parquet
    from tests.cli.synthetic import synthetic_raw

    f = tmp_path / "obs.parquet"
    write_parquet(f, synthetic_raw(n_sat=20_000, n_conv=0))
    monkeypatch.setattr(fileio, "available_memory", lambda: 1_000_000)  # half of it is below 20,000 rows
    out = tmp_path / "o.nc"
    refused(_cli("pack-obs", f, "-o", out, "--time", TIME), "footer claims", "memory budget", out=out)


def test_multi_line_library_messages_become_one_line(tmp_path, monkeypatch):
    import healda_cli.commands.pack_obs as cmd
    from healda_core.errors import InputError

    def boom(*_a, **_k):
        raise InputError(f"{tmp_path}: cannot read (first line\nsecond line\n  third)")

    monkeypatch.setattr(cmd, "pack_obs", boom)
    raw = write_synthetic_raw(tmp_path / "raw.nc", n_sat=10, n_conv=10)
    line = refused(_cli("pack-obs", raw, "-o", tmp_path / "o.nc"), "first line second line third")
    assert "\n" not in line
