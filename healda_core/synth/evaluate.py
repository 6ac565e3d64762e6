"""OSSE verification: RMSE of analyses against the nature run, per variable and pressure level.

HEALPix cells have equal area, so the global RMSE is the plain root-mean-square over cells. Wind is
verified as a vector: ``sqrt(mean((u_a − u_t)² + (v_a − v_t)²))``.
"""

from __future__ import annotations

import os

import numpy as np

from healda_core.analysis_io import ATMOS_VARS, LEVELS_HPA, SURFACE_VARS
from healda_core.errors import input_error
from healda_core.fileio import open_netcdf

#: the headline scores of the demo: (name, variable, level hPa or None)
HEADLINE = (("z500", "z", 500), ("t850", "t", 850), ("wind250", "wind", 250), ("q700", "q", 700),
            ("t2m", "t2m", None), ("msl", "msl", None))
UNITS = {"z500": "m² s⁻²", "t850": "K", "wind250": "m s⁻¹", "q700": "kg kg⁻¹", "t2m": "K", "msl": "Pa"}


def read_fields(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Analysis-layout file → (times (n,) int64 s, {var: (n, 13, npix) or (n, npix)}) of the last frame."""
    ds = open_netcdf(path)
    with ds:
        if "time" not in ds.variables:
            raise input_error(path, "time", "missing: not an analysis or nature-run file")
        times = np.asarray(ds.variables["time"][:], dtype=np.int64)
        out = {}
        for var in ATMOS_VARS + SURFACE_VARS:
            if var.name not in ds.variables:
                raise input_error(path, var.name, "missing")
            v = ds.variables[var.name]
            data = np.ma.filled(v[:], np.nan).astype(np.float64)
            out[var.name] = data[:, -1] if "frame" in v.dimensions else data
    return times, out


def _rmse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.nanmean((a - b) ** 2, axis=-1))


def scores(analysis: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict[str, float]:
    """RMSE of one analysis (NEST fields, no time axis) against the truth: ``{"z500": ..., "t@850": ...}``.

    Keys: every headline score, plus ``"<var>@<level>"`` for all 3-D variables and levels and every 2-D name.
    """
    out: dict[str, float] = {}
    for var in ATMOS_VARS:
        for k, lev in enumerate(LEVELS_HPA):
            out[f"{var.name}@{lev}"] = float(_rmse(analysis[var.name][k], truth[var.name][k]))
    for var in SURFACE_VARS:
        out[var.name] = float(_rmse(analysis[var.name], truth[var.name]))
    for name, var, lev in HEADLINE:
        if var == "wind":
            k = LEVELS_HPA.index(lev)
            du = analysis["u"][k] - truth["u"][k]
            dv = analysis["v"][k] - truth["v"][k]
            out[name] = float(np.sqrt(np.nanmean(du**2 + dv**2)))
        else:
            out[name] = out[f"{var}@{lev}"] if lev is not None else out[var]
    return out


def mean_scores(per_time: list[dict[str, float]]) -> dict[str, float]:
    """RMSE pooled over analysis times: sqrt of the mean squared RMSE."""
    keys = per_time[0].keys()
    return {k: float(np.sqrt(np.mean([s[k] ** 2 for s in per_time]))) for k in keys}


def climatology(fields: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Time mean fields and per-level (3-D) or global (2-D) standard deviations of anomalies."""
    mean = {k: v.mean(axis=0) for k, v in fields.items()}
    std = {k: np.sqrt(((v - mean[k]) ** 2).mean(axis=(0, -1))) for k, v in fields.items()}
    return mean, std
