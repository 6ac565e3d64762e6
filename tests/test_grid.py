"""HEALPix grid module against healpy, the DATA.md §3 bit formula and the hierarchy property."""

from __future__ import annotations

import healpy
import numpy as np
import pytest

from healda_core import grid


def _padxy_by_bits(nest: np.ndarray, level: int) -> np.ndarray:
    """DATA §3 closed form: de-interleave the NEST bits (x = even bits, y = odd bits), flip both."""
    n = 1 << level
    f, j = np.divmod(nest, n * n)
    xs = np.zeros_like(j)
    ys = np.zeros_like(j)
    for b in range(level):
        xs |= ((j >> (2 * b)) & 1) << b
        ys |= ((j >> (2 * b + 1)) & 1) << b
    return f * n * n + (n - 1 - xs) * n + (n - 1 - ys)


@pytest.mark.parametrize("level", range(7))
def test_permutations_are_inverse_bijections_and_match_bit_formula(level):
    p2n, n2p = grid.padxy_to_nest(level), grid.nest_to_padxy(level)
    assert np.array_equal(np.sort(p2n), np.arange(grid.npix(level)))
    assert np.array_equal(n2p[p2n], np.arange(grid.npix(level)))
    assert np.array_equal(n2p, _padxy_by_bits(np.arange(grid.npix(level)), level))


def test_level_nside_npix():
    assert [grid.level_to_nside(k) for k in range(4)] == [1, 2, 4, 8]
    assert grid.nside_to_level(64) == 6 and grid.npix(5) == 12288 and grid.level_of_npix(49152) == 6
    with pytest.raises(ValueError):
        grid.nside_to_level(48)
    with pytest.raises(ValueError):
        grid.level_of_npix(100)


def test_ang2pix_against_healpy_in_both_orders():
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(-180, 360, 5000), rng.uniform(-90, 90, 5000)
    for level in (0, 3, 5, 10):
        nest = healpy.ang2pix(1 << level, lon, lat, nest=True, lonlat=True)
        assert np.array_equal(grid.ang2pix(lon, lat, level, "nest"), nest)
        assert np.array_equal(grid.ang2pix(lon, lat, level, "padxy"), _padxy_by_bits(nest, level))


def test_pixel_centres_round_trip_and_north_corner():
    for order in grid.ORDERS:
        lon, lat = grid.pixel_centers(4, order)
        assert np.array_equal(grid.ang2pix(lon, lat, 4, order), np.arange(grid.npix(4)))
        assert lon.min() >= 0 and lon.max() < 360
    # PAD_XY pixel 0 of every face is its north corner: the highest-latitude pixel of the face
    s = 16
    _, lat = grid.pixel_centers(4, "padxy")
    faces = lat.reshape(12, s * s)
    assert np.all(faces[:, 0] == faces.max(axis=1))


def test_hierarchy_property_in_both_orders():
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(0, 360, 3000), rng.uniform(-90, 90, 3000)
    for order in grid.HIERARCHICAL:
        fine = grid.ang2pix(lon, lat, 8, order)
        for coarse in (0, 5, 8):
            assert np.array_equal(grid.parent(fine, 8, coarse, order), grid.ang2pix(lon, lat, coarse, order))
    with pytest.raises(ValueError):
        grid.parent(np.array([0]), 2, 3)


def test_reorder_round_trip_and_agreement_with_healpy():
    level = 3
    lon, lat = grid.pixel_centers(level, "padxy")
    field_padxy = np.sin(np.radians(lat)) + np.cos(np.radians(lon)) * 0.1
    field_nest = grid.reorder(field_padxy, level, "padxy", "nest")
    nlon, nlat = healpy.pix2ang(8, np.arange(grid.npix(level)), nest=True, lonlat=True)
    assert np.allclose(field_nest, np.sin(np.radians(nlat)) + np.cos(np.radians(nlon)) * 0.1)
    assert np.array_equal(grid.reorder(field_nest, level, "nest", "padxy"), field_padxy)


def test_ring_order_against_healpy():
    level, nside = 3, 8
    rng = np.random.default_rng(2)
    lon, lat = rng.uniform(-180, 360, 2000), rng.uniform(-90, 90, 2000)
    ring = healpy.ang2pix(nside, lon, lat, nest=False, lonlat=True)
    assert np.array_equal(grid.ang2pix(lon, lat, level, "ring"), ring)
    rlon, rlat = healpy.pix2ang(nside, np.arange(grid.npix(level)), nest=False, lonlat=True)
    glon, glat = grid.pixel_centers(level, "ring")
    assert np.array_equal(glat, rlat) and np.allclose(glon, np.mod(rlon, 360.0))
    field_nest = rng.standard_normal(grid.npix(level))
    field_ring = healpy.reorder(field_nest, n2r=True)
    assert np.array_equal(grid.reorder(field_nest, level, "nest", "ring"), field_ring)
    assert np.array_equal(grid.reorder(field_ring, level, "ring", "nest"), field_nest)
    padxy = grid.reorder(field_nest, level, "nest", "padxy")
    assert np.array_equal(grid.reorder(field_ring, level, "ring", "padxy"), padxy)
    assert np.array_equal(grid.reorder(padxy, level, "padxy", "ring"), field_ring)
    with pytest.raises(ValueError, match="hierarchical"):
        grid.parent(np.array([0]), 3, 1, "ring")


def test_parse_and_declared_order():
    for text, order in (("nested", "nest"), ("NEST", "nest"), ("ring", "ring"), (" Ring ", "ring"),
                        ("earth2grid_healpix_pad_xy", "padxy"), ("padxy", "padxy")):
        assert grid.parse_order(text) == order
    with pytest.raises(ValueError, match="not recognised"):
        grid.parse_order("xy")
    cf = {"crs": {"grid_mapping_name": "healpix", "indexing_scheme": "ring"}}
    assert grid.declared_order({}, cf) == "ring"
    assert grid.declared_order({"pixel_order": "nest"}, {"cell_ids": {"indexing_scheme": "nested"}}) == "nest"
    assert grid.declared_order({"pixel_order": "earth2grid_healpix_pad_xy"}, {"x": {"indexing_scheme": "ring"}}) \
        == "padxy"  # indexing_scheme of a variable that is neither a grid mapping nor a cell coordinate: not a declaration
    with pytest.raises(ValueError, match="undeclared"):
        grid.declared_order({"title": "x"}, {"cell": {"units": "1"}})
    assert grid.declared_order({"title": "x"}, {}, default="nest") == "nest"
    assert grid.declared_order({}, cf, default="nest") == "ring"
    with pytest.raises(ValueError, match="inconsistently"):
        grid.declared_order({"pixel_order": "earth2grid_healpix_pad_xy"}, cf)


def test_interpolation_and_vectors_match_healpy():
    level, nside = 3, 8
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(0, 360, 500), rng.uniform(-90, 90, 500)
    field = rng.standard_normal((2, grid.npix(level)))
    expect = np.stack([healpy.get_interp_val(f, lon, lat, nest=True, lonlat=True) for f in field])
    assert np.array_equal(grid.interp(field, lon, lat, "nest"), expect)
    assert np.array_equal(grid.interp(grid.reorder(field, level, "nest", "padxy"), lon, lat, "padxy"), expect)
    pix, w = grid.interp_weights(lon, lat, level, "nest")
    hp_pix, hp_w = healpy.get_interp_weights(nside, lon, lat, nest=True, lonlat=True)
    assert np.array_equal(pix, hp_pix) and np.array_equal(w, hp_w)
    ppix, pw = grid.interp_weights(lon, lat, level, "padxy")
    assert np.array_equal(ppix, grid.nest_to_padxy(level)[hp_pix]) and np.array_equal(pw, hp_w)
    vec = grid.ang2vec(lon, lat)
    assert np.array_equal(vec, healpy.ang2vec(lon, lat, lonlat=True))
    back_lon, back_lat = grid.vec2ang(vec)
    assert np.allclose(np.mod(back_lon, 360.0), lon) and np.allclose(back_lat, lat)
