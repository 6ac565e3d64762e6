"""Frames (exact ±step/2 edges, inference), pixel ids against healpy, the O(N) counting sort."""

from __future__ import annotations

import healpy
import numpy as np
import pytest

from healda_core.errors import UsageError
from healda_core.obs import frames
from healda_core.obs.frames import counting_sort, pixels

T = 1704067200  # analysis 2024-01-01T00Z
NS = 10**9
H = 3600 * NS


def test_frame_times():
    ft = frames.frame_times(np.array([T]), 8, 21600)
    assert ft[0, -1] == T and ft[0, 0] == T - 42 * 3600
    assert np.all(np.diff(ft[0]) == 21600)


def test_calendar_second_and_day_of_year():
    # 2024-01-01T00Z, 2024-03-01T06:30Z (leap year: day 60), 2023-12-31T23:59:59Z (day 364), 1999-07-04T12Z
    t = np.array([[T, 1709274600], [1704067199, 931089600]])
    sod, doy = frames.calendar(t)
    assert sod.shape == doy.shape == (2, 2) and sod.dtype == doy.dtype == np.float64
    assert sod.tolist() == [[0.0, 6.5 * 3600], [86399.0, 43200.0]]
    assert doy.tolist() == [[0.0, 60 + 6.5 / 24], [364 + 86399 / 86400, 184.5]]


def test_frame_boundaries_exact():
    t = T * NS
    times = np.array([t - 3 * H - 1, t - 3 * H, t + 3 * H - 1, t + 3 * H,  # last frame [t-3h, t+3h)
                      t - 45 * H - 1, t - 45 * H, t - 39 * H - 1, t - 39 * H])  # first frame [t-45h, t-39h)
    assert frames.frame_of(times, T, 8, 21600).tolist() == [6, 7, 7, -1, -1, 0, 0, 1]


def test_overlapping_analyses_duplicate_rows():
    t = T * NS
    rows, bt = frames.assign_frames(np.array([t, t - 10 * H]), [T, T + 21600], 8, 21600)
    # obs 0 is frame 7 of analysis 0 and frame 6 of analysis 1; obs 1 is frame 5 / frame 4
    assert sorted(zip(rows.tolist(), bt.tolist())) == [(0, 7), (0, 8 + 6), (1, 5), (1, 8 + 4)]


def test_infer_synoptic_times():
    t = T * NS
    got = frames.infer_synoptic_times(np.array([t - 3 * H, t + 3 * H - 1, t + 3 * H]), 21600)
    assert got == [T, T + 21600]  # t+3h belongs to the 06Z last frame, t+3h-1ns to 00Z


def test_parse_time_and_duration():
    assert frames.parse_time("2024010100") == T == frames.parse_time("2024-01-01T00:00Z")
    assert frames.parse_time("2024-01-01T06") == T + 21600
    assert frames.parse_duration("6h") == frames.parse_duration("PT6H") == 21600
    assert frames.parse_duration("90min") == 5400 and frames.iso_duration(10800) == "PT3H"
    with pytest.raises(UsageError):
        frames.parse_time("yesterday")
    assert frames.time_range(T, T + 86400, 21600) == [T + i * 21600 for i in range(5)]


def _compact_bits(v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(v)
    for b in range(16):
        out |= ((v >> (2 * b)) & 1) << b
    return out


@pytest.mark.parametrize("level", [5, 6])
def test_pixels_against_healpy(level):
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(-180, 360, 5000), rng.uniform(-90, 90, 5000)
    n = 1 << level
    p = healpy.ang2pix(n, lon, lat, nest=True, lonlat=True).astype(np.int64)
    f, j = p // (n * n), p % (n * n)
    xs, ys = _compact_bits(j), _compact_bits(j >> 1)  # even bits -> x, odd bits -> y (DATA §3)
    expect = f * n * n + (n - 1 - xs) * n + (n - 1 - ys)
    np.testing.assert_array_equal(pixels(lon, lat, level), expect)


def test_counting_sort_stable_and_counts():
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 3 * 98304, 50_000)  # > 2**16 buckets: two radix passes
    order, counts = counting_sort(keys, 3 * 98304)
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    np.testing.assert_array_equal(counts, np.bincount(keys, minlength=3 * 98304))
    with pytest.raises(ValueError):
        counting_sort(np.array([5]), 5)
