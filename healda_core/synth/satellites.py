"""Polar-orbiting microwave sounders for the OSSE: sun-synchronous swaths and brightness temperatures.

Geometry: circular orbit, inclination 98.7°, period 101.4 min, altitude 833 km, fixed relative to the sun
(so in Earth-fixed coordinates the ascending node drifts west at one turn per solar day). Each scan line
has ``positions`` footprints at scan angles evenly spaced in [−48.3°, 48.3°]; the footprint lies at the
Earth-central angle γ = asin((R+h)/R · sin s) − s across track, and the satellite zenith angle is s + γ
(signed like the scan angle). Solar zenith from the solar declination and local hour angle.

Water-vapour channels (:func:`humidity_bt`): a clear-sky, non-scattering transmittance model with absorption
proportional to the water-vapour path above each pressure, 𝒯(p) = exp(−κ·W(p)), W(p) = ∫₀ᵖ q dp′/g; the
brightness temperature is Σ over thin layers of (𝒯_top − 𝒯_bottom)·T plus 𝒯(1000 hPa)·T_surface (emissivity
1) and the air above 50 hPa at the 50 hPa temperature. κ is set per channel so that at the reference humidity profile the transmittance reaches 1/e at the
channel's nominal peak; a moister column raises the peak and cools the channel, as 183 GHz channels do.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from healda_core.obs import vocab
from healda_core.synth.nature import PLEVELS, G, reference_humidity
from healda_core.synth.observe import ERRORS, HUMIDITY_CHANNELS, SOUNDER_CHANNELS, _rows, _Sampler, weights

R_KM, H_KM, INCL, PERIOD_S, MAX_SCAN = 6371.0, 833.0, np.radians(98.7), 101.4 * 60, 48.3


_SUB = 6  # sub-layers per standard-level layer in the transmittance integral
_LNP = np.interp(np.arange(_SUB * (len(PLEVELS) - 1) + 1) / _SUB, np.arange(len(PLEVELS)), np.log(PLEVELS))


def _fine(x: np.ndarray) -> np.ndarray:
    """(13, n) on the standard levels → (fine, n), linear in ln p."""
    idx = np.arange(len(PLEVELS))
    pos = np.interp(_LNP, np.log(PLEVELS[::-1]), idx[::-1].astype(float))
    lo = np.minimum(np.floor(pos).astype(int), len(PLEVELS) - 2)
    f = (pos - lo)[:, None]
    return (1 - f) * x[lo] + f * x[lo + 1]


def _vapour_path(q: Float[np.ndarray, "13 n"]) -> Float[np.ndarray, "fine n"]:
    """Water-vapour path above each fine level (kg m⁻²), from the top level (50 hPa: q·p/g above it)."""
    qf = np.exp(_fine(np.log(np.maximum(q, 1e-9))))
    p = np.exp(_LNP)[:, None] * 100.0
    layer = 0.5 * (qf[1:] + qf[:-1]) * (p[:-1] - p[1:]) / G  # fine layers, bottom to top
    above_top = qf[-1] * p[-1] / G
    return above_top + np.concatenate([np.cumsum(layer[::-1], 0)[::-1], np.zeros((1, q.shape[1]))])


def absorption(peak_hpa: float) -> float:
    """κ (m² kg⁻¹) putting the 1/e transmittance of the reference column at ``peak_hpa``."""
    w = _vapour_path(reference_humidity()[:, None])[:, 0]
    return float(1.0 / np.interp(np.log(peak_hpa), _LNP[::-1], w[::-1]))


def humidity_bt(t: Float[np.ndarray, "13 n"], q: Float[np.ndarray, "13 n"], t_sfc: Float[np.ndarray, " n"],
                kappa: float) -> Float[np.ndarray, " n"]:
    """Brightness temperature (K) of a water-vapour channel with absorption ``kappa`` (see the module doc)."""
    trans = np.exp(-kappa * _vapour_path(q))
    tf = _fine(t)
    layers = ((trans[1:] - trans[:-1]) * 0.5 * (tf[1:] + tf[:-1])).sum(0)
    return layers + trans[0] * t_sfc + (1.0 - trans[-1]) * tf[-1]  # + the air above 50 hPa at its temperature


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
    f = s.at(hour_s)
    temp = s.interp(f["t"], sw["lon"], sw["lat"])  # (13, n)
    sza = solar_zenith(sw["time"], sw["lon"], sw["lat"])
    rows, n = [], sw["lon"].size
    channels = [(sensor, raw_ch, weights(peak) @ temp, ERRORS["bt"]) for raw_ch, peak in SOUNDER_CHANNELS[sensor]]
    if sensor in HUMIDITY_CHANNELS:
        q, t_sfc = s.interp(f["q"], sw["lon"], sw["lat"]), s.interp(f["t2m"], sw["lon"], sw["lat"])
        wv_sensor, wv = HUMIDITY_CHANNELS[sensor]
        channels += [(wv_sensor, raw_ch, humidity_bt(temp, q, t_sfc, absorption(peak)), ERRORS["bt_wv"])
                     for raw_ch, peak in wv]
    for name, raw_ch, clear, err in channels:
        bt = clear + rng.standard_normal(n) * err
        rows.append(_rows(n, time_ns=sw["time"].astype(np.int64) * 10**9, lon=sw["lon"], lat=sw["lat"], value=bt,
                          sensor=np.full(n, vocab.SENSOR_BY_NAME[name].id, np.uint8),
                          channel=np.full(n, raw_ch, np.uint16),
                          platform=np.full(n, vocab.platform_id(platform), np.int16),
                          obs_type=np.zeros(n, np.uint16), scan_angle=sw["scan"], sat_zenith=sw["zenith"],
                          solar_zenith=sza))
    return rows
