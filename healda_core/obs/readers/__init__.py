"""Raw observation readers, auto-detected per file by content: canonical CF point, JCSDA IODA, NOAA GSI diag
(NetCDF), parquet observation tables (``PAR1`` magic: the UFS long schema or NNJA PrepBUFR cycle tables) and WMO BUFR (``BUFR`` magic).

:func:`read_obs_file` opens a file, picks the reader from its structure and returns a
:class:`~healda_core.obs.raw.RawObs` with longitudes in [-180, 180] whatever the file's convention.
File-level problems (missing, empty, truncated, not NetCDF/parquet/BUFR, unrecognised layout, required
variable missing, wrong dtype) raise :class:`~healda_core.errors.InputError` naming file and variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from healda_core.errors import input_error
from healda_core.fileio import reading_netcdf
from healda_core.obs.raw import RawObs
from healda_core.obs.readers.bufr import MAGIC as BUFR_MAGIC
from healda_core.obs.readers.bufr import read_bufr
from healda_core.obs.readers.canonical import looks_canonical, read_canonical, write_canonical
from healda_core.obs.readers.common import open_nc
from healda_core.obs.readers.gsi import looks_gsi, read_gsi
from healda_core.obs.readers.ioda import looks_ioda, read_ioda
from healda_core.obs.readers.parquet import MAGIC as PARQUET_MAGIC
from healda_core.obs.readers.parquet import read_parquet, write_parquet

FORMATS = ("canonical", "ioda", "gsi", "parquet", "nnja-prepbufr", "bufr")


def detect_format(ds) -> str | None:
    """``"canonical"``, ``"ioda"``, ``"gsi"`` or None."""
    if looks_canonical(ds):
        return "canonical"
    if looks_ioda(ds):
        return "ioda"
    if looks_gsi(ds):
        return "gsi"
    return None


def _magic(path: str | os.PathLike) -> str | None:
    """``"parquet"`` or ``"bufr"`` from the first bytes of a readable file, else None (NetCDF or an error)."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return None
    with open(p, "rb") as f:
        head = f.read(4096)
    if head[:4] == PARQUET_MAGIC:
        return "parquet"
    if head[:4] == BUFR_MAGIC or (BUFR_MAGIC in head and not head.startswith((b"\x89HDF", b"CDF"))):
        return "bufr"  # WMO bulletins may carry an abbreviated heading before the first message
    return None


def read_obs_file(path: str | os.PathLike) -> tuple[RawObs, str]:
    """Read one raw observation file; returns the rows and the detected format name."""
    fmt = _magic(path)
    if fmt is not None:
        raw, fmt = read_parquet(path) if fmt == "parquet" else (read_bufr(path), fmt)
        normalise_longitude(raw.lon)
        return raw, fmt
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


__all__ = ["FORMATS", "detect_format", "normalise_longitude", "read_obs_file", "write_canonical", "write_parquet"]
