"""Physical sanity of the synthetic nature run."""

from __future__ import annotations

import healpy
import numpy as np
import pytest

from healda_core import grid
from healda_core.synth.nature import PLEVELS, R_DRY, NatureRun


@pytest.fixture(scope="module")
def run():
    return NatureRun(5, seed=3)


def test_winds_are_non_divergent(run):
    f = run.fields(0.0)
    nside, k = 32, 5  # 500 hPa
    to_ring = healpy.ring2nest(nside, np.arange(grid.npix(5)))  # ring index -> nest index
    u, v = f["u"][k][to_ring], f["v"][k][to_ring]
    # spin-1 decomposition in the (theta, phi) basis: E = gradient (divergent) part, B = curl (rotational) part
    e, b = healpy.map2alm_spin([-v, u], spin=1, lmax=40)
    assert np.sum(np.abs(e) ** 2) < 1e-4 * np.sum(np.abs(b) ** 2)


def test_geopotential_increases_upward_and_temperatures_are_physical(run):
    for t in (0.0, 86400.0):
        f = run.fields(t)
        assert np.all(np.diff(f["z"], axis=0) > 0)  # levels go 1000 -> 50 hPa
        assert 180 < f["t"].min() and f["t"].max() < 320
        assert 0 <= f["q"].min() and f["q"].max() < 0.03
        assert np.all(f["q"][-1] < 1e-3)  # dry stratosphere
        assert 5 < np.abs(f["u"][8]).max() < 120  # a 250 hPa jet of sensible strength
        assert 95_000 < np.median(f["msl"]) < 105_000
        assert 0 <= f["sic"].min() and f["sic"].max() <= 1


def test_temperature_is_hydrostatic_with_geopotential(run):
    f = run.fields(3600.0)
    lnp = np.log(PLEVELS)
    t_layer = -np.diff(f["z"], axis=0) / np.diff(lnp)[:, None] / R_DRY  # layer-mean T from the thickness
    t_mid = 0.5 * (f["t"][1:] + f["t"][:-1])
    assert np.abs(t_layer - t_mid).max() < 3.0  # differences are the trapezoid error of the 13 levels


def test_evolution_is_smooth_and_not_static(run):
    z0, z6, z12 = (run.fields(h * 3600.0)["z"][5] for h in (0, 6, 12))
    change6, change12 = np.abs(z6 - z0).mean(), np.abs(z12 - z0).mean()
    assert 0.02 * z0.std() < change6 < 0.6 * z0.std()
    assert change12 > change6  # keeps moving, continuously
    z1 = run.fields(60.0)["z"][5]
    assert np.abs(z1 - z0).max() < 0.01 * z0.std()  # one minute changes almost nothing


def test_statics_are_plausible(run):
    orog, land = run.statics["orography"], run.statics["land_fraction"]
    assert 0.15 < land.mean() < 0.5 and land.min() >= 0 and land.max() <= 1
    assert orog.min() >= 0 and orog.max() > 500 and np.all(orog[land < 0.5] == 0)
