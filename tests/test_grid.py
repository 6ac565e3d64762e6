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
    for order in grid.ORDERS:
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
