"""``healda make-static`` and ``load_static``: area-weighted regridding, NEST order, CF metadata, z-scoring."""

from __future__ import annotations

import csv
from importlib import resources

import healpy
import netCDF4
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core import grid
from healda_core.static import load_static
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
    (orog_mean, orog_std), (lfrac_mean, lfrac_std) = rows["orog"], rows["lfrac"]
    z = load_static(out, 2)
    with netCDF4.Dataset(out) as ds:
        orog, lfrac = ds["orog"][:].data, ds["lfrac"][:].data
    assert z.shape == (2, 192) and z.dtype == np.float32
    np.testing.assert_allclose(z[0], grid.reorder((orog - orog_mean) / orog_std, 2, "nest", "padxy"), rtol=1e-6)
    np.testing.assert_allclose(z[1], grid.reorder((lfrac - lfrac_mean) / lfrac_std, 2, "nest", "padxy"), rtol=1e-6)


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


def _static_variant(path, orog, lfrac, order, attrs=None, var_attrs=None):
    """A static file holding ``orog``/``lfrac`` (given in ``order``) with the declarations ``attrs``."""
    with netCDF4.Dataset(path, "w") as ds:
        ds.setncatts(attrs or {})
        ds.createDimension("cell", orog.size)
        for name, a in (("orog", orog), ("lfrac", lfrac)):
            ds.createVariable(name, "f4", ("cell",))[:] = a
        for name, va in (var_attrs or {}).items():
            ds.createVariable(name, "i4").setncatts(va)
    return path


def test_load_static_one_rule_for_every_declared_order(tmp_path):
    src = write_latlon_invariants(tmp_path / "inv.nc", deg=2.0)
    nest_file = tmp_path / "s.nc"
    assert runner.invoke(app, ["make-static", str(src), "--level", "2", "-o", str(nest_file)]).exit_code == 0
    want = load_static(nest_file, 2)
    with netCDF4.Dataset(nest_file) as ds:
        orog, lfrac = ds["orog"][:].data, ds["lfrac"][:].data
    ring = [grid.reorder(a, 2, "nest", "ring") for a in (orog, lfrac)]
    padxy = [grid.reorder(a, 2, "nest", "padxy") for a in (orog, lfrac)]
    ring_cf = _static_variant(tmp_path / "ring.nc", *ring, "ring",
                              var_attrs={"crs": {"grid_mapping_name": "healpix", "indexing_scheme": "ring"}})
    ring_attr = _static_variant(tmp_path / "ring2.nc", *ring, "ring", attrs={"pixel_order": "ring"})
    pad = _static_variant(tmp_path / "pad.nc", *padxy, "padxy", attrs={"pixel_order": "earth2grid_healpix_pad_xy"})
    for f in (ring_cf, ring_attr, pad):
        assert np.array_equal(load_static(f, 2), want), f  # exact: a reorder is a gather


def test_load_static_refuses_nan_undeclared_and_conflicting_orders(tmp_path):
    from healda_core.errors import InputError

    n = grid.npix(2)
    orog, lfrac = np.linspace(0, 3000, n).astype(np.float32), np.full(n, 0.5, np.float32)
    lfrac[7] = np.nan
    nan_file = _static_variant(tmp_path / "nan.nc", orog, lfrac, "nest", attrs={"pixel_order": "nest"})
    with pytest.raises(InputError, match=r"nan\.nc.*lfrac.*1 of 192 values are NaN"):
        load_static(nan_file, 2)
    lfrac[7] = 0.5
    with pytest.raises(InputError, match=r"none\.nc.*undeclared"):
        load_static(_static_variant(tmp_path / "none.nc", orog, lfrac, "nest"), 2)
    both = _static_variant(tmp_path / "both.nc", orog, lfrac, "nest", attrs={"pixel_order": "earth2grid_healpix_pad_xy"},
                           var_attrs={"crs": {"grid_mapping_name": "healpix", "indexing_scheme": "nested"}})
    with pytest.raises(InputError, match="inconsistently"):
        load_static(both, 2)
    with pytest.raises(InputError, match="level_in = 3"):
        load_static(_static_variant(tmp_path / "ok.nc", orog, lfrac, "nest", attrs={"pixel_order": "nest"}), 3)
