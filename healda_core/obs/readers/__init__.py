"""Raw observation readers, auto-detected per file: canonical CF point, JCSDA IODA, NOAA GSI diag.

:func:`read_obs_file` opens a file, picks the reader from its structure and returns a
:class:`~healda_core.obs.raw.RawObs` with longitudes in [-180, 180] whatever the file's convention.
File-level problems (missing, empty, truncated, not NetCDF, unrecognised layout, required variable missing,
wrong dtype) raise :class:`~healda_core.errors.InputError` naming file and variable.
"""

from __future__ import annotations

import os

import numpy as np

from healda_core.errors import input_error
from healda_core.fileio import reading_netcdf
from healda_core.obs.raw import RawObs
from healda_core.obs.readers.canonical import looks_canonical, read_canonical, write_canonical
from healda_core.obs.readers.common import open_nc
from healda_core.obs.readers.gsi import looks_gsi, read_gsi
from healda_core.obs.readers.ioda import looks_ioda, read_ioda

FORMATS = ("canonical", "ioda", "gsi")


def detect_format(ds) -> str | None:
    """``"canonical"``, ``"ioda"``, ``"gsi"`` or None."""
    if looks_canonical(ds):
        return "canonical"
    if looks_ioda(ds):
        return "ioda"
    if looks_gsi(ds):
        return "gsi"
    return None


def read_obs_file(path: str | os.PathLike) -> tuple[RawObs, str]:
    """Read one raw observation file; returns the rows and the detected format name."""
    ds = open_nc(path)
    with ds, reading_netcdf(path):  # a damaged chunk or attribute surfaces lazily, as a netCDF/HDF5 error
        fmt = detect_format(ds)
        if fmt is None:
            raise input_error(path, None, "unrecognised layout: expected the canonical CF point form "
                              "(value, sensor, channel), IODA groups (MetaData, ObsValue) or GSI diag variables "
                              "(Latitude, Observation)")
        reader = {"canonical": read_canonical, "ioda": read_ioda, "gsi": read_gsi}[fmt]
        raw = reader(path, ds)
    normalise_longitude(raw.lon)
    return raw, fmt


def normalise_longitude(lon: np.ndarray) -> None:
    """Map longitudes in (180, 360] to (-180, 0] in place: one convention, [-180, 180], in every output.

    Values outside [-180, 360] are left for QC to reject as ``bad_latlon``.
    """
    east = (lon > 180) & (lon <= 360)
    lon[east] -= np.float32(360.0)


__all__ = ["FORMATS", "detect_format", "normalise_longitude", "read_obs_file", "write_canonical"]
