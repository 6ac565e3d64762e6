"""Observations drawn from a :class:`NatureRun`, in the canonical raw format with real ids.

Networks (all values are the nature run at the nearest whole hour, interpolated bilinearly on the sphere,
plus Gaussian errors with the standard deviations in :data:`ERRORS`):

* radiosondes at a fixed station network, 00 and 12 UTC, on the 13 standard levels above the ground:
  t, q (report type 120) and u, v (220); heights are the geopotential height with a 10 m error;
* surface stations every 3 h: station pressure (181), height = station elevation;
* aircraft on great-circle flights at 250 hPa every 10 min: t (130), u, v (230); height = pressure altitude;
* polar orbiters with AMSU-A-like (metop-b, n19) and ATMS-like (n20) temperature sounding channels:
  brightness temperature = weighted vertical average of temperature (Gaussian weights in ln p), along
  sun-synchronous swaths with scan, satellite-zenith and solar-zenith angles;
* the same orbiters' 183 GHz water-vapour channels (MHS beside AMSU-A, ATMS's own): brightness temperature
  from a water-vapour transmittance model, so the peak rises as the column moistens
  (:func:`healda_core.synth.satellites.humidity_bt`).
"""

from __future__ import annotations

import numpy as np

from healda_core import grid
from healda_core.obs import vocab
from healda_core.synth.nature import PLEVELS, R_DRY, G, NatureRun, std_geopotential

ERRORS = {"t": 0.8, "q_rel": 0.1, "uv": 1.8, "ps_hpa": 1.0, "air_t": 1.0, "air_uv": 2.0, "bt": 0.3, "bt_wv": 1.0,
          "sonde_z_m": 10.0}
#: sounder channels: (sensor, platform, raw channel, peak pressure hPa)
SOUNDER_CHANNELS = {
    "amsua": [(4, 900.0), (5, 700.0), (6, 450.0), (7, 275.0), (8, 180.0), (9, 90.0)],
    "atms": [(5, 900.0), (6, 700.0), (7, 450.0), (8, 275.0), (9, 180.0), (10, 90.0)],
}
#: water-vapour channels flown with each temperature sounder: (sensor, [(raw channel, peak hPa at the
#: reference humidity profile)]); MHS 3/4/5 = 183±1, 183±3, 190 GHz, ATMS 22/20/18 = 183±1, 183±3, 183±7 GHz
HUMIDITY_CHANNELS = {
    "amsua": ("mhs", [(3, 400.0), (4, 550.0), (5, 750.0)]),
    "atms": ("atms", [(22, 400.0), (20, 550.0), (18, 750.0)]),
}
SATELLITES = (("amsua", "metop-b", 0.0), ("amsua", "n19", 2.1), ("atms", "n20", 4.2))  # (sensor, platform, phase)
HOUR = 3600


def weights(peak_hpa: float, width: float = 0.35) -> np.ndarray:
    """Normalised Gaussian weighting function in ln p over the 13 levels."""
    w = np.exp(-0.5 * ((np.log(PLEVELS) - np.log(peak_hpa)) / width) ** 2)
    return w / w.sum()


class _Sampler:
    """Caches hourly nature fields and interpolates them at points."""

    def __init__(self, nature: NatureRun, t0_s: int):
        self.nature, self.t0, self.cache = nature, t0_s, {}

    def at(self, hour_s: int) -> dict[str, np.ndarray]:
        if hour_s not in self.cache:
            self.cache = {hour_s: self.nature.fields(float(hour_s - self.t0))}
        return self.cache[hour_s]

    def interp(self, field: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of a NEST field (npix,) or (levels, npix) at points."""
        return grid.interp(field, lon, lat, "nest")


def _rows(n: int, **cols) -> dict[str, np.ndarray]:
    out = {k: np.asarray(v) if np.ndim(v) else np.full(n, v) for k, v in cols.items()}
    return {k: v.astype(np.float64) if k not in ("sensor", "channel", "platform", "obs_type", "time_ns") else v
            for k, v in out.items()}


def _stations(rng: np.random.Generator, nature: NatureRun, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Station locations, three times denser over land."""
    w = 0.25 + nature.statics["land_fraction"].astype(np.float64)
    pix = rng.choice(w.size, size=n, replace=n > w.size, p=w / w.sum())
    jitter = lambda: rng.uniform(-0.5, 0.5, n)
    return np.mod(nature.lon[pix] + jitter(), 360.0), np.clip(nature.lat[pix] + jitter(), -89.5, 89.5)


def radiosondes(s: _Sampler, rng, lon, lat, hour_s: int) -> list[dict]:
    f = s.at(hour_s)
    surf_p = s.interp(f["msl"], lon, lat) / 100.0 * np.exp(-G * s.interp(s.nature.statics["orography"], lon, lat)
                                                           / (R_DRY * 288.0))
    rows = []
    for var, code, otype in (("t", 6, 120), ("q", 5, 120), ("u", 7, 220), ("v", 8, 220)):
        vals = s.interp(f[var], lon, lat)  # (13, n)
        z = s.interp(f["z"], lon, lat) / G + rng.standard_normal((len(PLEVELS), lon.size)) * ERRORS["sonde_z_m"]
        above = PLEVELS[:, None] < surf_p[None, :]
        err = {"t": ERRORS["t"], "u": ERRORS["uv"], "v": ERRORS["uv"]}.get(var)
        noise = rng.standard_normal(vals.shape) * (err if err else ERRORS["q_rel"] * vals)
        lev, sta = np.nonzero(above)
        rows.append(_conv(hour_s, lon[sta], lat[sta], (vals + noise)[lev, sta], code, otype,
                          PLEVELS[lev], z[lev, sta]))
    return rows


def _conv(t_s, lon, lat, value, code, otype, p_hpa, height) -> dict:
    n = len(lon)
    return _rows(n, time_ns=np.full(n, np.int64(t_s) * 10**9), lon=lon, lat=lat, value=value,
                 sensor=np.full(n, vocab.CONV, np.uint8), channel=np.full(n, code, np.uint16),
                 platform=np.full(n, -1, np.int16), obs_type=np.full(n, otype, np.uint16),
                 pressure_hpa=p_hpa, height=height)


def surface_stations(s: _Sampler, rng, lon, lat, hour_s: int) -> list[dict]:
    f = s.at(hour_s)
    elev = np.maximum(s.interp(s.nature.statics["orography"], lon, lat), 0.0)
    ps = s.interp(f["msl"], lon, lat) / 100.0 * np.exp(-G * elev / (R_DRY * s.interp(f["t2m"], lon, lat)))
    ps = ps + rng.standard_normal(ps.shape) * ERRORS["ps_hpa"]
    return [_conv(hour_s, lon, lat, ps, 4, 181, ps, elev)]


def _great_circle(lon1, lat1, lon2, lat2, frac):
    """Points at fractions ``frac`` along great circles (degrees)."""
    p1 = grid.ang2vec(lon1, lat1)
    p2 = grid.ang2vec(lon2, lat2)
    omega = np.arccos(np.clip((p1 * p2).sum(-1), -1, 1))[:, None]
    so = np.maximum(np.sin(omega), 1e-9)
    f = frac[:, None]
    vec = (np.sin((1 - f) * omega) * p1 + np.sin(f * omega) * p2) / so
    return grid.vec2ang(vec)


def aircraft(s: _Sampler, rng, hour_s: int, flights: int) -> list[dict]:
    f = s.at(hour_s)
    lon1, lat1 = rng.uniform(0, 360, flights), rng.uniform(-60, 70, flights)
    lon2, lat2 = rng.uniform(0, 360, flights), rng.uniform(-60, 70, flights)
    frac = np.repeat(np.arange(6) / 6.0, flights) + rng.uniform(0, 1 / 6, 6 * flights)
    lon, lat = _great_circle(np.tile(lon1, 6), np.tile(lat1, 6), np.tile(lon2, 6), np.tile(lat2, 6), frac)
    k = int(np.nonzero(PLEVELS == 250)[0][0])
    z = np.full(lon.size, std_geopotential(np.array([250.0]))[0] / G)  # pressure altitude, as aircraft report
    rows = []
    for var, code, otype, err in (("t", 6, 130, ERRORS["air_t"]), ("u", 7, 230, ERRORS["air_uv"]),
                                  ("v", 8, 230, ERRORS["air_uv"])):
        val = s.interp(f[var][k], lon, lat) + rng.standard_normal(lon.size) * err
        times = hour_s + (np.arange(lon.size) % 6) * 600
        row = _conv(hour_s, lon, lat, val, code, otype, np.full(lon.size, 250.0), z)
        row["time_ns"] = times.astype(np.int64) * 10**9
        rows.append(row)
    return rows
