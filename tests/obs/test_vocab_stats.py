"""Vocabulary (global channel ids, conv-plevel expansion, platforms) and the shipped normalisation tables."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import healda_core
from healda_core.obs import stats, vocab

STATS_DIR = Path(healda_core.__file__).parent / "data" / "stats"


def test_stats_are_package_data_with_notice():
    assert (STATS_DIR / "NOTICE.md").read_text().count("Apache") >= 2
    assert len(stats.stats_files()) == 12
    assert len(stats.stats_sha256()) == 64


def test_sensor_offsets_are_cumulative():
    off = 0
    for s in vocab.SENSORS:
        assert s.offset == off
        off += s.n_channels
    assert vocab.N_GLOBAL_CHANNELS == 635


@pytest.mark.parametrize(
    ("p", "level_index"),
    [
        (1100.0, 0), (1000.0, 0), (962.6, 0), (962.5, 0), (962.4, 1),  # edge 1000|925 at 962.5 -> 1000 hPa
        (887.5, 1), (887.4, 2),  # 925|850
        (550.0, 4), (549.9, 5),  # 600|500
        (125.0, 10), (124.9, 11),  # 150|100
        (75.0, 11), (74.9, 12), (50.0, 12), (0.5, 12),  # 100|50, and clipping below 50 hPa
    ],
)
def test_plevel_index_at_bin_edges(p, level_index):
    assert vocab.plevel_index(np.array([p]))[0] == level_index


def test_conv_plevel_ids():
    codes = np.array([vocab.CONV_CODE[v] for v in ("gps_angle", "gps_t", "gps_q", "q", "t", "u", "v", "ps")])
    local = vocab.conv_plevel_local(codes, np.full(8, 1000.0))
    assert local.tolist() == [0, 13, 26, 39, 52, 65, 78, 91]
    local50 = vocab.conv_plevel_local(codes, np.full(8, 50.0))
    assert local50.tolist() == [12, 25, 38, 51, 64, 77, 90, 91]
    assert 543 + int(vocab.conv_plevel_local(np.array([vocab.CONV_CODE["q"]]), np.array([1000.0]))[0]) == 582
    assert vocab.conv_plevel_local(np.array([0, 9]), np.array([500.0, 500.0])).tolist() == [-1, -1]


def test_global_channel_ids_of_satellite_channels():
    lut = stats.raw_to_local_lut()
    sid = vocab.SENSOR_BY_NAME
    assert sid["amsua"].offset + lut[sid["amsua"].id, 1] == 27
    assert sid["atms"].offset + lut[sid["atms"].id, 22] == 21
    assert sid["iasi"].offset + lut[sid["iasi"].id, 16] == 47
    assert sid["iasi-pca"].offset + lut[sid["iasi-pca"].id, 1] == 330
    assert lut[sid["amsua"].id, 16] == -1  # amsua has 15 channels


def test_platform_ids():
    assert vocab.platform_id("aqua") == 0 and vocab.platform_id("metop-b") == 15
    assert vocab.platform_id("NOAA-20") == 25 and vocab.platform_id("npp") == 26 and vocab.platform_id("n21") == 32
    assert vocab.platform_id("NOAA-15") == 20 and vocab.platform_id("nope") == -1


def _pooled_row(sensor: str, raw: int) -> tuple[float, float]:
    with open(STATS_DIR / f"{sensor}_normalizations.csv") as fh:
        for r in csv.DictReader(fh):
            if int(r["Raw_Channel_ID"]) == raw and int(r["Platform_ID"]) == -1:
                return float(r["obs_mean"]), float(r["obs_std"])
    raise KeyError(raw)


def test_channel_table_stats():
    t = stats.channel_table()
    assert (t.mean[27 + 6], t.std[27 + 6]) == _pooled_row("amsua", 7)
    assert t.name[582] == "q_1000" and t.level_hpa[582] == 1000
    with open(STATS_DIR / "conv_normalizations_by_level.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["channel"] == "t" and r["Level_hPa"].startswith("850"))
    g = 543 + 4 * 13 + 2
    assert t.name[g] == "t_850" and t.mean[g] == float(row["obs_mean"]) and t.std[g] == float(row["obs_std"])
    assert t.name[634] == "ps" and t.mean[634] == pytest.approx(983.1479345318987)  # ps keeps its base stat
    assert (t.valid_min[634], t.valid_max[634]) == (500.0, 1100.0)
