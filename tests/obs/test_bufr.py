"""BUFR reader on real WMO reports (ECMWF pdbufr samples, tests/data/bufr/NOTICE.md).

Expected values are the decoded BUFR elements of the first message of each file, converted by hand here:
pressure Pa -> hPa, geopotential / 9.80665 -> height, wind (direction, speed) -> (u, v), dew point -> q.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import eccodes
import numpy as np
import pytest
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.errors import InputError
from healda_core.obs import stdatm, vocab
from healda_core.obs.qc import REASON_CODE, run_qc
from healda_core.obs.readers import read_obs_file
from healda_core.obs.readers.bufr import specific_humidity

DATA = Path(__file__).resolve().parents[1] / "data" / "bufr"
T, Q, U, V, PS = (vocab.CONV_CODE[k] for k in ("t", "q", "u", "v", "ps"))


def _messages(path):
    with open(path, "rb") as f:
        while (h := eccodes.codes_bufr_new_from_file(f)) is not None:
            eccodes.codes_set(h, "unpack", 1)
            yield h
            eccodes.codes_release(h)


def test_temp_levels_values_and_heights_from_the_ascent():
    raw, fmt = read_obs_file(DATA / "temp_sample.bufr")
    levels = sum(len(eccodes.codes_get_array(h, "pressure")) for h in _messages(DATA / "temp_sample.bufr"))
    assert fmt == "bufr" and len(raw) == 4 * levels  # t, q, u, v on every level of the 30 ascents
    assert set(raw.obs_type[raw.channel == T].tolist()) == {120} and set(raw.obs_type[raw.channel == U]) == {220}
    # first ascent: WMO 71907, 2008-12-08 12 UTC, 58.47 N 78.08 W; level 0 at 1003 hPa, geopotential 250
    t0 = raw.channel == T
    assert raw.time_ns[0] == np.datetime64("2008-12-08T12:00", "ns").astype(np.int64)
    assert raw.lat[0] == pytest.approx(58.47) and raw.lon[0] == pytest.approx(-78.08)
    assert raw.pressure_hpa[t0][0] == pytest.approx(1003.0) and raw.height[t0][0] == pytest.approx(250 / 9.80665)
    assert raw.value[t0][:2].tolist() == pytest.approx([258.3, 259.7])
    assert raw.value[raw.channel == Q][0] == pytest.approx(specific_humidity(np.array(255.7), np.array(1003.0)),
                                                            rel=1e-6)
    # by hand: e = 6.112 exp(17.67 (-17.45) / 226.05) = 1.562 hPa, q = 0.622 e / (1003 - 0.378 e) = 0.9695 g/kg
    assert raw.value[raw.channel == Q][0] == pytest.approx(0.9695e-3, rel=1e-3)
    # 925 hPa: 275 deg, 5 m/s -> u = -5 sin(275 deg) = 4.981, v = -5 cos(275 deg) = -0.436
    assert raw.value[raw.channel == U][4] == pytest.approx(4.981, abs=1e-3)
    assert raw.value[raw.channel == V][4] == pytest.approx(-0.436, abs=1e-3)
    missing_height = int(np.isnan(raw.height).sum())
    qc = run_qc(raw)
    assert qc.derived == {"radiosonde": {"height_from_profile": missing_height}} and missing_height > 0
    assert not (qc.reason == REASON_CODE["bad_height"]).any()
    absent = ~np.isfinite(raw.value)
    assert ((qc.reason == REASON_CODE["missing_value"]) == absent).all()  # absent, not rejected
    # a derived height sits between the reported heights of the levels around it
    t1 = np.flatnonzero(t0)[:24]
    h, p = raw.height[t1], raw.pressure_hpa[t1]
    assert np.all(np.diff(h) > 0) and np.all(np.diff(p) < 0)


def test_aircraft_heights_or_pressures_derived():
    raw, fmt = read_obs_file(DATA / "aircraft_small.bufr")
    assert fmt == "bufr" and len(raw) == 40 and set(raw.obs_type.tolist()) == {131, 231}
    # first report: 967.5 hPa, 283.4 K, wind 213 deg 15.4 m/s; no height -> derived (standard atmosphere)
    assert raw.pressure_hpa[0] == pytest.approx(967.5) and raw.value[0] == pytest.approx(283.4)
    u, v = raw.value[raw.channel == U][0], raw.value[raw.channel == V][0]
    assert (u, v) == pytest.approx((8.387, 12.915), abs=1e-3)
    qc = run_qc(raw)
    assert qc.derived == {"aircraft": {"height_from_standard_atmosphere": 40}}
    assert raw.height[0] == pytest.approx(stdatm.height_from_pressure(np.array([967.5]))[0], abs=0.01)
    big, _ = read_obs_file(DATA / "aircraft_sample.bufr")
    no_pressure = int(np.isnan(big.pressure_hpa).sum())
    assert len(big) == 4 * 200 and no_pressure > 0  # flight heights only
    assert run_qc(big).derived["aircraft"]["pressure_from_standard_atmosphere"] == no_pressure


def test_synop_stations_below_sea_level_kept():
    raw, _ = read_obs_file(DATA / "synop_sample.bufr")
    # half the messages are supplementary reports (24 h extremes, sunshine) without instantaneous elements: skipped
    n = sum(eccodes.codes_is_defined(h, "airTemperatureAt2M") for h in _messages(DATA / "synop_sample.bufr"))
    assert n == 182 and len(raw) == 5 * n and set(raw.obs_type.tolist()) == {181, 281}
    # first report: WMO 40340 (51 m), 304.4 K at 2 m, calm; no station pressure
    assert raw.height[0] == 51.0 and raw.value[raw.channel == T][0] == pytest.approx(304.4)
    assert raw.value[raw.channel == U][0] == 0.0 and np.isnan(raw.value[raw.channel == PS][0])
    qc = run_qc(raw)
    below = raw.height < 0
    n_below = sum(eccodes.codes_is_defined(h, "airTemperatureAt2M") and eccodes.codes_get(h, "heightOfStation") < 0
                  for h in _messages(DATA / "synop_sample.bufr"))
    assert n_below > 20 and below.sum() == 5 * n_below and raw.height.min() == -350.0
    t_below = below & (raw.channel == T) & np.isfinite(raw.value)
    assert t_below.any() and (qc.reason[t_below] == 0).all()  # kept, not "bad height"


def test_bufr_detected_by_content_and_broken_files(tmp_path):
    renamed = tmp_path / "reports.nc"
    shutil.copy(DATA / "aircraft_small.bufr", renamed)
    assert read_obs_file(renamed)[1] == "bufr"
    data = (DATA / "temp_sample.bufr").read_bytes()
    cut = tmp_path / "cut.bufr"
    cut.write_bytes(data[: len(data) // 2 + 17])
    with pytest.raises(InputError) as exc:
        read_obs_file(cut)
    assert str(cut) in str(exc.value) and "\n" not in str(exc.value)
    res = CliRunner().invoke(app, ["pack-obs", str(cut), "-o", str(tmp_path / "p.nc"), "-t", "2008120812"])
    assert res.exit_code == 3 and res.stderr.startswith("error:") and not (tmp_path / "p.nc").exists()


def test_pack_obs_of_real_bufr_files(tmp_path):
    out = tmp_path / "p.nc"
    res = CliRunner().invoke(app, ["pack-obs", str(DATA / "temp_sample.bufr"), "-t", "2008-12-08T12Z", "-o", str(out),
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert "radiosonde" in res.stderr and "height from profile" in res.stderr
    import json

    (row,) = json.loads(res.stdout)["sensors"]
    assert row["sensor"] == "conv-plevel" and row["kept"] > 0 and "bad_height" not in row["dropped"]


def test_temp_message_of_several_subsets_reads_every_ascent(tmp_path):
    # temp_multisubset.bufr holds the first three ascents of temp_sample.bufr re-encoded as the three uncompressed
    # subsets of one message (build_temp_multisubset.py); read alone, the three source messages give the same rows
    multi = DATA / "temp_multisubset.bufr"
    shape = [(eccodes.codes_get(h, "numberOfSubsets"), eccodes.codes_get(h, "compressedData")) for h in _messages(multi)]
    assert shape == [(3, 0)]  # one message, three uncompressed subsets
    singles = tmp_path / "three.bufr"
    with open(DATA / "temp_sample.bufr", "rb") as f, open(singles, "wb") as out:
        for _ in range(3):
            h = eccodes.codes_bufr_new_from_file(f)
            out.write(eccodes.codes_get_message(h))
            eccodes.codes_release(h)
    raw, fmt = read_obs_file(multi)
    ref, _ = read_obs_file(singles)
    assert fmt == "bufr" and len(raw) == 4 * (24 + 25 + 114)  # t, q, u, v on the 24, 25 and 114 levels
    for col in ("time_ns", "lat", "lon", "value", "pressure_hpa", "height", "channel", "obs_type"):
        np.testing.assert_array_equal(getattr(raw, col), getattr(ref, col), err_msg=col)
    # one ascent per subset: WMO 71907 (58.47 N), 71823 (53.75 N), 89009 (South Pole), each its own profile
    t = raw.channel == T
    assert sorted(np.unique(raw.lat[t]).tolist()) == pytest.approx([-90.0, 53.75, 58.47])
    assert len(np.unique(raw.profile[t])) == 3
    assert [int((raw.profile[t] == k).sum()) for k in raw.profile[t][[0, 24, 49]]] == [24, 25, 114]
    qc = run_qc(raw)
    assert qc.derived == run_qc(ref).derived and qc.derived["radiosonde"]["height_from_profile"] > 0
