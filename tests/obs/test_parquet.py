"""Parquet reader (UFS combined schema): the same observations as a NetCDF file pack to identical features."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.errors import InputError
from healda_core.obs.packed import load_batch, read_packed
from healda_core.obs.readers import read_obs_file, write_canonical, write_parquet
from tests.cli.synthetic import synthetic_raw

runner = CliRunner()


@pytest.fixture
def same_obs(tmp_path):
    raw = synthetic_raw(n_sat=3000, n_conv=1500, seed=5)
    # pressures in whole hPa so that the canonical file's Pa (x100) round-trips exactly in float32
    raw.pressure_hpa[:] = np.round(raw.pressure_hpa)
    nc, pqt = tmp_path / "obs.nc", tmp_path / "obs.parquet"
    write_canonical(nc, raw)
    write_parquet(pqt, raw, row_group_rows=1000)  # several row groups
    return nc, pqt, raw


def test_rows_equal_those_of_the_netcdf_file(same_obs):
    nc, pqt, raw = same_obs
    a, fa = read_obs_file(nc)
    b, fb = read_obs_file(pqt)
    assert (fa, fb) == ("canonical", "parquet") and len(b) == len(raw)
    assert pq.ParquetFile(pqt).metadata.num_row_groups == 5
    for name in ("time_ns", "lat", "lon", "value", "sensor", "channel", "platform", "scan_angle", "sat_zenith",
                 "solar_zenith", "pressure_hpa", "height", "obs_type"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)


def test_packed_features_equal_those_of_the_netcdf_path(same_obs, tmp_path):
    nc, pqt, _ = same_obs
    for src, out in ((nc, "a.nc"), (pqt, "b.nc")):
        res = runner.invoke(app, ["pack-obs", str(src), "-t", "2024-01-02T00Z", "-o", str(tmp_path / out)])
        assert res.exit_code == 0, res.output
    pa_, pb = read_packed(tmp_path / "a.nc"), read_packed(tmp_path / "b.nc")
    assert pa_.n_obs == pb.n_obs > 3000
    for k in pa_.obs:
        np.testing.assert_array_equal(pb.obs[k], pa_.obs[k], err_msg=k)
    ca, cb = load_batch(tmp_path / "a.nc").context, load_batch(tmp_path / "b.nc").context
    assert ca.float_metadata.shape[1] == 50
    assert torch.equal(ca.float_metadata, cb.float_metadata) and torch.equal(ca.obs, cb.obs)
    assert torch.equal(ca.channel, cb.channel) and torch.equal(ca.cu_seqlens_k, cb.cu_seqlens_k)


def test_nulls_and_reference_columns(tmp_path):
    """Null Platform_ID / Observation_Type / angles as the reference tables have them; timestamps in us."""
    t = pa.table({
        "Observation": pa.array([230.0, 250.0], pa.float32()), "Latitude": pa.array([10.0, 20.0], pa.float32()),
        "Longitude": pa.array([350.0, -10.0], pa.float32()),
        "Absolute_Obs_Time": pa.array([1704067200_000000, 1704067260_000000], pa.timestamp("us")),
        "DA_window": pa.array([1704067200_000000] * 2, pa.timestamp("us")),
        "Platform_ID": pa.array([15, None], pa.uint16()), "Global_Channel_ID": pa.array([27 + 6, 322 + 5], pa.uint16()),
        "Sat_Zenith_Angle": pa.array([5.0, None], pa.float32()), "Sol_Zenith_Angle": pa.array([50.0, None], pa.float32()),
        "Scan_Angle": pa.array([4.0, None], pa.float32()), "Pressure": pa.array([None, 500.0], pa.float32()),
        "Height": pa.array([None, None], pa.float32()), "Observation_Type": pa.array([None, 120], pa.uint16()),
        "QC_Flag": pa.array([0, 1], pa.int32()), "Analysis_Use_Flag": pa.array([1, -1], pa.int8()),
    })
    p = tmp_path / "ufs.parquet"
    pq.write_table(t, p)
    raw, fmt = read_obs_file(p)
    assert fmt == "parquet" and raw.sensor.tolist() == [2, 6] and raw.channel.tolist() == [7, 6]  # amsua 7, conv t
    assert raw.platform.tolist() == [15, -1] and raw.obs_type.tolist() == [0, 120]
    assert raw.lon.tolist() == [-10.0, -10.0] and raw.time_ns[1] == 1704067260 * 10**9
    assert np.isnan(raw.height[1]) and raw.pressure_hpa[1] == 500.0 and np.isnan(raw.scan_angle[1])
    assert raw.qc_flag.tolist() == [0, 1] and raw.use_flag.tolist() == [1, -1]


def test_broken_parquet_files(tmp_path, same_obs):
    _, pqt, _ = same_obs
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(pqt.read_bytes()[:5000])
    with pytest.raises(InputError) as exc:
        read_obs_file(cut)
    assert str(cut) in str(exc.value) and "parquet" in str(exc.value) and "\n" not in str(exc.value)
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"Observation": [1.0], "Latitude": [1.0]}), bad)
    res = runner.invoke(app, ["pack-obs", str(bad), "-o", str(tmp_path / "p.nc"), "-t", "2024010100"])
    assert res.exit_code == 3 and "Longitude" in res.stderr and "missing" in res.stderr
    assert not (tmp_path / "p.nc").exists()
