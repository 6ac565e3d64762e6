"""Mollweide maps of HEALPix fields (analysis, nature run, static) and of packed observations (PNG).

HEALPix fields (NEST order, CF ``healpix`` grid mapping) are sampled on a 0.5° lat-lon image by
nearest-pixel lookup; observations are drawn as points coloured by value.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import netCDF4
import numpy as np

from healda_core import grid
from healda_core.errors import input_error
from healda_core.fileio import atomic_output, open_netcdf


def _date(ds: netCDF4.Dataset, dim: str, i: int) -> str | None:
    """ISO date of index ``i`` along ``time``/``analysis`` from its CF time coordinate, or None."""
    name = {"time": "time", "analysis": "analysis_time"}[dim]
    v = ds.variables.get(name)
    if v is None or "units" not in v.ncattrs():
        return None
    try:
        when = netCDF4.num2date(np.asarray(v[i]).item(), v.units, getattr(v, "calendar", "standard"))
    except (ValueError, TypeError, IndexError):
        return None
    return f"{when.year:04d}-{when.month:02d}-{when.day:02d} {when.hour:02d}:{when.minute:02d} UTC"


def _select(ds: netCDF4.Dataset, path: object, var: str, level: float | None, time: int | None
            ) -> tuple[np.ndarray, str, list[str]]:
    """The 1-D slice of ``var`` to plot, a title suffix and what was chosen by default."""
    if var not in ds.variables:
        names = ", ".join(v for v in ds.variables if ds.variables[v].ndim >= 1)
        raise input_error(path, var, f"not in the file (variables: {names})")
    v = ds.variables[var]
    index: list[object] = []
    title, defaults = [], []
    for dim in v.dimensions:
        if dim == "level":
            levels = np.asarray(ds.variables["level"][:], dtype=float)
            want = 500.0 if level is None else float(level)
            if want not in levels:
                raise input_error(path, "level", f"{want:g} hPa not among {levels.tolist()}")
            index.append(int(np.nonzero(levels == want)[0][0]))
            title.append(f"{want:g} hPa")
            if level is None:
                defaults.append(f"level {want:g} hPa (--level picks another)")
        elif dim in ("time", "analysis"):
            n = len(ds.dimensions[dim])
            i = (n - 1 if time is None else time)
            if not -n <= i < n:
                raise input_error(path, dim, f"index {i} out of range (size {n})")
            index.append(i)
            date = _date(ds, dim, i % n)
            title.append(date or f"{dim} {i % n}")
            if time is None and n > 1:
                defaults.append(f"the last {dim} of {n}, {date or i % n} (--time picks another)")
        elif dim == "frame":
            index.append(-1)
        else:
            index.append(slice(None))
    data = np.ma.filled(v[tuple(index)], np.nan).astype(np.float64)
    return data, ", ".join(title), defaults


def _image(values_nest: np.ndarray, level: int, res: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lon = np.arange(-180 + res / 2, 180, res)
    lat = np.arange(-90 + res / 2, 90, res)
    lon2, lat2 = np.meshgrid(lon, lat)
    pix = grid.ang2pix(lon2.ravel(), lat2.ravel(), level, "nest")
    return np.radians(lon), np.radians(lat), values_nest[pix].reshape(lat2.shape)


def _figure():
    fig = plt.figure(figsize=(9, 5), dpi=100)
    return fig, fig.add_subplot(111, projection="mollweide")


def _finish(fig, ax, art, title: str, units: str, out: str | os.PathLike, overwrite: bool) -> Path:
    ax.grid(True, alpha=0.3)
    ax.set_xticklabels([])
    fig.colorbar(art, ax=ax, orientation="horizontal", pad=0.05, fraction=0.05, label=units)
    ax.set_title(title)
    with atomic_output(out, overwrite) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(out)


def draw_healpix(values_nest: np.ndarray, out: str | os.PathLike, title: str = "", units: str = "", *,
                 cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
                 overwrite: bool = False) -> Path:
    """Mollweide PNG of a NEST-ordered HEALPix field (npix,)."""
    fig, ax = _figure()
    lon, lat, img = _image(np.asarray(values_nest, dtype=np.float64), grid.level_of_npix(values_nest.shape[-1]))
    art = ax.pcolormesh(lon, lat, img, cmap=cmap, vmin=vmin, vmax=vmax, shading="auto")
    return _finish(fig, ax, art, title, units, out, overwrite)


def draw_points(lon_deg: np.ndarray, lat_deg: np.ndarray, values: np.ndarray, out: str | os.PathLike,
                title: str = "", units: str = "", *, cmap: str = "viridis", overwrite: bool = False,
                size: float = 2.0) -> Path:
    """Mollweide PNG of points coloured by ``values``."""
    fig, ax = _figure()
    lon = np.radians(((np.asarray(lon_deg, float) + 180) % 360) - 180)
    art = ax.scatter(lon, np.radians(np.asarray(lat_deg, float)), c=values, s=size, cmap=cmap, linewidths=0)
    return _finish(fig, ax, art, title, units, out, overwrite)


def plot_map(path: str | os.PathLike, var: str, out: str | os.PathLike, *, level: float | None = None,
             time: int | None = None, overwrite: bool = False) -> tuple[Path, str, list[str]]:
    """Draw ``var`` of ``path`` on a Mollweide map and write a PNG to ``out`` (atomically).

    Returns the PNG path, the map's title (variable, level, date) and the choices made by default (level,
    time) for the caller to report.

    Args:
        path: analysis / nature / static NetCDF (HEALPix, ``cell`` dimension; NEST unless another order is
            declared) or packed observations (``obs`` dimension with ``lat``/``lon``). var: variable name. level: pressure level (hPa) for 3-D
            fields (default 500). time: index along ``time``/``analysis`` (default last).
    """
    p = Path(path)
    ds = open_netcdf(p)
    with ds:
        data, where, defaults = _select(ds, p, var, level, time)
        units = getattr(ds.variables[var], "units", "")
        title = f"{getattr(ds.variables[var], 'long_name', var)} ({var}) {where}".strip()
        if ds.variables[var].dimensions[-1] == "obs":
            lon, lat = ds.variables["lon"][:], ds.variables["lat"][:]
            return draw_points(lon, lat, data, out, title, units, overwrite=overwrite), title, defaults
        try:
            order = grid.declared_order({k: ds.getncattr(k) for k in ds.ncattrs()},
                                        {n: {k: v.getncattr(k) for k in v.ncattrs()} for n, v in ds.variables.items()},
                                        default="nest")
        except ValueError as exc:
            raise input_error(p, None, str(exc)) from None
    data = grid.reorder(np.asarray(data), grid.level_of_npix(data.shape[-1]), order, "nest")
    return draw_healpix(data, out, title, units, overwrite=overwrite), title, defaults
