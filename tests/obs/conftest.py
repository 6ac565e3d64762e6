"""Fixtures for the observation tests: small raw observation sets and files written by hand."""

from __future__ import annotations

import numpy as np
import pytest

from healda_core.obs.raw import RawObs

T0 = 1704067200  # 2024-01-01T00:00:00Z
NS = 1_000_000_000


def make_raw(n: int = 400, seed: int = 0, t0: int = T0) -> RawObs:
    """Mixed satellite (atms/amsua/mhs on n20/metop-b) and conventional (t, q, u, ps) rows, all valid."""
    rng = np.random.default_rng(seed)
    conv = np.arange(n) % 3 == 0
    sensor = np.where(conv, 6, rng.choice([0, 1, 2], n)).astype(np.uint8)
    sat_ch = rng.integers(1, 6, n)
    conv_code = rng.choice([4, 5, 6, 7], n)
    channel = np.where(conv, conv_code, sat_ch).astype(np.uint16)
    value = np.where(conv, 0, 230.0 + rng.normal(0, 5, n))
    value = np.where(conv & (conv_code == 6), 250.0, value)
    value = np.where(conv & (conv_code == 5), 0.004, value)
    value = np.where(conv & (conv_code == 7), 5.0, value)
    value = np.where(conv & (conv_code == 4), 1000.0, value)
    nanif = lambda x: np.where(conv, np.nan, x).astype(np.float32)
    return RawObs.from_columns(
        n, time_ns=(t0 + rng.integers(-45 * 3600, 3 * 3600, n)) * NS,
        lat=rng.uniform(-89, 89, n), lon=rng.uniform(-180, 360, n), value=value, sensor=sensor, channel=channel,
        platform=np.where(conv, -1, np.where(sensor == 0, 25, 15)),
        scan_angle=nanif(rng.uniform(-50, 50, n)), sat_zenith=nanif(rng.uniform(-60, 60, n)),
        solar_zenith=nanif(rng.uniform(0, 180, n)),
        pressure_hpa=np.where(conv, rng.uniform(100, 1000, n), np.nan),
        height=np.where(conv, rng.uniform(0, 15000, n), np.nan),
        obs_type=np.where(conv, 220, 0),
    )


@pytest.fixture
def raw_small() -> RawObs:
    return make_raw()
