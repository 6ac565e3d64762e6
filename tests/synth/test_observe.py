"""Synthetic observations: formats, ids, geometry and error statistics."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core.obs import vocab
from healda_core.obs.frames import parse_time
from healda_core.synth import observe, satellites
from healda_core.synth.nature import PLEVELS, NatureRun, reference_humidity, std_temperature
from healda_core.synth.run import draw_observations

T0 = parse_time("2024-01-01T00")


@pytest.fixture(scope="module")
def drawn():
    nature = NatureRun(3, seed=1)
    raw, counts = draw_observations(nature, T0, T0 + 6 * 3600, seed=1, density=0.25)
    return nature, raw, counts


def test_every_network_present_with_real_ids(drawn):
    _, raw, counts = drawn
    assert all(v > 0 for v in counts.values())
    assert len(raw) == sum(counts.values())
    sensors = {vocab.SENSORS[s].name for s in np.unique(raw.sensor)}
    assert sensors == {"conv", "amsua", "atms", "mhs"}
    sat = raw.sensor != vocab.CONV
    assert set(np.unique(raw.platform[sat])) == {vocab.platform_id(p) for p in ("metop-b", "n19", "n20")}
    assert set(np.unique(raw.obs_type[~sat])) == {120, 220, 181, 130, 230}
    assert np.all(np.isfinite(raw.pressure_hpa[~sat])) and np.all(np.isfinite(raw.height[~sat]))
    assert np.all(np.isnan(raw.scan_angle[~sat])) and np.all(np.isfinite(raw.scan_angle[sat]))
    assert 150 < raw.value[sat].min() and raw.value[sat].max() < 320


def test_radiosonde_errors_have_the_drawn_standard_deviation(drawn):
    nature, raw, _ = drawn
    sel = (raw.sensor == vocab.CONV) & (raw.obs_type == 120) & (raw.channel == vocab.CONV_CODE["t"])
    sel &= raw.time_ns == np.int64(T0) * 10**9
    f = nature.fields(0.0)
    levels = {p: i for i, p in enumerate([1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50])}
    s = observe._Sampler(nature, T0)
    t_all = s.interp(f["t"], raw.lon[sel].astype(float), raw.lat[sel].astype(float))  # (13, n)
    lev = np.array([levels[int(round(p))] for p in raw.pressure_hpa[sel]])
    truth = t_all[lev, np.arange(lev.size)]
    err = raw.value[sel] - truth
    assert sel.sum() > 300
    assert abs(err.mean()) < 0.15 and 0.65 < err.std() < 0.95  # drawn with sigma = 0.8 K


def test_swath_geometry():
    sw = satellites.swath(np.array([0.0, 600.0]), 0.0, 15)
    assert np.allclose(sw["scan"][:15], np.linspace(-48.3, 48.3, 15))
    assert np.all(np.abs(sw["zenith"]) >= np.abs(sw["scan"]))  # zenith grows beyond the scan angle off nadir
    assert np.abs(sw["zenith"]).max() < 70
    assert np.all((-90 <= sw["lat"]) & (sw["lat"] <= 90)) and np.all((0 <= sw["lon"]) & (sw["lon"] < 360))
    sza = satellites.solar_zenith(np.array([T0 + 12 * 3600.0]), np.array([0.0]), np.array([-23.0]))
    assert sza[0] < 5  # local noon on the Tropic of Capricorn in early January: sun near the zenith


def test_water_vapour_channel_is_an_emission_weighted_temperature():
    n = 4
    t_iso = np.full((13, n), 250.0)
    q = reference_humidity()[:, None] * np.linspace(0.5, 1.5, n)[None, :]
    kappa = satellites.absorption(550.0)
    # isothermal atmosphere over a surface of the same temperature: the weights and 𝒯_surface sum to 1
    assert np.allclose(satellites.humidity_bt(t_iso, q, np.full(n, 250.0), kappa), 250.0, atol=1e-9)
    # temperature falling with height: a moister column emits from higher, colder air (monotone in q)
    t = std_temperature(PLEVELS)[:, None].repeat(n, 1)
    bt = satellites.humidity_bt(t, q, t[0] + 1.5, kappa)
    assert np.all(np.diff(bt) < 0) and 2.0 < bt[0] - bt[-1] < 15.0
    # the peak: a warm anomaly confined to the 1/e level moves the channel much more than one far below
    bump = lambda p: np.where(PLEVELS == p, 5.0, 0.0)[:, None]
    ref = satellites.humidity_bt(t[:, :1], q[:, 2:3], t[0, :1] + 1.5, kappa)
    near = satellites.humidity_bt(t[:, :1] + bump(500), q[:, 2:3], t[0, :1] + 1.5, kappa) - ref
    far = satellites.humidity_bt(t[:, :1] + bump(925), q[:, 2:3], t[0, :1] + 1.5, kappa) - ref
    assert near[0] > 3 * far[0] > 0


def test_water_vapour_channels_follow_the_nature_run_humidity(drawn):
    nature, raw, _ = drawn
    wv = (raw.sensor == vocab.SENSOR_BY_NAME["mhs"].id) & (raw.channel == 4)
    wv &= raw.time_ns == np.int64(T0) * 10**9
    s = observe._Sampler(nature, T0)
    f = nature.fields(0.0)
    lon, lat = raw.lon[wv].astype(float), raw.lat[wv].astype(float)
    t, q, t2m = (s.interp(f[k], lon, lat) for k in ("t", "q", "t2m"))
    clear = lambda qq: satellites.humidity_bt(t, qq, t2m, satellites.absorption(550.0))
    assert wv.sum() > 20 and set(np.unique(raw.platform[wv])) <= {vocab.platform_id(p) for p in ("metop-b", "n19")}
    err = raw.value[wv] - clear(q)
    assert abs(err.mean()) < 0.4 and 0.7 < err.std() < 1.3  # drawn with sigma = 1 K
    assert np.sqrt(np.mean((raw.value[wv] - clear(0.7 * q)) ** 2)) > 2.0  # the channel sees the humidity
    atms_wv = (raw.sensor == vocab.SENSOR_BY_NAME["atms"].id) & np.isin(raw.channel, [18, 20, 22])
    assert set(np.unique(raw.platform[atms_wv])) == {vocab.platform_id("n20")}


def test_cli_writes_three_files_and_refuses_overwrite(tmp_path):
    runner = CliRunner()
    args = ["synth", "-o", str(tmp_path), "--days", "0.25", "--level", "2", "--start", "2024-01-01T00"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == [str(tmp_path / n) for n in ("nature.nc", "static.nc", "obs.nc")]
    res2 = runner.invoke(app, args)
    assert res2.exit_code == 2 and "-O" in res2.stderr
