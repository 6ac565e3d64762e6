"""A classical optimal-interpolation (OI) analysis: the baseline the OSSE compares HealDA against.

Univariate OI per variable and pressure level, from in-situ observations (radiosondes and aircraft) of the
analysis window ``[t − 3 h, t + 3 h)``:

    x_a = x_b + B Hᵀ (H B Hᵀ + R)⁻¹ (y − H x_b)

with background ``x_b`` = climatology, background errors ``B = σ_b² exp(−d² / 2L²)`` (Gaussian in the
great-circle distance d; σ_b the climatological standard deviation of that variable and level),
``H`` = the nearest-pixel value, and ``R`` diagonal with the observation errors as drawn. Geopotential is
analysed from radiosonde heights. Surface fields: mean-sea-level pressure is analysed from the surface stations' pressures reduced
to sea level (station height, background 2-m temperature); 2-m temperature receives the 1000 hPa temperature
increment (the two are tied in the vertical). Satellite radiances are not used (they need an observation
operator this baseline does not have); the other surface fields keep the background.
"""

from __future__ import annotations

import numpy as np

from healda_core import grid
from healda_core.obs import vocab
from healda_core.obs.raw import RawObs
from healda_core.synth.nature import PLEVELS, R_DRY, G
from healda_core.synth.observe import ERRORS

EARTH_KM = 6371.0
#: conv code → (analysed variable, error σ of sondes, of aircraft); q errors are relative
_VARS = {vocab.CONV_CODE["t"]: ("t", ERRORS["t"], ERRORS["air_t"]),
         vocab.CONV_CODE["u"]: ("u", ERRORS["uv"], ERRORS["air_uv"]),
         vocab.CONV_CODE["v"]: ("v", ERRORS["uv"], ERRORS["air_uv"]),
         vocab.CONV_CODE["q"]: ("q", ERRORS["q_rel"], ERRORS["q_rel"])}


def _unit_vectors(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def _corr(a: np.ndarray, b: np.ndarray, length_km: float) -> np.ndarray:
    d = EARTH_KM * np.arccos(np.clip(a @ b.T, -1.0, 1.0))
    return np.exp(-0.5 * (d / length_km) ** 2)


def oi_update(background: np.ndarray, sigma_b: float, obs_lon: np.ndarray, obs_lat: np.ndarray, y: np.ndarray,
              sigma_o: np.ndarray, level: int, length_km: float = 800.0) -> np.ndarray:
    """One univariate OI analysis of a NEST field ``background`` (npix,) at HEALPix ``level``."""
    if y.size == 0:
        return background
    pix = grid.ang2pix(obs_lon, obs_lat, level, "nest")
    lon, lat = grid.pixel_centers(level, "nest")
    grid_xyz, obs_xyz = _unit_vectors(lon, lat), _unit_vectors(obs_lon, obs_lat)
    hbh = sigma_b**2 * _corr(obs_xyz, obs_xyz, length_km) + np.diag(sigma_o**2)
    weights = np.linalg.solve(hbh, y - background[pix])
    return background + sigma_b**2 * _corr(grid_xyz, obs_xyz, length_km) @ weights


def _window(raw: RawObs, analysis_s: int) -> np.ndarray:
    t = raw.time_ns // 10**9
    return (raw.sensor == vocab.CONV) & (t >= analysis_s - 3 * 3600) & (t < analysis_s + 3 * 3600)


def oi_analysis(raw: RawObs, analysis_s: int, clim_mean: dict[str, np.ndarray], clim_std: dict[str, np.ndarray],
                level: int, length_km: float = 800.0) -> dict[str, np.ndarray]:
    """OI analysis at ``analysis_s`` of every 3-D variable (13, npix), of msl and t2m (module docstring).

    Args:
        raw: the observations. clim_mean, clim_std: climatological mean fields (NEST) and per-level standard
            deviations, per variable (3-D: (13, npix) and (13,); 2-D: (npix,) and scalar).
    """
    sel = _window(raw, analysis_s)
    out = {k: np.array(v, dtype=np.float64, copy=True) for k, v in clim_mean.items()}
    p = raw.pressure_hpa
    for k, plev in enumerate(PLEVELS):
        at_level = sel & (np.abs(p - plev) < 0.5)
        for code, (var, s_sonde, s_air) in _VARS.items():
            rows = at_level & (raw.channel == code)
            sigma = np.where(np.isin(raw.obs_type[rows], (130, 230)), s_air, s_sonde)
            y = raw.value[rows].astype(np.float64)
            if var == "q":
                sigma = sigma * np.maximum(np.abs(y), 1e-6)
            out[var][k] = oi_update(out[var][k], float(clim_std[var][k]), raw.lon[rows].astype(float),
                                    raw.lat[rows].astype(float), y, sigma, level, length_km)
        sondes = at_level & (raw.obs_type == 120) & (raw.channel == vocab.CONV_CODE["t"])
        z_obs = raw.height[sondes].astype(np.float64) * G
        out["z"][k] = oi_update(out["z"][k], float(clim_std["z"][k]), raw.lon[sondes].astype(float),
                                raw.lat[sondes].astype(float), z_obs, np.full(z_obs.size, ERRORS["sonde_z_m"] * G),
                                level, length_km)
    _surface(raw, sel, out, clim_mean, clim_std, level, length_km)
    return out


def _surface(raw: RawObs, sel: np.ndarray, out: dict[str, np.ndarray], clim_mean: dict[str, np.ndarray],
             clim_std: dict[str, np.ndarray], level: int, length_km: float) -> None:
    """msl from station pressures reduced to sea level; t2m += the 1000 hPa temperature increment (in place)."""
    stations = sel & (raw.obs_type == 181) & (raw.channel == vocab.CONV_CODE["ps"])
    lon, lat = raw.lon[stations].astype(float), raw.lat[stations].astype(float)
    elev = np.maximum(raw.height[stations].astype(np.float64), 0.0)
    t_bg = clim_mean["t2m"][grid.ang2pix(lon, lat, level, "nest")]
    factor = np.exp(G * elev / (R_DRY * t_bg))
    msl_obs = raw.value[stations].astype(np.float64) * 100.0 * factor
    out["msl"] = oi_update(out["msl"], float(clim_std["msl"]), lon, lat, msl_obs, ERRORS["ps_hpa"] * 100.0 * factor,
                           level, length_km)
    k = int(np.nonzero(PLEVELS == 1000)[0][0])
    out["t2m"] = out["t2m"] + (out["t"][k] - clim_mean["t"][k])
