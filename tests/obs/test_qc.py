"""Row-level QC: each problem drops the row under its reason; pressure/height derivation; normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from healda_core.obs import stats
from healda_core.obs.pack import pack_arrays
from healda_core.obs.qc import REASON_CODE, QCOptions, count_by_sensor, run_qc
from healda_core.obs.raw import NAT, RawObs

T = 1704067200
NAN = np.nan
# (sensor, channel, platform, value, lat, lon, time offset s, pressure hPa, height m, obs_type, expected reason)
ROWS = [
    (2, 7, 15, 230.0, 10.0, 20.0, 0, NAN, NAN, 0, "kept"),  # amsua ch 7 on metop-b
    (6, 6, -1, 250.0, 10.0, 20.0, 0, 500.0, 5500.0, 120, "kept"),  # conv t
    (2, 7, 15, NAN, 10.0, 20.0, 0, NAN, NAN, 0, "missing_value"),  # absent, not rejected
    (2, 7, 15, 450.0, 10.0, 20.0, 0, NAN, NAN, 0, "bad_value"),  # > 400 K
    (2, 7, 15, 230.0, 91.0, 20.0, 0, NAN, NAN, 0, "bad_latlon"),
    (2, 7, 15, 230.0, NAN, 20.0, 0, NAN, NAN, 0, "bad_latlon"),
    (2, 7, 15, 230.0, 10.0, 361.0, 0, NAN, NAN, 0, "bad_latlon"),
    (2, 7, 15, 230.0, 10.0, 20.0, None, NAN, NAN, 0, "bad_time"),
    (2, 99, 15, 230.0, 10.0, 20.0, 0, NAN, NAN, 0, "unknown_channel"),
    (6, 12, -1, 250.0, 10.0, 20.0, 0, 500.0, 5500.0, 120, "unknown_channel"),
    (2, 7, 50, 230.0, 10.0, 20.0, 0, NAN, NAN, 0, "unknown_platform"),
    (2, 7, -1, 230.0, 10.0, 20.0, 0, NAN, NAN, 0, "unknown_platform"),
    (200, 1, 15, 230.0, 10.0, 20.0, 0, NAN, NAN, 0, "unknown_sensor"),
    (6, 6, -1, 250.0, 10.0, 20.0, 0, NAN, NAN, 120, "no_pressure_height"),
    (6, 6, -1, 250.0, 10.0, 20.0, 0, 1150.0, 10.0, 120, "bad_pressure"),
    (6, 6, -1, 250.0, 10.0, 20.0, 0, 0.5, 40000.0, 120, "bad_pressure"),  # below the 1 hPa non-GPS floor
    (6, 6, -1, 250.0, 10.0, 20.0, 0, 500.0, 70000.0, 120, "bad_height"),
    (6, 7, -1, 5.0, 10.0, 20.0, 0, 500.0, 5500.0, 245, "wind_not_in_situ"),  # AMV
    (6, 7, -1, 5.0, 10.0, 20.0, 0, 500.0, 5500.0, 230, "kept"),  # aircraft wind
    (6, 2, -1, 250.0, 10.0, 20.0, 0, 500.0, 5500.0, 0, "gps_t_q_not_used"),
    (4, 16, 15, 230.0, 10.0, 20.0, 0, NAN, NAN, 0, "sensor_not_used"),  # raw IASI is not in the v2 recipe
    (2, 7, 15, 230.0, 10.0, 20.0, 10 * 86400, NAN, NAN, 0, "outside_frames"),
    (6, 6, -1, 250.0, 10.0, 20.0, 0, 1005.0, -600.0, 181, "bad_height"),  # deeper than any land surface
    (6, 4, -1, 1015.0, 31.5, 35.5, 0, 1015.0, -27.0, 181, "kept"),  # surface station below sea level
]


def _raw(rows=ROWS) -> RawObs:
    c = list(zip(*rows))
    sat = np.array([s != 6 for s in c[0]])
    angle = np.where(sat, 10.0, NAN)
    return RawObs.from_columns(
        len(rows), sensor=np.array(c[0]), channel=np.array(c[1]), platform=np.array(c[2]), value=np.array(c[3]),
        lat=np.array(c[4]), lon=np.array(c[5]),
        time_ns=np.array([NAT if o is None else (T + o) * 10**9 for o in c[6]]),
        pressure_hpa=np.array(c[7]), height=np.array(c[8]), obs_type=np.array(c[9]),
        scan_angle=angle, sat_zenith=angle, solar_zenith=angle)


def test_each_row_problem_has_its_reason():
    result = pack_arrays(_raw(), [T])
    reasons = result.counts.sum(axis=0)
    expected = np.zeros_like(reasons)
    for row in ROWS:
        expected[REASON_CODE[row[-1]]] += 1
    np.testing.assert_array_equal(reasons, expected)
    assert result.packed.n_obs == 4


def test_reason_per_row_and_by_sensor():
    raw = _raw()
    qc = run_qc(raw)
    got = [r for r in qc.reason.tolist()]
    want = [REASON_CODE[r[-1]] if r[-1] != "outside_frames" else 0 for r in ROWS]
    assert got == want
    by = count_by_sensor(raw.sensor, qc.reason)
    assert by[200, REASON_CODE["unknown_sensor"]] == 1 and by[6].sum() == sum(r[0] == 6 for r in ROWS)


def test_options_relax_the_recipe():
    opts = QCOptions(conv_uv_in_situ_only=False, conv_gps_level1_only=False, conv_min_pressure_hpa=200.0)
    qc = run_qc(_raw(), opts)
    assert qc.reason[17] == 0 and qc.reason[19] == 0
    assert qc.reason[1] == 0
    raw = _raw([(6, 6, -1, 250.0, 10.0, 20.0, 0, 150.0, 13000.0, 120, "")])
    assert run_qc(raw, opts).reason[0] == REASON_CODE["bad_pressure"]


def test_derive_pressure_or_height_from_standard_atmosphere():
    rows = [(6, 6, -1, 250.0, 10.0, 20.0, 0, 500.0, NAN, 120, ""),  # sonde level without height
            (6, 6, -1, 250.0, 10.0, 20.0, 0, NAN, 11000.0, 130, ""),  # aircraft with flight level only
            (6, 6, -1, 280.0, 10.0, 20.0, 0, 1030.0, NAN, 120, "")]  # above 1013.25 hPa: below sea level
    raw = _raw(rows)
    qc = run_qc(raw)
    assert qc.derived == {"radiosonde": {"height_from_standard_atmosphere": 2},
                          "aircraft": {"pressure_from_standard_atmosphere": 1}}
    assert raw.height[0] == pytest.approx(5574.4, abs=1.0)  # ICAO: 500 hPa at 5574 m
    assert raw.pressure_hpa[1] == pytest.approx(226.32, abs=0.01)  # tropopause 11 km: 226.32 hPa
    assert raw.height[2] == pytest.approx(-139.0, abs=2.0)  # 1030 hPa: -139 m in the ICAO atmosphere
    assert qc.reason.tolist() == [0, 0, 0]


def test_normalisation_and_channel_ids():
    raw = _raw(ROWS[:2])
    qc = run_qc(raw)
    t = stats.channel_table()
    assert qc.global_channel.tolist() == [27 + 6, 543 + 4 * 13 + 5]  # amsua ch7; t at 500 hPa
    for i, g in enumerate(qc.global_channel):
        assert qc.value_norm[i] == pytest.approx((raw.value[i] - t.mean[g]) / t.std[g], rel=1e-5)
    assert raw.platform[1] == 0  # conv platform is filled with 0
