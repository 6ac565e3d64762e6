"""ICAO / US 1976 standard atmosphere: pressure <-> geopotential height, vectorised.

Used to complete conventional reports that carry only one of pressure and height (DATA §1.3 needs
both). Layers up to 84.852 km; heights are geopotential metres, pressures hPa.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

G0 = 9.80665  # m s-2
R_AIR = 287.05287  # J kg-1 K-1 (R* / M)
P0_HPA = 1013.25
# base geopotential height (m), lapse rate (K m-1) of each layer
_H = np.array([0.0, 11000.0, 20000.0, 32000.0, 47000.0, 51000.0, 71000.0])
_L = np.array([-0.0065, 0.0, 0.001, 0.0028, 0.0, -0.0028, -0.002])


def _layer_bases() -> tuple[np.ndarray, np.ndarray]:
    t = np.empty_like(_H)
    p = np.empty_like(_H)
    t[0], p[0] = 288.15, P0_HPA
    for i in range(1, len(_H)):
        dh = _H[i] - _H[i - 1]
        t[i] = t[i - 1] + _L[i - 1] * dh
        p[i] = _pressure_in_layer(p[i - 1], t[i - 1], _L[i - 1], dh)
    return t, p


def _pressure_in_layer(pb, tb, lapse, dh):
    with np.errstate(divide="ignore", invalid="ignore"):
        power = pb * (tb / (tb + lapse * dh)) ** (G0 / (R_AIR * np.where(lapse == 0, 1.0, lapse)))
        iso = pb * np.exp(-G0 * dh / (R_AIR * tb))
    return np.where(lapse == 0, iso, power)


_TB, _PB = _layer_bases()


def pressure_from_height(height_m: Float[np.ndarray, " n"]) -> Float[np.ndarray, " n"]:
    """Standard-atmosphere pressure (hPa) at geopotential height (m); heights below 0 use the first layer."""
    h = np.asarray(height_m, dtype=np.float64)
    i = np.clip(np.searchsorted(_H, h, side="right") - 1, 0, len(_H) - 1)
    return _pressure_in_layer(_PB[i], _TB[i], _L[i], h - _H[i])


def height_from_pressure(pressure_hpa: Float[np.ndarray, " n"]) -> Float[np.ndarray, " n"]:
    """Standard-atmosphere geopotential height (m) at pressure (hPa); inverse of :func:`pressure_from_height`."""
    p = np.asarray(pressure_hpa, dtype=np.float64)
    # _PB is decreasing: layer i holds _PB[i] >= p > _PB[i+1]
    i = np.clip(len(_PB) - np.searchsorted(_PB[::-1], p, side="left") - 1, 0, len(_PB) - 1)
    pb, tb, lapse = _PB[i], _TB[i], _L[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        power = tb / np.where(lapse == 0, 1.0, lapse) * ((p / pb) ** (-R_AIR * lapse / G0) - 1.0)
        iso = -R_AIR * tb / G0 * np.log(p / pb)
    return _H[i] + np.where(lapse == 0, iso, power)
