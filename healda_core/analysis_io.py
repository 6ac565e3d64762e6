"""Analysis NetCDF files: the 74 ERA5 channels as CF variables on HEALPix (NEST) or a regular lat-lon grid.

Layout (HEALPix product)::

    dimensions: time (unlimited), [frame], level = 13, cell = 12·4**L
    crs                        grid_mapping_name = "healpix", indexing_scheme = "nested", refinement_level = L
    cell(cell)                 standard_name = "healpix_index" (CF-1.13)
    cell_ids(cell)             grid_name = "healpix", level = L, indexing_scheme = "nested" (xdggs)
    time(time)                 analysis time, seconds since 1970-01-01T00:00:00Z
    level(level)               pressure, hPa, positive down
    u, v, t, z, q (time, [frame,] level, cell)
    tcwv, t2m, u10m, v10m, u100m, v100m, msl, sst, sic (time, [frame,] cell)

``frame`` (present only when more than one frame is written) holds the frame offsets from the analysis
time (hours, ≤ 0); ``valid_time(time, frame)`` the frames' times. The lat-lon product replaces ``cell``
by ``lat`` (90 → −90) and ``lon`` (0 → 360 − Δ), bilinearly interpolated on the sphere from the NEST fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import netCDF4
import numpy as np

from healda_core import era5_stats as _stats
from healda_core import grid
from healda_core.fileio import HDF5_LOCK
from healda_core.static import write_healpix_crs

LEVELS_HPA = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)
TIME_UNITS = "seconds since 1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class Var:
    """One output variable: NetCDF name, ERA5 stats name, CF standard_name, units, long name."""

    name: str
    era5: str
    standard_name: str
    units: str
    long_name: str
    height_m: float | None = None
    comment: str | None = None


ATMOS_VARS: tuple[Var, ...] = (
    Var("u", "U", "eastward_wind", "m s-1", "eastward wind"),
    Var("v", "V", "northward_wind", "m s-1", "northward wind"),
    Var("t", "T", "air_temperature", "K", "temperature"),
    Var("z", "Z", "geopotential", "m2 s-2", "geopotential"),
    Var("q", "Q", "specific_humidity", "kg kg-1", "specific humidity"),
)
SURFACE_VARS: tuple[Var, ...] = (
    Var("tcwv", "tcwv", "atmosphere_mass_content_of_water_vapor", "kg m-2", "total column water vapour"),
    Var("t2m", "tas", "air_temperature", "K", "2 m temperature", 2.0),
    Var("u10m", "uas", "eastward_wind", "m s-1", "10 m eastward wind", 10.0),
    Var("v10m", "vas", "northward_wind", "m s-1", "10 m northward wind", 10.0),
    Var("u100m", "100u", "eastward_wind", "m s-1", "100 m eastward wind", 100.0),
    Var("v100m", "100v", "northward_wind", "m s-1", "100 m northward wind", 100.0),
    Var("msl", "pres_msl", "air_pressure_at_mean_sea_level", "Pa", "mean sea level pressure"),
    Var("sst", "sst", "sea_surface_temperature", "K", "sea surface temperature",
        comment="trained with land filled with 290 K"),
    Var("sic", "sic", "sea_ice_area_fraction", "1", "sea ice concentration", comment="trained with NaN filled by 0"),
)
N_CHANNELS = len(ATMOS_VARS) * len(LEVELS_HPA) + len(SURFACE_VARS)  # 74


def channel_names() -> list[str]:
    """The 74 output channels in model order, as ERA5 stats names (``U1000`` … ``sic``)."""
    return [f"{v.era5}{lev}" for v in ATMOS_VARS for lev in LEVELS_HPA] + [v.era5 for v in SURFACE_VARS]


def era5_stats() -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float64 (74,) in model channel order, from the shipped ``era5_13_levels_stats.csv``."""
    keys = [(v.era5, lev) for v in ATMOS_VARS for lev in LEVELS_HPA] + [(v.era5, -1) for v in SURFACE_VARS]
    return _stats.mean_std(keys)


def latlon_grid(deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Regular grid: lat 90 → −90 and lon 0 → 360 − deg, both inclusive of the end points listed."""
    n_lat = round(180.0 / deg) + 1
    n_lon = round(360.0 / deg)
    if abs((n_lat - 1) * deg - 180.0) > 1e-6 or abs(n_lon * deg - 360.0) > 1e-6:
        raise ValueError(f"--lat-lon {deg}: 180 and 360 must be multiples of the spacing")
    return np.linspace(90.0, -90.0, n_lat), np.arange(n_lon) * deg


class LatLonInterpolator:
    """Bilinear interpolation on the sphere (healpy's 4-neighbour weights) from NEST fields to lat-lon."""

    def __init__(self, level: int, deg: float):
        self.lat, self.lon = latlon_grid(deg)
        lon2, lat2 = np.meshgrid(self.lon, self.lat)
        pix, w = grid.interp_weights(lon2.ravel(), lat2.ravel(), level, "nest")
        self.pix, self.w = pix.astype(np.int64), w.astype(np.float32)

    def __call__(self, field: np.ndarray) -> np.ndarray:
        """(..., npix) NEST → (..., nlat, nlon)."""
        out = np.zeros(field.shape[:-1] + (self.pix.shape[1],), dtype=np.float32)
        for j in range(4):
            out += field[..., self.pix[j]] * self.w[j]
        return out.reshape(field.shape[:-1] + (self.lat.size, self.lon.size))


class AnalysisWriter:
    """Streams analyses into a NetCDF-4 file (``time`` unlimited), one batch at a time.

    Args:
        path: file to create (the caller makes it atomic). level: HEALPix level of the fields.
        frame_offsets_s: offsets of the written frames from the analysis time (s, ≤ 0); more than one adds
            the ``frame`` dimension. attrs: global attributes. latlon: an interpolator for a lat-lon file
            (``None``: HEALPix NEST). complevel: zlib level (shuffle on).
    """

    def __init__(self, path: str, level: int, frame_offsets_s: list[int], attrs: dict[str, object],
                 latlon: LatLonInterpolator | None = None, complevel: int = 4):
        with HDF5_LOCK:
            self._create(path, level, frame_offsets_s, attrs, latlon, complevel)

    def _create(self, path: str, level: int, frame_offsets_s: list[int], attrs: dict[str, object],
                latlon: LatLonInterpolator | None, complevel: int) -> None:
        self.level, self.latlon = level, latlon
        self.offsets = [int(o) for o in frame_offsets_s]
        self.framed = len(self.offsets) > 1
        self.n = 0
        self.ds = ds = netCDF4.Dataset(path, "w", format="NETCDF4")
        ds.setncatts({k: v for k, v in attrs.items() if v is not None})
        ds.createDimension("time", None)
        if self.framed:
            ds.createDimension("frame", len(self.offsets))
        ds.createDimension("level", len(LEVELS_HPA))
        if latlon is None:
            ds.createDimension("cell", grid.npix(level))
            write_healpix_crs(ds, level)
            space: tuple[str, ...] = ("cell",)
            space_shape: tuple[int, ...] = (grid.npix(level),)
        else:
            ds.createDimension("lat", latlon.lat.size)
            ds.createDimension("lon", latlon.lon.size)
            v = ds.createVariable("lat", "f8", ("lat",))
            v.setncatts({"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"})
            v[:] = latlon.lat
            v = ds.createVariable("lon", "f8", ("lon",))
            v.setncatts({"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"})
            v[:] = latlon.lon
            space, space_shape = ("lat", "lon"), (latlon.lat.size, latlon.lon.size)
        t = ds.createVariable("time", "i8", ("time",))
        t.setncatts({"standard_name": "time", "long_name": "analysis time", "units": TIME_UNITS,
                     "calendar": "proleptic_gregorian", "axis": "T"})
        lev = ds.createVariable("level", "f4", ("level",))
        lev.setncatts({"standard_name": "air_pressure", "long_name": "pressure level", "units": "hPa",
                       "positive": "down", "axis": "Z"})
        lev[:] = np.asarray(LEVELS_HPA, np.float32)
        tdims: tuple[str, ...] = ("time",)
        if self.framed:
            f = ds.createVariable("frame", "i4", ("frame",))
            f.setncatts({"long_name": "frame valid time minus analysis time", "units": "hours"})
            f[:] = np.asarray(self.offsets) // 3600
            vt = ds.createVariable("valid_time", "i8", ("time", "frame"))
            vt.setncatts({"standard_name": "time", "long_name": "valid time of the frame", "units": TIME_UNITS,
                          "calendar": "proleptic_gregorian"})
            tdims = ("time", "frame")
        coords = "valid_time" if self.framed else None
        if latlon is None:
            coords = f"{coords} cell_ids" if coords else "cell_ids"
        self.vars: list[tuple[netCDF4.Variable, slice | int]] = []
        ones = (1,) * len(tdims)
        for i, var in enumerate(ATMOS_VARS):
            nc = ds.createVariable(var.name, "f4", tdims + ("level",) + space, zlib=complevel > 0,
                                   complevel=max(1, complevel), shuffle=True,
                                   chunksizes=ones + (len(LEVELS_HPA),) + space_shape, fill_value=np.float32(np.nan))
            self._attrs(nc, var, coords)
            self.vars.append((nc, slice(i * len(LEVELS_HPA), (i + 1) * len(LEVELS_HPA))))
        base = len(ATMOS_VARS) * len(LEVELS_HPA)
        for i, var in enumerate(SURFACE_VARS):
            nc = ds.createVariable(var.name, "f4", tdims + space, zlib=complevel > 0, complevel=max(1, complevel),
                                   shuffle=True, chunksizes=ones + space_shape, fill_value=np.float32(np.nan))
            self._attrs(nc, var, coords)
            self.vars.append((nc, base + i))

    def _attrs(self, nc: netCDF4.Variable, var: Var, coords: str | None) -> None:
        a: dict[str, object] = {"standard_name": var.standard_name, "long_name": var.long_name, "units": var.units,
                                "healda_era5_name": var.era5}
        if self.latlon is None:
            a["grid_mapping"] = "crs"
        if coords:
            a["coordinates"] = coords
        if var.height_m is not None:
            a["comment"] = f"at {var.height_m:g} m above the surface"
        if var.comment:
            a["comment"] = f"{a.get('comment', '')}; {var.comment}".lstrip("; ")
        nc.setncatts(a)

    def write(self, analysis_s: np.ndarray, fields_nest: np.ndarray) -> None:
        """Append ``b`` analyses: times (b,) s and fields (b, frames, 74, npix) float32, NEST order, physical."""
        b = len(analysis_s)
        if fields_nest.shape[:3] != (b, len(self.offsets), N_CHANNELS):
            raise ValueError(f"fields shape {fields_nest.shape} != ({b}, {len(self.offsets)}, {N_CHANNELS}, npix)")
        data = fields_nest if self.latlon is None else self.latlon(fields_nest)
        if not self.framed:
            data = data[:, 0]
        sl = slice(self.n, self.n + b)
        ch_axis = 2 if self.framed else 1
        with HDF5_LOCK:
            self.ds.variables["time"][sl] = np.asarray(analysis_s, np.int64)
            if self.framed:
                self.ds.variables["valid_time"][sl] = (np.asarray(analysis_s, np.int64)[:, None]
                                                       + np.asarray(self.offsets))
        for nc, ch in self.vars:  # the lock per variable: a reader thread's chunk reads get in between
            part = np.take(data, np.arange(N_CHANNELS)[ch], axis=ch_axis).astype(np.float32)
            with HDF5_LOCK:
                nc[sl] = part
        self.n += b

    def set_attrs(self, attrs: dict[str, object]) -> None:
        """Add or replace global attributes (those known only once every analysis is written)."""
        with HDF5_LOCK:
            self.ds.setncatts(attrs)

    def close(self) -> None:
        with HDF5_LOCK:
            if self.ds.isopen():
                self.ds.close()

    def __enter__(self) -> AnalysisWriter:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_fields(ds: netCDF4.Dataset, i: int) -> np.ndarray:
    """Fields (frames, 74, ...) of time index ``i`` of an analysis file, in model channel order."""
    framed = "frame" in ds.dimensions
    parts = []
    for v in ATMOS_VARS:
        a = np.asarray(ds.variables[v.name][i])
        parts.append(a if framed else a[None])
    for v in SURFACE_VARS:
        a = np.asarray(ds.variables[v.name][i])
        parts.append((a if framed else a[None])[:, None])
    return np.concatenate(parts, axis=1)


def merge_analyses(parts: list[str], out: str, level: int, frame_offsets_s: list[int], attrs: dict[str, object],
                   latlon: LatLonInterpolator | None = None, complevel: int = 4) -> None:
    """Write the analyses of the files ``parts`` (same grid and frames) into ``out``, in time order.

    ``latlon``: the grid of lat-lon parts (their fields are already on it and are copied as they are).
    """
    dss = [netCDF4.Dataset(p) for p in parts]
    try:
        index = sorted((int(t), r, i) for r, ds in enumerate(dss)
                       for i, t in enumerate(np.asarray(ds.variables["time"][:], np.int64)))
        with AnalysisWriter(out, level, frame_offsets_s, attrs, latlon, complevel) as w:
            w.latlon = None  # the parts are already on the target grid
            for t, r, i in index:
                w.write(np.asarray([t]), read_fields(dss[r], i)[None])
    finally:
        for ds in dss:
            ds.close()
