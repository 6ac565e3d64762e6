"""End to end: synthetic raw obs → pack-obs → init-ckpt (tiny) → make-static → assimilate → CF analysis."""

from __future__ import annotations

import json
from pathlib import Path

import healpy
import numpy as np
import pytest
import torch
import xarray as xr
from typer.testing import CliRunner

from healda_cli.main import app
from healda_core import grid
from healda_core.analysis_io import ATMOS_VARS, LEVELS_HPA, SURFACE_VARS, channel_names, era5_stats
from tests.cli.synthetic import write_latlon_invariants, write_synthetic_raw
from tests.conftest import shared_path

runner = CliRunner()
TIMES = ("2024-01-02T00:00Z", "2024-01-02T06:00Z")


def _cli(*args: object):
    res = runner.invoke(app, [str(a) for a in args])
    return res


def _ok(*args: object):
    res = _cli(*args)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("e2e")
    raw = write_synthetic_raw(d / "raw.nc", analysis="2024-01-02T06:00", hours=54)
    _ok("pack-obs", raw, "--time", TIMES[0], "--time", TIMES[1], "--level", 1, "-o", d / "obs.nc")
    _ok("make-static", write_latlon_invariants(d / "inv.nc"), "--level", 2, "-o", d / "static.nc")
    _ok("init-ckpt", "--preset", "healda-tiny", "-o", d / "tiny.safetensors")
    return {"dir": d, "raw": raw, "packed": d / "obs.nc", "static": d / "static.nc", "ckpt": d / "tiny.safetensors"}


def _assimilate(work: dict, out: Path, *extra: object):
    return _cli("assimilate", work["packed"], "--ckpt", work["ckpt"], "--static", work["static"], "-o", out, *extra)


def test_analysis_file_is_cf_healpix_nest(work, monkeypatch):
    out = work["dir"] / "an.nc"
    args = ["assimilate", str(work["packed"]), "--ckpt", str(work["ckpt"]), "--static", str(work["static"]), "-o",
            str(out), "--batch-size", "2", "--json"]
    monkeypatch.setattr("sys.argv", ["/usr/bin/healda", *args])  # what `history` records
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["outputs"] == [str(out)] and info["analyses"] == 2 and info["frames"] == 1 and info["n_obs"] > 0
    ds = xr.open_dataset(out)
    assert list(ds.time.values.astype("datetime64[h]").astype(str)) == ["2024-01-02T00", "2024-01-02T06"]
    assert ds.sizes == {"time": 2, "level": 13, "cell": 192}
    assert list(ds.level.values) == list(LEVELS_HPA) and ds.level.units == "hPa"
    for v in ATMOS_VARS:
        assert ds[v.name].dims == ("time", "level", "cell")
    for v in SURFACE_VARS:
        assert ds[v.name].dims == ("time", "cell")
    for name, var in ds.data_vars.items():
        if name == "crs":
            continue
        assert var.attrs.get("units"), name
        assert var.attrs.get("standard_name") and var.attrs.get("grid_mapping") == "crs", name
        assert np.isfinite(var.values).all(), name
    for name in ("time", "level", "cell"):
        assert ds[name].attrs.get("units") or ds[name].encoding.get("units"), name
    assert ds.t2m.units == "K" and ds.z.standard_name == "geopotential" and ds.msl.units == "Pa"
    assert ds.crs.attrs["grid_mapping_name"] == "healpix" and ds.crs.attrs["indexing_scheme"] == "nested"
    assert int(ds.crs.attrs["refinement_level"]) == 2
    assert ds.cell.attrs["standard_name"] == "healpix_index" and (ds.cell.values == np.arange(192)).all()
    assert {k: str(v) for k, v in ds.cell_ids.attrs.items()} == {"grid_name": "healpix", "level": "2",
                                                                   "indexing_scheme": "nested"}
    assert ds.attrs["Conventions"] == "CF-1.13" and "Z: healda assimilate " in ds.attrs["history"]
    assert "sha256=" in ds.attrs["source"] and len(ds.attrs["healda_checkpoint_weights_sha256"]) == 64
    assert json.loads(ds.attrs["healda_packed_files"]) == ["obs.nc"]
    assert ds.encoding.get("unlimited_dims") == {"time"}
    assert ds.t.encoding["zlib"] and ds.t.encoding["shuffle"]


def test_verbose_says_what_ran(work):
    out = work["dir"] / "verbose.nc"
    res = runner.invoke(app, ["-v", "assimilate", str(work["packed"]), "--ckpt", str(work["ckpt"]), "--static",
                              str(work["static"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "spatial attention: PyTorch SDPA; compilation: none" in res.stderr
    assert res.stdout.strip() == str(out)  # stdout carries only the path


def test_frames_asked_for(work):
    out = work["dir"] / "all.nc"
    _ok("assimilate", work["packed"], "--ckpt", work["ckpt"], "--static", work["static"], "-o", out, "--all-frames")
    ds = xr.open_dataset(out)
    assert ds.sizes["frame"] == 8 and ds.u.dims == ("time", "frame", "level", "cell")
    assert list(ds.frame.values) == [-42, -36, -30, -24, -18, -12, -6, 0]
    assert (ds.valid_time.values[:, -1] == ds.time.values).all()
    out3 = work["dir"] / "three.nc"
    _ok("assimilate", work["packed"], "--ckpt", work["ckpt"], "--static", work["static"], "-o", out3,
        "--frames", 3)
    ds3 = xr.open_dataset(out3)
    assert ds3.sizes["frame"] == 3
    # the last frame is the same analysis whatever the number of frames written
    one = xr.open_dataset(work["dir"] / "an.nc") if (work["dir"] / "an.nc").exists() else None
    np.testing.assert_allclose(ds3.t2m.values[:, -1], ds.t2m.values[:, -1], rtol=1e-6)
    if one is not None:
        np.testing.assert_allclose(one.t2m.values, ds.t2m.values[:, -1], rtol=1e-5, atol=1e-3)


def _known(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return np.sin(np.radians(lat)) + 0.5 * np.cos(np.radians(lon)) * np.cos(np.radians(lat))


def test_nest_order_of_a_known_field(work, monkeypatch):
    """A field f(lat, lon) made in the model's PAD_XY order must come out as f at healpy's NEST centres."""
    import healda_core.checkpoint as ck

    lon_p, lat_p = grid.pixel_centers(2, "padxy")
    f = torch.as_tensor(_known(lon_p, lat_p), dtype=torch.float32)
    mean, std = era5_stats()
    real_build = ck.build_model

    class Known(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.checkpoint_info = inner, inner.checkpoint_info

        def forward(self, x, t, sod, doy, obs):
            b, _, frames, _ = x.shape
            return f.expand(b, len(mean), frames, -1).clone()  # normalised value f for every channel

    monkeypatch.setattr(ck, "build_model", lambda *a, **k: Known(real_build(*a, **k)))
    out = work["dir"] / "known.nc"
    _ok("assimilate", work["packed"], "--ckpt", work["ckpt"], "--static", work["static"], "-o", out,
        "--lat-lon", "5")
    ds = xr.open_dataset(out)
    lon_n, lat_n = healpy.pix2ang(4, ds.cell.values, nest=True, lonlat=True)
    expect = _known(lon_n, lat_n)
    names = channel_names()
    for c, (var, lev) in ((names.index("T850"), ("t", 850)), (names.index("tas"), ("t2m", None))):
        got = ds[var].sel(level=lev).values if lev else ds[var].values
        np.testing.assert_allclose((got - mean[c]) / std[c], np.broadcast_to(expect, got.shape), atol=2e-4)
    ll = xr.open_dataset(work["dir"] / "known.latlon.nc")
    assert ll.sizes["lat"] == 37 and ll.sizes["lon"] == 72 and ll.lat.units == "degrees_north"
    c = names.index("tas")
    lo, la = np.meshgrid(ll.lon.values, ll.lat.values)
    err = (ll.t2m.values[0] - mean[c]) / std[c] - _known(lo, la)
    assert np.abs(err).max() < 0.35 and np.abs(err).mean() < 0.08  # bilinear from 192 pixels


def test_mismatched_conventions_refused(work):
    d = work["dir"]
    _ok("pack-obs", work["raw"], "--time", TIMES[0], "--level", 2, "-o", d / "obs_l2.nc")
    res = _cli("assimilate", d / "obs_l2.nc", "--ckpt", work["ckpt"], "--static", work["static"], "-o", d / "x.nc")
    assert res.exit_code == 3 and "HEALPix level" in res.stderr and not (d / "x.nc").exists()
    assert "pack-obs ... --level 1" in res.stderr  # says how to fix it
    _ok("pack-obs", work["raw"], "--time", TIMES[0], "--level", 1, "--frames", 4, "-o", d / "obs_t4.nc")
    res = _cli("assimilate", d / "obs_t4.nc", "--ckpt", work["ckpt"], "--static", work["static"], "-o", d / "x.nc")
    assert res.exit_code == 3 and "frames" in res.stderr and "Traceback" not in res.output
    # static file at the wrong level
    _ok("make-static", d / "inv.nc", "--level", 3, "-o", d / "static3.nc")
    res = _cli("assimilate", work["packed"], "--ckpt", work["ckpt"], "--static", d / "static3.nc", "-o", d / "x.nc")
    assert res.exit_code == 3 and "level_in = 2" in res.stderr
    # a checkpoint without the 74 ERA5 outputs
    res = _cli("assimilate", work["packed"], "--ckpt", shared_path("fixtures", "small.mdlus"), "--static",
               work["static"], "-o", d / "x.nc")
    assert res.exit_code == 3 and "74" in res.stderr
    assert not (d / "x.nc").exists() and not list(d.glob(".x.nc*"))


def test_output_exists_needs_overwrite(work):
    out = work["dir"] / "exists.nc"
    out.write_text("keep")
    res = _assimilate(work, out)
    assert res.exit_code == 2 and out.read_text() == "keep"


def test_inductor_tf32_hint_is_silenced(work, monkeypatch):
    """float32 matmuls stay exact on purpose: Inductor's TF32 hint is not shown; other warnings still are."""
    import warnings

    import healda_core.assimilate as core

    real = core.assimilate

    def noisy(*a, **k):
        warnings.warn("TensorFloat32 tensor cores for float32 matrix multiplication available but not enabled.", stacklevel=1)
        warnings.warn("something else", stacklevel=1)
        return real(*a, **k)

    monkeypatch.setattr(core, "assimilate", noisy)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = _assimilate(work, work["dir"] / "quiet.nc")
    assert res.exit_code == 0, res.output
    messages = [str(w.message) for w in seen]
    assert "something else" in messages
    assert not [m for m in messages if "TensorFloat32" in m]


def test_fp8_on_the_cpu_is_refused_with_exit_4(work):
    out = work["dir"] / "fp8_cpu.nc"
    res = _assimilate(work, out, "--device", "cpu", "--fp8")
    assert res.exit_code == 4, res.output
    assert "error: FP8 GEMMs (--fp8) need a CUDA GPU of compute capability >= 8.9" in res.output
    assert "Traceback" not in res.output and not out.exists()



def test_fp8_flag_reaches_the_engine(work, monkeypatch):
    """``--fp8`` → ``precision="fp8"`` → ``inference.to_fp8`` on the loaded model before its first forward; here
    the FP8 reference arithmetic stands in for the GPU (``swap_linears``), and the file records the precision."""
    from healda_core import inference
    from healda_core.model.fp8 import FP8Linear, swap_linears
    from healda_core.model.healda import HealDA

    seen, fp8_modules = [], []

    def on_cpu(model):
        seen.append(type(model))
        swap_linears(model)
        return model

    def counting(call):
        def run(self, p):
            fp8_modules.append(sum(isinstance(m, FP8Linear) for m in self.model.modules()))
            return call(self, p)
        return run

    monkeypatch.setattr(inference, "to_fp8", on_cpu)
    monkeypatch.setattr(inference.AnalysisStep, "__call__", counting(inference.AnalysisStep.__call__))
    assert "--fp8" in _cli("assimilate", "--help").output
    res = _assimilate(work, work["dir"] / "fp8.nc", "--device", "cpu", "--fp8")
    assert res.exit_code == 0, res.output
    assert seen == [HealDA] and fp8_modules == [12, 12]  # 2 analyses; healda-tiny: 2 blocks × 6 linears
    with xr.open_dataset(work["dir"] / "fp8.nc") as ds:
        assert "FP8 e4m3 GEMMs" in ds.attrs["healda_precision"]
    res = _assimilate(work, work["dir"] / "bf16.nc", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert seen == [HealDA] and fp8_modules == [12, 12, 0, 0]  # without the flag the engine is not asked
    with xr.open_dataset(work["dir"] / "bf16.nc") as ds:
        assert ds.attrs["healda_precision"] == "float32"
