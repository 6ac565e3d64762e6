"""``healda make-static`` and ``load_static``: area-weighted regridding, NEST order, CF metadata, z-scoring."""

from __future__ import annotations

import csv
from importlib import resources

import healpy
import netCDF4
import numpy as np
import xarray as xr
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core import grid
from healda_core.static import LFRAC_MEAN, LFRAC_STD, OROG_MEAN, OROG_STD, load_static
from tests.cli.synthetic import write_latlon_invariants

runner = CliRunner()


def test_make_static_area_weighted_nest(tmp_path):
    src = write_latlon_invariants(tmp_path / "inv.nc", deg=1.0)
    out = tmp_path / "static.nc"
    res = runner.invoke(app, ["make-static", str(src), "--level", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    ds = xr.open_dataset(out)
    assert ds.sizes["cell"] == grid.npix(4)
    assert ds.orog.units == "m" and ds.lfrac.units == "1" and ds.orog.standard_name == "surface_altitude"
    assert ds.crs.attrs["indexing_scheme"] == "nested" and int(ds.crs.attrs["refinement_level"]) == 4
    assert ds.cell.attrs["standard_name"] == "healpix_index"
    # land = the hemisphere sin(lon) > 0: exactly half of the sphere's area
    assert abs(float(ds.lfrac.mean()) - 0.5) < 5e-3
    # NEST order: compare with the analytic field at healpy's nested pixel centres (geopotential / g)
    lon, lat = healpy.pix2ang(16, ds.cell.values, nest=True, lonlat=True)
    expect = np.maximum(0.0, 2000.0 * np.cos(np.radians(lat)) * np.sin(np.radians(lon)))
    assert np.corrcoef(ds.orog.values, expect)[0, 1] > 0.995
    assert np.abs(ds.orog.values - expect).mean() < 25.0
    far = np.abs(np.sin(np.radians(lon))) > 0.3  # away from the land/sea edge
    assert ((ds.lfrac.values[far] > 0.99) == (np.sin(np.radians(lon[far])) > 0)).all()


def test_load_static_zscores_with_the_stats_table(tmp_path):
    src = write_latlon_invariants(tmp_path / "inv.nc", deg=2.0)
    out = tmp_path / "s.nc"
    assert runner.invoke(app, ["make-static", str(src), "--level", "2", "-o", str(out)]).exit_code == 0
    path = resources.files("healda_core") / "data" / "stats" / "era5_13_levels_stats.csv"
    rows = {r["variable"]: (float(r["mean"]), float(r["std"])) for r in csv.DictReader(path.open())}
    assert rows["orog"] == (OROG_MEAN, OROG_STD) and rows["lfrac"] == (LFRAC_MEAN, LFRAC_STD)
    z = load_static(out, 2)
    with netCDF4.Dataset(out) as ds:
        orog = ds["orog"][:].data
    assert z.shape == (2, 192) and z.dtype == np.float32
    np.testing.assert_allclose(z[0], grid.reorder((orog - OROG_MEAN) / OROG_STD, 2, "nest", "padxy"), rtol=1e-6)


def test_make_static_refuses_bad_sources(tmp_path):
    bad = tmp_path / "bad.nc"
    with netCDF4.Dataset(bad, "w") as ds:
        ds.createDimension("lat", 3)
        ds.createDimension("lon", 4)
        ds.createVariable("lat", "f4", ("lat",))[:] = [-10, 0, 10]
        ds.createVariable("lon", "f4", ("lon",))[:] = [0, 1, 2, 3]
        ds.createVariable("lsm", "f4", ("lat", "lon"))[:] = 1
    res = runner.invoke(app, ["make-static", str(bad), "-o", str(tmp_path / "o.nc")])
    assert res.exit_code == 3 and "orography" in res.stderr and not (tmp_path / "o.nc").exists()
    with netCDF4.Dataset(bad, "a") as ds:
        ds.createVariable("orog", "f4", ("lat", "lon"))[:] = 10
    res = runner.invoke(app, ["make-static", str(bad), "-o", str(tmp_path / "o.nc")])
    assert res.exit_code == 3 and "not global" in res.stderr
