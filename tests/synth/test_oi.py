"""The optimal-interpolation baseline."""

from __future__ import annotations

import numpy as np

from healda_core import grid
from healda_core.synth.oi import oi_update


def test_single_observation_gain_and_spread():
    level = 4
    bg = np.zeros(grid.npix(level))
    lon, lat = grid.pixel_centers(level, "nest")
    i = 1000
    out = oi_update(bg, 2.0, np.array([lon[i]]), np.array([lat[i]]), np.array([1.0]), np.array([1.0]), level, 800.0)
    assert np.isclose(out[i], 4.0 / (4.0 + 1.0))  # gain σb² / (σb² + σo²) at the observation
    far = grid.ang2pix(np.array([lon[i] + 180.0]), np.array([-lat[i]]), level, "nest")[0]
    assert abs(out[far]) < 1e-6 and out.max() == out[i]


def test_dense_perfect_observations_recover_a_smooth_field():
    level = 4
    lon, lat = grid.pixel_centers(level, "nest")
    truth = np.sin(np.radians(lat)) * 10 + np.cos(np.radians(lon)) * 5
    idx = np.arange(0, truth.size, 7)
    out = oi_update(np.zeros_like(truth), 8.0, lon[idx], lat[idx], truth[idx], np.full(idx.size, 0.1), level, 800.0)
    assert np.sqrt(np.mean((out - truth) ** 2)) < 0.1 * np.sqrt(np.mean(truth**2))
    assert np.allclose(oi_update(truth, 1.0, lon[:0], lat[:0], truth[:0], truth[:0], level), truth)
