"""Validation of packed-observation files on reading: layout, header attributes, ragged index, id ranges.

A packed file comes from ``healda pack-obs``, but a reader cannot assume it: it may be truncated, damaged or
hand-made. :func:`packed_layout` checks everything the reader relies on before any observation is read
(dimensions and variables present with the right shapes and numeric types, ``n_frame``/``hpx_level``/
``frame_step_seconds`` sane and consistent with the dimensions, the ``cu_seqlens`` index monotone from 0 to
the observation count); :func:`check_obs_ids` checks the id columns against the model's embedding tables;
:func:`~healda_core.fileio.reading_netcdf` turns a failure to decode stored data (HDF5 errors of a damaged
chunk or attribute) into an :class:`~healda_core.errors.InputError` naming file and variable.
"""

from __future__ import annotations

from dataclasses import dataclass

import netCDF4
import numpy as np

from healda_core import grid
from healda_core.errors import input_error
from healda_core.fileio import reading_netcdf as reading  # noqa: F401 - re-exported for the readers
from healda_core.obs import vocab

#: per-obs id columns and the size of the model table each indexes
ID_LIMITS = {"global_channel": vocab.NCHANNEL, "global_platform": 1024, "obs_type": vocab.NOBS_TYPES}


@dataclass(frozen=True)
class PackedLayout:
    """What a packed file's header says, once checked."""

    n_frames: int
    level: int
    step_s: int
    n_cell: int
    n_analysis: int
    n_obs: int


def _int_attr(ds: netCDF4.Dataset, path: object, name: str, lo: int, hi: int) -> int:
    if name not in ds.ncattrs():
        raise input_error(path, None, f"global attribute {name!r} missing; not a healda packed observation file")
    raw = np.atleast_1d(ds.getncattr(name))
    if raw.size != 1 or raw.dtype.kind not in "iu" or not lo <= int(raw[0]) <= hi:
        raise input_error(path, None, f"global attribute {name}={ds.getncattr(name)!r} must be an integer in "
                          f"{lo}..{hi}")
    return int(raw[0])


def _var(ds: netCDF4.Dataset, path: object, name: str, dims: tuple[str, ...], kinds: str) -> netCDF4.Variable:
    v = ds.variables.get(name)
    if v is None:
        raise input_error(path, name, "missing; not a healda packed observation file (make it with `healda pack-obs`)")
    kind = "O" if isinstance(v.dtype, type) else np.dtype(v.dtype).kind
    if kind not in kinds:
        raise input_error(path, name, f"wrong dtype {v.dtype}")
    if v.dimensions != dims:
        raise input_error(path, name, f"dimensions {v.dimensions}, expected {dims}")
    return v


def packed_layout(ds: netCDF4.Dataset, path: object, obs_vars: dict[str, type]) -> PackedLayout:
    """Check the layout of an open packed file (no observation is read) and return its header."""
    for dim in ("analysis", "frame", "cell", "cell_edge", "obs", "sensor"):
        if dim not in ds.dimensions:
            raise input_error(path, None, f"dimension {dim!r} missing; not a healda packed observation file")
    n_frames = _int_attr(ds, path, "n_frame", 1, 64)
    level = _int_attr(ds, path, "hpx_level", 0, 8)
    step = _int_attr(ds, path, "frame_step_seconds", 1, 366 * 86400)
    size = {k: ds.dimensions[k].size for k in ("analysis", "frame", "cell", "cell_edge", "obs")}
    want = {"frame": n_frames, "cell": grid.npix(level), "cell_edge": size["analysis"] * n_frames * grid.npix(level) + 1}
    bad = [f"{k} = {size[k]} (expected {v})" for k, v in want.items() if size[k] != v]
    if bad:
        raise input_error(path, None, "dimensions do not match the header (n_frame, hpx_level): " + ", ".join(bad))
    _var(ds, path, "analysis_time", ("analysis",), "iu")
    _var(ds, path, "cu_seqlens", ("cell_edge",), "iu")
    _var(ds, path, "sensor_lengths", ("sensor", "analysis", "frame"), "iu")
    for name, dtype in obs_vars.items():
        _var(ds, path, name, ("obs",), "fiu" if np.dtype(dtype).kind == "f" else "iu")
    return PackedLayout(n_frames, level, step, size["cell"], size["analysis"], size["obs"])


def check_index(cu: np.ndarray, n_obs: int, path: object) -> None:
    """``cu_seqlens`` must start at 0, never decrease and end at the observation count."""
    if cu.size == 0 or cu[0] != 0 or cu[-1] != n_obs or (np.diff(cu) < 0).any():
        raise input_error(path, "cu_seqlens", f"not a valid ragged index over {n_obs} observations (it must rise "
                          "from 0 to the observation count)")


def check_obs_ids(obs: dict[str, np.ndarray], path: object) -> None:
    """The id columns must index the model's embedding tables."""
    for name, limit in ID_LIMITS.items():
        a = obs.get(name)
        if a is not None and a.size and int(a.max()) >= limit:
            raise input_error(path, name, f"id {int(a.max())} out of range (the model's table has {limit} rows)")


def check_analysis_times(analysis_s: np.ndarray, path: object) -> None:
    """Analysis times (s since 1970) must lie in 1900–2200, like observation times."""
    from healda_core.obs.raw import TIME_MAX_NS, TIME_MIN_NS

    ns = 1_000_000_000
    if analysis_s.size and ((analysis_s < TIME_MIN_NS // ns) | (analysis_s >= TIME_MAX_NS // ns)).any():
        raise input_error(path, "analysis_time", "times outside 1900–2200")
