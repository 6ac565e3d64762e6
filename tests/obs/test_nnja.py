"""NNJA PrepBUFR cycle tables (the wide conventional stream of the NNJA parquet archive).

The table below is written in the archive's columns (PrepBUFR mnemonics, one row per report level); the
expected rows are converted here by hand: TOB °C + 273.15 -> K, QOB mg/kg * 1e-6 -> kg/kg, XOB 0..360 -> -180..180,
time = cycle + DHR hours. The same observations as a canonical NetCDF file pack to the same file.
"""

from __future__ import annotations

import shutil

import netCDF4
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.errors import InputError
from healda_core.obs import vocab
from healda_core.obs.packed import load_batch, read_packed
from healda_core.obs.qc import REASON_CODE, run_qc
from healda_core.obs.raw import RawObs
from healda_core.obs.readers import read_obs_file, write_canonical

runner = CliRunner()
CYCLE_S = 1704067200  # 2024-01-01 00 UTC
N = None
# SID, TYP, CAT, XOB, YOB, DHR, ELV, POB, ZOB, TOB, TQM, QOB, QQM, PQM, UOB, VOB, WQM
LEVELS = [
    ("72201", 120, 0, 278.25, 24.5, -1.0, 2.0, 1015.0, 2.0, 24.0, 2, 15000.0, 2, 2, N, N, N),  # sonde surface
    ("72201", 120, 1, 278.25, 24.5, -1.0, 2.0, 850.0, 1500.0, 15.0, 1, 8000.0, 1, 1, N, N, N),
    ("72201", 120, 1, 278.25, 24.5, -1.0, 2.0, 500.0, N, -10.0, 1, N, N, 1, N, N, N),  # no height: derived
    ("72201", 120, 1, 278.25, 24.5, -1.0, 2.0, 300.0, N, N, 9, N, N, 1, N, N, N),  # reported, value missing
    ("72201", 220, 1, 278.25, 24.5, -1.0, 2.0, 500.0, N, N, N, N, N, N, 10.0, -5.0, 2),
    ("AC1234", 131, 6, 10.5, 50.0, 1.5, N, 250.0, 10360.0, -50.0, 3, N, N, N, N, N, N),  # TQM 3: not used
    ("10384", 181, 0, 13.25, 52.5, -0.5, 50.0, 1001.0, N, 10.0, 2, 6000.0, 2, 2, N, N, N),
    ("10384", 281, 0, 13.25, 52.5, -0.5, 50.0, 1001.0, N, N, N, N, N, N, 3.0, 4.0, 2),
]
NAMES = ("SID", "TYP", "CAT", "XOB", "YOB", "DHR", "ELV", "POB", "ZOB", "TOB", "TQM", "QOB", "QQM", "PQM", "UOB",
         "VOB", "WQM")
T, Q, U, V, PS = (vocab.CONV_CODE[k] for k in ("t", "q", "u", "v", "ps"))


def _write_table(path, levels=LEVELS, drop=()):
    cols = {name: [lev[i] for lev in levels] for i, name in enumerate(NAMES) if name not in drop}
    table = pa.table({k: pa.array(v, pa.string() if k == "SID" else pa.float64()) for k, v in cols.items()})
    pq.write_table(table, path, row_group_size=3)  # several row groups
    return path


def _expected() -> RawObs:
    """The rows the table holds, by hand: (level, variable, value, height, use_flag)."""
    rows = [(0, PS, 1015.0, 2.0, 1), (0, Q, 0.015, 2.0, 1), (0, T, 297.15, 2.0, 1),
            (1, Q, 0.008, 1500.0, 1), (1, T, 288.15, 1500.0, 1),
            (2, T, 263.15, np.nan, 1), (3, T, np.nan, np.nan, 0),
            (4, U, 10.0, np.nan, 1), (4, V, -5.0, np.nan, 1),
            (5, T, 223.15, 10360.0, 0),
            (6, PS, 1001.0, 50.0, 1), (6, Q, 0.006, 50.0, 1), (6, T, 283.15, 50.0, 1),
            (7, U, 3.0, 60.0, 1), (7, V, 4.0, 60.0, 1)]
    lev = np.array([r[0] for r in rows])
    col = {name: np.array([LEVELS[i][k] for i in lev], dtype=object) for k, name in enumerate(NAMES)}
    lon = col["XOB"].astype(float)
    return RawObs.from_columns(
        len(rows), time_ns=(CYCLE_S + col["DHR"].astype(float) * 3600).astype(np.int64) * 10**9,
        lat=col["YOB"].astype(float), lon=np.where(lon > 180, lon - 360, lon), value=[r[2] for r in rows],
        sensor=vocab.CONV, channel=[r[1] for r in rows], pressure_hpa=col["POB"].astype(float),
        height=[r[3] for r in rows], obs_type=col["TYP"].astype(int), use_flag=[r[4] for r in rows])


def _order(raw: RawObs) -> np.ndarray:
    return np.lexsort((raw.channel, raw.pressure_hpa, raw.obs_type, raw.lat))


def test_levels_become_rows_in_healda_units(tmp_path):
    raw, fmt = read_obs_file(_write_table(tmp_path / "gdas.20240101.t00z.prepbufr.nr.parquet"))
    exp = _expected()
    assert fmt == "nnja-prepbufr" and len(raw) == len(exp) == 15 and raw.cycle_times == [CYCLE_S]
    a, b = raw.take(_order(raw)), exp.take(_order(exp))
    for name in ("time_ns", "lat", "lon", "value", "channel", "pressure_hpa", "height", "obs_type", "use_flag"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-6, err_msg=name)
    # ps only where POB is a station pressure: the sonde's surface level (CAT 0) and the 181 report
    assert sorted(raw.pressure_hpa[raw.channel == PS].tolist()) == [1001.0, 1015.0]
    qc = run_qc(raw)
    # 500 and 300 hPa t from the 120 ascent's own heights; the 220 report (its own ascent) has none to adapt to
    assert qc.derived == {"radiosonde": {"height_from_profile": 2, "height_from_standard_atmosphere": 2}}
    assert (qc.reason[np.isnan(raw.value)] == REASON_CODE["missing_value"]).all()
    h500 = raw.height[(raw.pressure_hpa == 500) & (raw.channel == T)][0]
    assert 1500 < h500 < 10360  # between the ascent's reported heights


def test_packs_like_the_same_observations_as_a_netcdf_file(tmp_path):
    pqt = _write_table(tmp_path / "gdas.20240101.t00z.prepbufr.nr.parquet")
    nc = tmp_path / "same.nc"
    exp = _expected()
    station = np.array([LEVELS[i][0] for i in [0, 0, 0, 1, 1, 2, 3, 4, 4, 5, 6, 6, 6, 7, 7]], dtype=object)
    # packing keeps the input order within a pixel: write the expected rows in the order the reader yields them
    got, _ = read_obs_file(pqt)
    perm = _order(exp)[np.argsort(_order(got))]
    exp, station = exp.take(perm), station[perm]
    write_canonical(nc, exp)
    with netCDF4.Dataset(nc, "a") as ds:  # the station ids that group the ascent, as the table's SID
        ds.createVariable("station_id", str, ("obs",))[:] = station
        ds.createVariable("use_flag", "i4", ("obs",))[:] = exp.use_flag
    for src, out in ((nc, "a.nc"), (pqt, "b.nc")):
        res = runner.invoke(app, ["pack-obs", str(src), "-t", "2024-01-01T00Z", "-o", str(tmp_path / out),
                                  "--qc-filter"])
        assert res.exit_code == 0, res.output
    pa_, pb = read_packed(tmp_path / "a.nc"), read_packed(tmp_path / "b.nc")
    # 15 rows less the 300 hPa t without a value, the aircraft t of quality mark 3 (--qc-filter) and the two
    # winds of report type 281 (not in situ, dropped by default)
    assert pa_.n_obs == pb.n_obs == 11
    for k in pa_.obs:
        np.testing.assert_array_equal(pb.obs[k], pa_.obs[k], err_msg=k)
    ca, cb = load_batch(tmp_path / "a.nc").context, load_batch(tmp_path / "b.nc").context
    assert ca.float_metadata.shape[1] == 50 and (ca.float_metadata == cb.float_metadata).all()


def test_broken_or_unnamed_tables(tmp_path):
    unnamed = _write_table(tmp_path / "prepbufr.parquet")
    with pytest.raises(InputError) as exc:
        read_obs_file(unnamed)
    assert "DHR" in str(exc.value) and "tHHz" in str(exc.value) and "\n" not in str(exc.value)
    good = _write_table(tmp_path / "gdas.20240101.t00z.prepbufr.nr.parquet")
    cut = tmp_path / "gdas.20240101.t06z.prepbufr.nr.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    res = runner.invoke(app, ["pack-obs", str(cut), "-o", str(tmp_path / "p.nc"), "-t", "2024010106"])
    assert res.exit_code == 3 and res.stderr.startswith("error:") and not (tmp_path / "p.nc").exists()
    typed = tmp_path / "gdas.20240101.t12z.prepbufr.nr.parquet"
    shutil.copy(good, typed)
    t = pq.read_table(typed)
    pq.write_table(t.set_column(t.schema.get_field_index("TOB"), "TOB", pa.array(["warm"] * len(t))), typed)
    with pytest.raises(InputError) as exc:
        read_obs_file(typed)
    assert "TOB" in str(exc.value) and "wrong type" in str(exc.value)
    no_pqm, _ = read_obs_file(_write_table(tmp_path / "x.20240101.t00z.parquet", drop=("PQM",)))
    assert not (no_pqm.channel == PS).any()  # without PQM, POB is only the vertical coordinate
