"""Polar-orbiting microwave sounders for the OSSE: sun-synchronous swaths and brightness temperatures.

Geometry: circular orbit, inclination 98.7°, period 101.4 min, altitude 833 km, fixed relative to the sun
(so in Earth-fixed coordinates the ascending node drifts west at one turn per solar day). Each scan line
has ``positions`` footprints at scan angles evenly spaced in [−48.3°, 48.3°]; the footprint lies at the
Earth-central angle γ = asin((R+h)/R · sin s) − s across track, and the satellite zenith angle is s + γ
(signed like the scan angle). Solar zenith from the solar declination and local hour angle.
"""

from __future__ import annotations

import numpy as np

from healda_core.obs import vocab
from healda_core.synth.observe import ERRORS, SOUNDER_CHANNELS, _rows, _Sampler, weights

R_KM, H_KM, INCL, PERIOD_S, MAX_SCAN = 6371.0, 833.0, np.radians(98.7), 101.4 * 60, 48.3


def subsatellite(t_s: np.ndarray, phase: float) -> tuple[np.ndarray, np.ndarray]:
    """Sub-satellite (lon, lat) in radians at times ``t_s`` (seconds since the epoch)."""
    u = 2 * np.pi * t_s / PERIOD_S + phase
    lat = np.arcsin(np.sin(INCL) * np.sin(u))
    lon = phase + np.arctan2(np.cos(INCL) * np.sin(u), np.cos(u)) - 2 * np.pi * (t_s % 86400) / 86400
    return np.mod(lon, 2 * np.pi), lat


def _destination(lon, lat, bearing, dist):
    lat2 = np.arcsin(np.sin(lat) * np.cos(dist) + np.cos(lat) * np.sin(dist) * np.cos(bearing))
    lon2 = lon + np.arctan2(np.sin(bearing) * np.sin(dist) * np.cos(lat), np.cos(dist) - np.sin(lat) * np.sin(lat2))
    return np.mod(lon2, 2 * np.pi), lat2


def _bearing(lon1, lat1, lon2, lat2):
    y = np.sin(lon2 - lon1) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(lon2 - lon1)
    return np.arctan2(y, x)


def solar_zenith(t_s: np.ndarray, lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Solar zenith angle (degrees) from declination and hour angle (no equation of time)."""
    doy = (t_s / 86400.0) % 365.25
    decl = np.radians(23.44) * np.sin(2 * np.pi * (doy - 80) / 365.25)
    hour_angle = np.radians(((t_s % 86400) / 3600.0 + lon_deg / 15.0 - 12.0) * 15.0)
    lat = np.radians(lat_deg)
    cos_z = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return np.degrees(np.arccos(np.clip(cos_z, -1, 1)))


def swath(t_s: np.ndarray, phase: float, positions: int) -> dict[str, np.ndarray]:
    """Footprints of scan lines at times ``t_s``: lon, lat, scan, zenith (degrees), time; (lines·positions,)."""
    lon0, lat0 = subsatellite(t_s, phase)
    lon1, lat1 = subsatellite(t_s + 1.0, phase)
    heading = _bearing(lon0, lat0, lon1, lat1)
    scan = np.linspace(-MAX_SCAN, MAX_SCAN, positions)
    s = np.radians(scan)[None, :]
    gamma = np.arcsin((R_KM + H_KM) / R_KM * np.sin(np.abs(s))) - np.abs(s)
    side = np.where(s < 0, -np.pi / 2, np.pi / 2)
    lon, lat = _destination(lon0[:, None], lat0[:, None], heading[:, None] + side, gamma)
    zen = np.degrees(np.sign(s) * (np.abs(s) + gamma))
    shape = (len(t_s), positions)
    return {"lon": np.degrees(lon).ravel(), "lat": np.degrees(lat).ravel(),
            "scan": np.broadcast_to(scan, shape).ravel(), "zenith": np.broadcast_to(zen, shape).ravel(),
            "time": np.broadcast_to(t_s[:, None], shape).ravel()}


def sounder(s: _Sampler, rng, hour_s: int, sensor: str, platform: str, phase: float,
            line_every_s: int = 180, positions: int = 15) -> list[dict]:
    """Brightness temperatures of one satellite for the hour starting at ``hour_s`` (values from that hour)."""
    sw = swath(hour_s + np.arange(0, 3600, line_every_s, dtype=np.float64), phase, positions)
    temp = s.interp(s.at(hour_s)["t"], sw["lon"], sw["lat"])  # (13, n)
    sza = solar_zenith(sw["time"], sw["lon"], sw["lat"])
    rows, n = [], sw["lon"].size
    for raw_ch, peak in SOUNDER_CHANNELS[sensor]:
        bt = weights(peak) @ temp + rng.standard_normal(n) * ERRORS["bt"]
        rows.append(_rows(n, time_ns=sw["time"].astype(np.int64) * 10**9, lon=sw["lon"], lat=sw["lat"], value=bt,
                          sensor=np.full(n, vocab.SENSOR_BY_NAME[sensor].id, np.uint8),
                          channel=np.full(n, raw_ch, np.uint16),
                          platform=np.full(n, vocab.platform_id(platform), np.int16),
                          obs_type=np.zeros(n, np.uint16), scan_angle=sw["scan"], sat_zenith=sw["zenith"],
                          solar_zenith=sza))
    return rows
