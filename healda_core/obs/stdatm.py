"""Vertical coordinates of conventional reports: the ICAO / US 1976 standard atmosphere, and completion
of rows that carry only one of pressure and height (DATA §1.3 needs both).

:func:`complete_vertical` derives a missing height from the report's own levels where the report
(``RawObs.profile``) has levels with both pressure and height, else from the standard atmosphere; likewise a
missing pressure. Within a report the departure ``d = height - Z_std(pressure)`` of its complete levels is
interpolated linearly in log-pressure (in height, for a missing pressure) and held constant beyond them, so a
sonde whose significant levels carry heights gets hydrostatically consistent heights on every level, and
one complete level (e.g. the station elevation with its surface pressure) shifts the standard atmosphere to
the station's conditions. Layers up to 84.852 km; heights are geopotential metres, pressures hPa.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int

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


#: per-row completion codes of :func:`complete_vertical` (0: nothing derived)
DERIVED: tuple[str, ...] = ("none", "height_from_profile", "height_from_standard_atmosphere",
                            "pressure_from_profile", "pressure_from_standard_atmosphere")
#: lowest accepted height (m): stations below sea level reach -430 m (Dead Sea)
MIN_HEIGHT_M = -500.0


def _departure(key, x, d, anchor, target) -> tuple[np.ndarray, np.ndarray]:
    """Departure at ``target`` rows: linear in ``x`` between the nearest anchors of the same ``key``.

    Returns (value, found); rows whose report has no anchor are not found.
    """
    order = np.lexsort((x, key))
    k, xs, ds, an = key[order], x[order], d[order], anchor[order]
    idx = np.arange(order.size)
    start = np.r_[True, k[1:] != k[:-1]]
    group_start = np.maximum.accumulate(np.where(start, idx, 0))
    prev = np.maximum.accumulate(np.where(an, idx, -1))
    prev = np.where(prev >= group_start, prev, -1)
    group_end = np.minimum.accumulate(np.where(np.r_[k[1:] != k[:-1], True], idx, order.size)[::-1])[::-1]
    nxt = np.minimum.accumulate(np.where(an, idx, order.size)[::-1])[::-1]
    nxt = np.where(nxt <= group_end, nxt, -1)
    lo, hi = np.where(prev >= 0, prev, nxt), np.where(nxt >= 0, nxt, prev)
    found = lo >= 0
    lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
    span = xs[hi] - xs[lo]
    w = np.where(span > 0, (xs - xs[lo]) / np.where(span > 0, span, 1.0), 0.0)
    val = ds[lo] + w * (ds[hi] - ds[lo])
    out, ok = np.empty(order.size), np.empty(order.size, bool)
    out[order], ok[order] = val, found
    return out[target], ok[target]


def complete_vertical(pressure_hpa: Float[np.ndarray, " n"], height_m: Float[np.ndarray, " n"],
                      profile: Int[np.ndarray, " n"] | None) -> Int[np.ndarray, " n"]:
    """Fill missing heights/pressures of conventional rows in place; returns (N,) uint8 :data:`DERIVED` codes.

    ``profile`` (report key, -1 none) selects the rows whose levels inform each other; without it every row
    uses the standard atmosphere. Derived heights are clipped at :data:`MIN_HEIGHT_M`.
    """
    p, h = pressure_hpa, height_m
    code = np.zeros(p.shape, np.uint8)
    need_h = np.isnan(h) & np.isfinite(p) & (p > 0)
    need_p = np.isnan(p) & np.isfinite(h)
    anchor = np.isfinite(p) & (p > 0) & np.isfinite(h)
    h_std = height_from_pressure(np.where(need_h | anchor, p, P0_HPA))
    d = np.where(anchor, h - h_std, 0.0)
    new_h, from_prof_h = h_std[need_h], np.zeros(int(need_h.sum()), bool)
    new_p, from_prof_p = pressure_from_height(h[need_p]), np.zeros(int(need_p.sum()), bool)
    if profile is not None and anchor.any():
        rows = (profile >= 0) & (anchor | need_h | need_p)
        key = np.asarray(profile)[rows]
        lnp = np.log(np.where(anchor | need_h, p, 1.0))[rows]
        dh, found = _departure(key, lnp, d[rows], anchor[rows], need_h[rows])
        sel = np.flatnonzero(need_h)[np.isin(np.flatnonzero(need_h), np.flatnonzero(rows))]
        pos = np.searchsorted(np.flatnonzero(need_h), sel)
        new_h[pos[found]] += dh[found]
        from_prof_h[pos[found]] = True
        dp, found = _departure(key, np.nan_to_num(h[rows]), d[rows], anchor[rows], need_p[rows])
        sel = np.flatnonzero(need_p)[np.isin(np.flatnonzero(need_p), np.flatnonzero(rows))]
        pos = np.searchsorted(np.flatnonzero(need_p), sel)
        new_p[pos[found]] = pressure_from_height(h[need_p][pos[found]] - dp[found])
        from_prof_p[pos[found]] = True
    h[need_h] = np.maximum(new_h, MIN_HEIGHT_M)
    p[need_p] = new_p
    code[need_h] = np.where(from_prof_h, 1, 2)
    code[need_p] = np.where(from_prof_p, 3, 4)
    return code
