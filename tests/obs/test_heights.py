"""Heights and pressures derived for conventional rows: from a report's own levels, else the standard atmosphere.

The GSI-style file follows the public GSI ncdiag conventions of ``diag_conv_t`` files (variables as written by
GSI's ``setupt``: ``Station_ID`` chars, ``Observation_Class``, ``Observation_Type``, ``Latitude``,
``Longitude``, ``Station_Elevation``, ``Pressure`` hPa, ``Height`` m, ``Time`` h from ``date_time``,
``Prep_QC_Mark``, ``Analysis_Use_Flag``, ``Errinv_*``, ``Observation``, ``Obs_Minus_Forecast_*``), with the
BUFRLIB missing value 1e11 in ``Height`` for the radiosonde levels that carry none.
"""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.obs import stdatm
from healda_core.obs.qc import run_qc
from healda_core.obs.readers import read_obs_file

MISSING = 1.0e11
LEVELS_A = [1000.0, 925.0, 850.0, 700.0, 500.0, 400.0, 300.0, 250.0, 200.0, 150.0, 100.0, 70.0, 50.0]
LEVELS_B = [1010.0, 925.0, 850.0, 780.0, 700.0, 600.0, 500.0, 300.0, 100.0]
B_ANCHORS = (850.0, 500.0)
ELEV_A = 250.0


def departure_b(p):
    """Height minus standard-atmosphere height of station B's true ascent, linear in log-pressure (m)."""
    return 40.0 + 60.0 * np.log(np.asarray(p) / 850.0)


def true_height_b(p):
    return stdatm.height_from_pressure(np.asarray(p)) + departure_b(p)


def gsi_rows():
    """(station, type, lat, lon, elev, pressure, height, value, use) of the file, in row order."""
    rows = []
    for i, p in enumerate(LEVELS_A):  # station A: only its surface level has a height
        rows.append(("72520", 120, 40.5, 279.8, ELEV_A, p, ELEV_A if i == 0 else MISSING, 290.0 - 0.1 * i, 1))
    for p in LEVELS_B:  # station B: two significant levels carry heights
        h = float(true_height_b(p)) if p in B_ANCHORS else MISSING
        rows.append(("47646", 120, 36.1, 140.1, 31.0, p, h, 280.0, 1))
    rows.append(("AAL123", 130, 10.0, 200.0, MISSING, 250.0, MISSING, 225.0, 1))  # aircraft, no height
    rows.append(("40153", 181, 31.7, 35.6, -27.0, 1016.0, -27.0, 295.0, 1))  # station below sea level
    rows.append(("40154", 181, 31.8, 35.5, -10.0, 1015.0, -10.0, MISSING, 1))  # missing temperature
    rows.append(("40155", 181, 31.9, 35.4, 5.0, 1012.0, 5.0, 400.0, -1))  # rejected: above 350 K
    return rows


def write_gsi_conv_t(path, rows=None):
    rows = rows or gsi_rows()
    n = len(rows)
    c = list(zip(*rows))
    with netCDF4.Dataset(path, "w") as ds:
        ds.date_time = np.int32(2024010112)
        ds.createDimension("nobs", n)
        ds.createDimension("Station_ID_maxstrlen", 8)
        ds.createDimension("Observation_Class_maxstrlen", 7)
        sid = ds.createVariable("Station_ID", "S1", ("nobs", "Station_ID_maxstrlen"))
        sid[:] = netCDF4.stringtochar(np.array([s.ljust(8) for s in c[0]], "S8"))
        cls = ds.createVariable("Observation_Class", "S1", ("nobs", "Observation_Class_maxstrlen"))
        cls[:] = netCDF4.stringtochar(np.array(["t      "] * n, "S7"))
        for name, dtype, data in (
            ("Observation_Type", "i4", c[1]), ("Observation_Subtype", "i4", [0] * n), ("Latitude", "f4", c[2]),
            ("Longitude", "f4", c[3]), ("Station_Elevation", "f4", c[4]), ("Pressure", "f4", c[5]),
            ("Height", "f4", c[6]), ("Time", "f4", np.linspace(-2.5, 2.5, n)), ("Prep_QC_Mark", "f4", [2.0] * n),
            ("Prep_Use_Flag", "f4", [0.0] * n), ("Analysis_Use_Flag", "f4", c[8]),
            ("Errinv_Input", "f4", [1.0] * n), ("Errinv_Adjust", "f4", [1.0] * n), ("Errinv_Final", "f4", [1.0] * n),
            ("Observation", "f4", c[7]), ("Obs_Minus_Forecast_adjusted", "f4", [0.1] * n),
            ("Obs_Minus_Forecast_unadjusted", "f4", [0.1] * n),
        ):
            ds.createVariable(name, dtype, ("nobs",))[:] = np.asarray(data, dtype)
    return path


@pytest.fixture
def gsi_file(tmp_path):
    return write_gsi_conv_t(tmp_path / "diag_conv_t_ges.2024010112_control.nc4")


def test_gsi_missing_heights_are_read_as_missing(gsi_file):
    raw, fmt = read_obs_file(gsi_file)
    assert fmt == "gsi" and len(raw) == len(gsi_rows())
    assert np.isnan(raw.height[1:len(LEVELS_A)]).all() and raw.height[0] == ELEV_A
    assert np.isnan(raw.value[-2]) and raw.lon[0] == pytest.approx(279.8 - 360.0)  # 0..360 -> -180..180
    assert raw.profile is not None and len(set(raw.profile[:len(LEVELS_A) + len(LEVELS_B)])) == 2
    assert (raw.profile[-4:] == -1).all()  # aircraft and surface reports are not profiles


def test_heights_from_the_ascent_and_the_standard_atmosphere(gsi_file):
    raw, _ = read_obs_file(gsi_file)
    qc = run_qc(raw)
    na, nb = len(LEVELS_A), len(LEVELS_B)
    assert qc.derived == {"radiosonde": {"height_from_profile": (na - 1) + (nb - 2)},
                          "aircraft": {"height_from_standard_atmosphere": 1}}
    # station A: the surface level shifts the standard atmosphere by a constant departure
    d_a = ELEV_A - stdatm.height_from_pressure(np.array([1000.0]))[0]
    np.testing.assert_allclose(raw.height[:na], stdatm.height_from_pressure(np.array(LEVELS_A)) + d_a, atol=0.05)
    # station B: exact between its two complete levels (departure linear in log p), held constant outside
    hb, pb = raw.height[na:na + nb], np.array(LEVELS_B)
    inside = (pb <= 850.0) & (pb >= 500.0)
    np.testing.assert_allclose(hb[inside], true_height_b(pb[inside]), atol=0.05)
    d_edge = np.where(pb > 850.0, departure_b(850.0), departure_b(500.0))
    np.testing.assert_allclose(hb[~inside], (stdatm.height_from_pressure(pb) + d_edge)[~inside], atol=0.05)
    assert raw.height[na + nb] == pytest.approx(10362.9, abs=1.0)  # 250 hPa in the ICAO atmosphere
    reasons = qc.reason.tolist()
    assert reasons[:-2] == [0] * (len(reasons) - 2)  # every usable row kept, the sub-sea-level station too


def test_pressure_from_the_ascent():
    p = np.array([1000.0, np.nan, 500.0], np.float32)
    h = np.array([300.0, 3200.0, 5774.4], np.float32)  # departure +189.1 m at 1000 hPa, +200 m at 500 hPa
    code = stdatm.complete_vertical(p, h, np.array([7, 7, 7]))
    assert code.tolist() == [0, stdatm.DERIVED.index("pressure_from_profile"), 0]
    d = 189.1 + (3200.0 - 300.0) / (5774.4 - 300.0) * (200.0 - 189.1)
    assert p[1] == pytest.approx(stdatm.pressure_from_height(np.array([3200.0 - d]))[0], rel=1e-5)


def test_pack_obs_keeps_every_usable_row_and_counts_derived_per_platform(gsi_file, tmp_path):
    out = tmp_path / "packed.nc"
    res = CliRunner().invoke(app, ["pack-obs", str(gsi_file), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.stderr
    import json

    summary = json.loads(res.stdout)
    (conv,) = summary["sensors"]
    assert conv == {"sensor": "conv-plevel", "read": len(gsi_rows()), "kept": len(gsi_rows()) - 2,
                    "dropped": {"missing_value": 1, "bad_value": 1}}
    assert summary["derived"]["radiosonde"] == {"height_from_profile": len(LEVELS_A) + len(LEVELS_B) - 3}
    assert "height from profile" in res.stderr and "radiosonde" in res.stderr
    with netCDF4.Dataset(out) as ds:
        h = ds["height"][:]
        assert ds.dimensions["obs"].size == len(gsi_rows()) - 2 and float(h.min()) == pytest.approx(-27.0)
        lon = ds["lon"][:]
        assert float(lon.min()) >= -180.0 and float(lon.max()) <= 180.0
