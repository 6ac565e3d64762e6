"""Static model inputs: orography (m) and land fraction on HEALPix, built from regular lat-lon invariants.

``make_static`` averages a regular lat-lon field (ERA5 style: geopotential ``z`` or an orography in m, and a
land-sea mask ``lsm``) onto the HEALPix pixels of ``level`` by area-weighted supersampling: every lat-lon
cell is split into ``k × k`` sub-cells (``k`` chosen so that sub-cells are at most a quarter of a HEALPix
pixel), each sub-cell carries its cell's value with weight ``cos(lat)`` (its area), and each pixel gets the
weighted mean of the sub-cells whose centres fall in it. The file is written in NEST order with the CF-1.13
HEALPix grid mapping (and xdggs attributes on ``cell_ids``). Values are physical; the z-scoring of DATA §4 is
applied by :func:`load_static`, not stored.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import netCDF4
import numpy as np
from jaxtyping import Float

from healda_core import era5_stats, grid
from healda_core.errors import InputError, input_error
from healda_core.fileio import open_netcdf, reading_netcdf

G0 = 9.80665  # m s-2, standard gravity (ERA5 geopotential → height)
STATIC_VARS = ("orog", "lfrac")
#: names under which :func:`load_static` finds each static input in a HEALPix file, in channel order
STATIC_FILE_NAMES = (("orog", "orography", "zsfc"), ("lfrac", "land_fraction", "lsm"))

_OROG_NAMES = ("orog", "orography", "z", "geopotential", "hgt", "elevation", "surface_altitude", "zs", "topo")
_OROG_STD_NAMES = ("surface_altitude", "surface_geopotential", "geopotential", "height_above_mean_sea_level")
_LSM_NAMES = ("lsm", "land_sea_mask", "lfrac", "landfrac", "land_fraction", "land_area_fraction", "sftlf", "lsmask",
              "land")
_LAT_NAMES = ("latitude", "lat", "y", "nav_lat")
_LON_NAMES = ("longitude", "lon", "x", "nav_lon")


def _find(ds: netCDF4.Dataset, names: tuple[str, ...], std_names: tuple[str, ...] = ()) -> str | None:
    lower = {k.lower(): k for k in ds.variables}
    for n in names:
        if n in lower:
            return lower[n]
    for k, v in ds.variables.items():
        if getattr(v, "standard_name", None) in std_names:
            return k
    return None


def _field(ds: netCDF4.Dataset, path: object, name: str, nlat: int, nlon: int) -> np.ndarray:
    v = ds.variables[name]
    v.set_auto_maskandscale(True)
    a = np.ma.filled(np.ma.asarray(v[...]).astype(np.float64), np.nan)
    a = np.squeeze(a)
    if a.shape != (nlat, nlon):
        raise input_error(path, name, f"expected a 2-D (lat, lon) field of shape ({nlat}, {nlon}) after dropping "
                                      f"size-1 dimensions, got {a.shape}")
    return a


def _regular(c: np.ndarray, path: object, name: str) -> float:
    d = np.diff(c)
    if c.size < 2 or not (np.all(d > 0) or np.all(d < 0)) or np.ptp(d) > 1e-4 * max(abs(d[0]), 1e-12) + 1e-6:
        raise input_error(path, name, "must be a regular, monotonic 1-D coordinate")
    return float(abs(d[0]))


def read_latlon_invariants(path: str | os.PathLike, orog_var: str | None = None, lsm_var: str | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, str]]:
    """Read (lat, lon, orography m, land fraction) from a regular lat-lon NetCDF; returns also provenance."""
    ds = open_netcdf(path)
    with ds:
        la, lo = _find(ds, _LAT_NAMES), _find(ds, _LON_NAMES)
        if la is None or lo is None:
            raise input_error(path, "latitude/longitude", "missing (need 1-D lat and lon coordinates)")
        lat = np.asarray(ds.variables[la][:], np.float64)
        lon = np.asarray(ds.variables[lo][:], np.float64)
        if lat.ndim != 1 or lon.ndim != 1:
            raise input_error(path, la, "only regular lat-lon grids with 1-D coordinates are supported")
        _regular(lat, path, la)
        _regular(lon, path, lo)
        ov = orog_var or _find(ds, _OROG_NAMES, _OROG_STD_NAMES)
        lv = lsm_var or _find(ds, _LSM_NAMES, ("land_area_fraction", "land_binary_mask"))
        for role, v in (("orography (z, orog, …; or --orog-var)", ov), ("land-sea mask (lsm, …; or --lsm-var)", lv)):
            if v is None or v not in ds.variables:
                raise input_error(path, v or role, "missing")
        orog = _field(ds, path, ov, lat.size, lon.size)
        units = str(getattr(ds.variables[ov], "units", "")).replace("**", "").replace("^", "").replace(" ", "")
        std = getattr(ds.variables[ov], "standard_name", "")
        is_geopotential = ov.lower() in ("z", "geopotential") or std in ("geopotential", "surface_geopotential") \
            or units in ("m2s-2", "m2/s2")
        if is_geopotential:
            orog = orog / G0
        elif units not in ("m", "metre", "meter", "metres", "meters", "gpm", ""):
            raise input_error(path, ov, f"orography units {units!r} not understood (need m or m2 s-2)")
        lfrac = _field(ds, path, lv, lat.size, lon.size)
        if str(getattr(ds.variables[lv], "units", "")).strip() in ("%", "percent"):
            lfrac = lfrac / 100.0
        if np.nanmin(lfrac) < -1e-6 or np.nanmax(lfrac) > 1 + 1e-6:
            raise input_error(path, lv, f"land fraction outside [0, 1] ({np.nanmin(lfrac):.3g}…{np.nanmax(lfrac):.3g})")
        prov = {"orog_var": ov, "lsm_var": lv, "orog_from": "geopotential / 9.80665" if is_geopotential else ov}
    return lat, lon, orog, np.clip(lfrac, 0.0, 1.0), prov


def supersample_factor(dlat: float, dlon: float, level: int) -> int:
    """Sub-cells per lat-lon cell edge so that sub-cells are ≤ 1/4 of a HEALPix pixel of ``level``."""
    pix_deg = math.degrees(math.sqrt(4 * math.pi / grid.npix(level)))
    return max(1, math.ceil(max(dlat, dlon) / (pix_deg / 4)))


def regrid_to_healpix(lat: np.ndarray, lon: np.ndarray, fields: list[np.ndarray], level: int,
                      k: int | None = None) -> tuple[list[np.ndarray], int]:
    """Area-weighted mean of lat-lon ``fields`` on HEALPix ``level`` (NEST); returns (fields, factor)."""
    dlat, dlon = abs(lat[1] - lat[0]), abs(lon[1] - lon[0])
    k = k or supersample_factor(dlat, dlon, level)
    npix = grid.npix(level)
    offs = (np.arange(k) + 0.5) / k - 0.5
    sub_lon = (lon[:, None] + offs[None, :] * dlon).reshape(-1)  # (nlon*k,)
    sums = [np.zeros(npix) for _ in fields]
    wsum = [np.zeros(npix) for _ in fields]
    rows = max(1, 2_000_000 // max(1, sub_lon.size * k))
    for a in range(0, lat.size, rows):
        la = lat[a:a + rows]
        sub_lat = (la[:, None] + offs[None, :] * dlat)  # (r, k)
        keep = np.abs(sub_lat) <= 90.0
        w_lat = np.where(keep, np.cos(np.radians(np.clip(sub_lat, -90, 90))), 0.0)
        lat2 = np.broadcast_to(np.clip(sub_lat, -90, 90)[:, :, None], (la.size, k, sub_lon.size))
        lon2 = np.broadcast_to(sub_lon[None, None, :], lat2.shape)
        pix = grid.ang2pix(lon2.reshape(-1), lat2.reshape(-1), level, "nest")
        w = np.broadcast_to(w_lat[:, :, None], lat2.shape).reshape(-1)
        for i, f in enumerate(fields):
            vals = np.repeat(np.repeat(f[a:a + rows], k, axis=1)[:, None, :], k, axis=1).reshape(-1)
            ok = np.isfinite(vals) & (w > 0)
            sums[i] += np.bincount(pix[ok], weights=(w * vals)[ok], minlength=npix)
            wsum[i] += np.bincount(pix[ok], weights=w[ok], minlength=npix)
    out = []
    for s, ws in zip(sums, wsum):
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(ws > 0, s / ws, np.nan))
    return out, k


def make_static(source: str | os.PathLike, level: int = 6, orog_var: str | None = None,
                lsm_var: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Orography (m) and land fraction (1) on HEALPix ``level``, NEST order; plus provenance attributes."""
    lat, lon, orog, lfrac, prov = read_latlon_invariants(source, orog_var, lsm_var)
    span = (lon.max() - lon.min()) + abs(lon[1] - lon[0])
    if span < 359.0 or (lat.max() - lat.min()) < 170.0:
        raise input_error(source, None, f"the grid is not global (lon span {span:.1f}°, lat "
                                        f"{lat.min():.1f}…{lat.max():.1f}°); a static file needs every pixel")
    (o, lf), k = regrid_to_healpix(lat, lon, [orog, lfrac], level)
    missing = int(np.isnan(o).sum() + np.isnan(lf).sum())
    if missing:
        raise input_error(source, None, f"{missing} HEALPix pixels received no valid data (NaN holes in the source)")
    attrs = {**prov, "source_grid": f"regular lat-lon {lat.size}x{lon.size} "
                                    f"({abs(lat[1] - lat[0]):g}° x {abs(lon[1] - lon[0]):g}°)",
             "regridding": f"area-weighted mean (cos(lat) weights) over {k}x{k} sub-cells per lat-lon cell"}
    return {"orog": o.astype(np.float32), "lfrac": np.clip(lf, 0, 1).astype(np.float32)}, attrs


def write_healpix_crs(ds: netCDF4.Dataset, level: int) -> None:
    """The ``crs`` grid mapping, the ``cell`` index coordinate (CF-1.13) and ``cell_ids`` (xdggs)."""
    crs = ds.createVariable("crs", "i4", ())
    crs.setncatts({"grid_mapping_name": "healpix", "indexing_scheme": "nested", "refinement_level": np.int32(level),
                   "earth_radius": 6371229.0, "long_name": "HEALPix grid mapping (CF-1.13)"})
    cell = ds.createVariable("cell", "i8", ("cell",), zlib=True, shuffle=True)
    cell.setncatts({"standard_name": "healpix_index", "long_name": f"HEALPix nested index at level {level}",
                    "units": "1"})
    cell[:] = np.arange(grid.npix(level), dtype=np.int64)
    ids = ds.createVariable("cell_ids", "i8", ("cell",), zlib=True, shuffle=True)
    ids.setncatts({"grid_name": "healpix", "level": np.int32(level), "indexing_scheme": "nested"})
    ids[:] = np.arange(grid.npix(level), dtype=np.int64)


def write_static(path: str | os.PathLike, fields: dict[str, np.ndarray], level: int, attrs: dict[str, object],
                 history: str) -> None:
    """Write a static file (NEST order) to ``path`` (the caller handles atomicity)."""
    from healda_core import __version__

    (orog_mean, lfrac_mean), (orog_std, lfrac_std) = era5_stats.static_mean_std()
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.setncatts({"Conventions": "CF-1.13", "title": "HealDA static inputs (orography, land fraction)",
                      "institution": "healda", "source": f"healda {__version__} make-static", "history": history,
                      "healda_version": __version__, "healda_file": "static", "hpx_level": np.int32(level),
                      "pixel_order": "nest",
                      "comment": "physical values; the model z-scores them at load time with orog "
                                 f"{orog_mean:.4f} ± {orog_std:.4f} m and lfrac {lfrac_mean:.6f} ± {lfrac_std:.6f}",
                      **{f"healda_{k}": str(v) for k, v in attrs.items()}})
        ds.createDimension("cell", grid.npix(level))
        write_healpix_crs(ds, level)
        meta = {"orog": {"standard_name": "surface_altitude", "long_name": "orography (surface height above mean "
                                                                           "sea level)", "units": "m"},
                "lfrac": {"standard_name": "land_area_fraction", "long_name": "land fraction", "units": "1"}}
        for name in STATIC_VARS:
            v = ds.createVariable(name, "f4", ("cell",), zlib=True, complevel=4, shuffle=True)
            v.setncatts({**meta[name], "grid_mapping": "crs", "coordinates": "cell_ids"})
            v[:] = fields[name]


def _read_fields(path: Path) -> tuple[dict, dict[str, dict], dict[str, np.ndarray]]:
    """Global attributes, every variable's attributes, and the static inputs present (float64, fill values NaN)."""
    wanted = {n for names in STATIC_FILE_NAMES for n in names}
    if path.suffix == ".zarr" or path.is_dir():
        import xarray as xr

        try:
            ds = xr.open_zarr(path)
        except Exception as exc:  # noqa: BLE001 - any backend error is an input problem
            raise input_error(path, None, f"cannot open as Zarr ({type(exc).__name__}: {exc})") from None
        with ds:
            return (dict(ds.attrs), {n: dict(v.attrs) for n, v in ds.variables.items()},
                    {n: np.asarray(ds[n].values, dtype=np.float64) for n in wanted if n in ds.variables})
    with open_netcdf(path) as ds, reading_netcdf(path):  # a damaged chunk or attribute: one netCDF/HDF5 error
        arrays = {}
        for n in sorted(wanted & set(ds.variables)):
            v = ds.variables[n]
            v.set_auto_maskandscale(True)
            arrays[n] = np.ma.filled(np.ma.asarray(v[:]).astype(np.float64), np.nan)
        return ({k: ds.getncattr(k) for k in ds.ncattrs()},
                {n: {k: v.getncattr(k) for k in v.ncattrs()} for n, v in ds.variables.items()}, arrays)


def _check_cells(path: Path, var: str, a: np.ndarray, level: int, var_attrs: dict[str, dict]) -> None:
    if a.ndim != 1:
        raise input_error(path, var, f"shape {a.shape} after dropping size-1 dimensions; expected (cell,)")
    try:
        lvl = grid.level_of_npix(a.size)
    except ValueError:
        raise input_error(path, var, f"{a.size} cells is not a HEALPix pixel count") from None
    for name, attrs in var_attrs.items():
        file_level = attrs.get("refinement_level") if attrs.get("grid_mapping_name") == "healpix" else None
        if file_level is not None and int(file_level) != lvl:
            raise input_error(path, name, f"refinement_level {file_level} disagrees with {a.size} cells")
    if lvl != level:
        raise InputError(f"{path}: static file is at HEALPix level {lvl}, the model needs level_in = {level} "
                         f"(make it with `healda make-static --level {level}`)")


def load_static(path: str | os.PathLike, level: int) -> Float[np.ndarray, "2 npix"]:
    """The model's static input (2, npix) float32: z-scored orography and land fraction, PAD_XY order.

    The one reader of static inputs, for training and inference. ``path`` is a NetCDF file (or a Zarr
    store) with orography (m) and land fraction (1) on the HEALPix grid of ``level``, as ``healda make-static``
    writes it. The pixel order must be declared (:func:`~healda_core.grid.declared_order`: NEST, RING or
    PAD_XY) and is converted to PAD_XY; values are z-scored with the ERA5 statistics
    (:func:`~healda_core.era5_stats.static_mean_std`). Missing values are refused, never filled.

    Raises:
        InputError: unreadable file, missing variable, wrong level, undeclared or inconsistent pixel order,
            NaN or infinite values (each naming the file and the variable).
    """
    p = Path(path)
    global_attrs, var_attrs, arrays = _read_fields(p)
    found = []
    for names in STATIC_FILE_NAMES:
        var = next((n for n in names if n in arrays), None)
        if var is None:
            raise input_error(p, names[0], "missing (make the file with `healda make-static`)")
        found.append(var)
    try:
        order = grid.declared_order(global_attrs, var_attrs)
    except ValueError as exc:
        raise input_error(p, None, str(exc)) from None
    rows = []
    for var in found:
        a = np.squeeze(arrays[var])
        _check_cells(p, var, a, level, var_attrs)
        bad = int((~np.isfinite(a)).sum())
        if bad:
            raise input_error(p, var, f"{bad} of {a.size} values are NaN, infinite or fill values; static inputs "
                                      "must be complete (nothing is filled in)")
        rows.append(a)
    mean, std = era5_stats.static_mean_std()
    z = (np.stack(rows) - mean[:, None]) / std[:, None]
    return grid.reorder(z, level, order, "padxy").astype(np.float32)
