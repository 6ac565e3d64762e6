"""Synthetic raw observations in the canonical CF point form (for end-to-end tests and demos)."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np

from healda_core.obs import vocab
from healda_core.obs.raw import RawObs
from healda_core.obs.readers.canonical import write_canonical


def synthetic_raw(analysis: str = "2024-01-02T00:00", n_sat: int = 3000, n_conv: int = 1000, hours: int = 48,
                  seed: int = 0) -> RawObs:
    """AMSU-A brightness temperatures and radiosonde-like t/u/v over the ``hours`` before ``analysis``."""
    rng = np.random.default_rng(seed)
    end = np.datetime64(analysis, "ns").astype(np.int64)
    n = n_sat + n_conv
    time_ns = end - rng.integers(0, hours * 3600, n).astype(np.int64) * 1_000_000_000
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n))).astype(np.float32)
    lon = rng.uniform(0, 360, n).astype(np.float32)
    sensor = np.r_[np.full(n_sat, vocab.SENSOR_BY_NAME["amsua"].id), np.full(n_conv, vocab.CONV)].astype(np.uint8)
    channel = np.r_[rng.integers(1, 16, n_sat), rng.choice([6, 7, 8], n_conv)].astype(np.uint16)  # t, u, v
    value = np.r_[rng.uniform(200, 280, n_sat), np.zeros(n_conv)].astype(np.float32)
    conv_t = channel[n_sat:] == 6
    value[n_sat:] = np.where(conv_t, rng.uniform(220, 300, n_conv), rng.uniform(-20, 20, n_conv))
    platform = np.r_[rng.choice([14, 15, 23], n_sat), np.full(n_conv, -1)].astype(np.int16)
    nan_c = np.full(n_conv, np.nan, np.float32)
    nan_s = np.full(n_sat, np.nan, np.float32)
    p_hpa = rng.uniform(200, 1000, n_conv).astype(np.float32)
    return RawObs.from_columns(
        n, time_ns=time_ns, lat=lat, lon=lon, value=value, sensor=sensor, channel=channel, platform=platform,
        scan_angle=np.r_[rng.uniform(-48, 48, n_sat), nan_c].astype(np.float32),
        sat_zenith=np.r_[rng.uniform(-55, 55, n_sat), nan_c].astype(np.float32),
        solar_zenith=np.r_[rng.uniform(0, 180, n_sat), nan_c].astype(np.float32),
        pressure_hpa=np.r_[nan_s, p_hpa].astype(np.float32),
        height=np.r_[nan_s, (44330.0 * (1 - (p_hpa / 1013.25) ** 0.1903))].astype(np.float32),
        obs_type=np.r_[np.zeros(n_sat), np.where(conv_t, 120, 220)].astype(np.uint16))


def write_synthetic_raw(path: str | Path, **kw) -> Path:
    write_canonical(path, synthetic_raw(**kw), {"window_start": "", "window_end": ""})
    return Path(path)


def write_latlon_invariants(path: str | Path, deg: float = 2.0) -> Path:
    """An ERA5-style invariants file: geopotential z (m2 s-2) and lsm on a regular global grid."""
    lat = np.linspace(90, -90, round(180 / deg) + 1)
    lon = np.arange(0, 360, deg)
    lo, la = np.meshgrid(lon, lat)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("time", 1)
        ds.createDimension("latitude", lat.size)
        ds.createDimension("longitude", lon.size)
        ds.createVariable("latitude", "f8", ("latitude",))[:] = lat
        ds.createVariable("longitude", "f8", ("longitude",))[:] = lon
        z = ds.createVariable("z", "f4", ("time", "latitude", "longitude"))
        z.units = "m**2 s**-2"
        z[0] = 9.80665 * np.maximum(0.0, 2000.0 * np.cos(np.radians(la)) * np.sin(np.radians(lo)))
        m = ds.createVariable("lsm", "f4", ("time", "latitude", "longitude"))
        m.units = "(0 - 1)"
        m[0] = (np.sin(np.radians(lo)) > 0).astype(np.float32)
    return Path(path)
