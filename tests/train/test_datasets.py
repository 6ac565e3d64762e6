"""Real-file path: packed observations + ERA5-like targets (NEST, declared) + static → samples and training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from healda_core import grid
from healda_core.errors import InputError
from healda_core.obs.packed_schema import OBS_VARS, PackedObs
from healda_core.obs.packed_write import write_packed
from healda_core.static import load_static
from healda_core.train.data import collate
from healda_core.train.datasets import PackedTargetDataset, TargetStore, era5_stats

T, STEP, LEVEL_IN, LEVEL_M = 4, 21600, 2, 1
A0 = int(np.datetime64("2022-01-02T00:00:00", "s").astype(np.int64))


def _packed(path, analyses, n_per=50, seed=0):
    rng = np.random.default_rng(seed)
    xm = grid.npix(LEVEL_M)
    b = len(analyses)
    flat = np.sort(rng.integers(0, b * T * xm, n_per * b))
    counts = np.bincount(flat, minlength=b * T * xm).astype(np.int64)
    n = flat.size
    obs = {k: np.zeros(n, dtype=d) for k, d in OBS_VARS.items()}
    ft = np.asarray(analyses)[:, None] - (T - 1) * STEP + np.arange(T)[None] * STEP
    bt = flat // xm
    obs["time"] = (ft.reshape(-1)[bt] * 1_000_000_000).astype(np.int64)
    obs["value_norm"] = rng.standard_normal(n).astype(np.float32)
    obs["lon"], obs["lat"] = rng.uniform(0, 360, n).astype(np.float32), rng.uniform(-80, 80, n).astype(np.float32)
    for k in ("height", "pressure_hpa"):
        obs[k][:] = np.nan
    obs["global_channel"] = rng.integers(0, 100, n).astype(np.uint16)
    obs["pix"] = (flat % xm).astype(np.int32)
    p = PackedObs(np.asarray(analyses, np.int64), T, STEP, LEVEL_M, counts, obs, np.zeros((12, b, T), np.int64))
    write_packed(path, p, {})
    return p


def _targets(path, times, names=("t850", "z500", "msl"), order="nested"):
    x = grid.npix(LEVEL_IN)
    mean, std = era5_stats(list(names))
    rng = np.random.default_rng(1)
    data = {n: (("time", "cell"), mean[i] + std[i] * rng.standard_normal((len(times), x))) for i, n in enumerate(names)}
    ds = xr.Dataset(data, coords={"time": np.asarray(times, dtype="datetime64[s]").astype("datetime64[ns]"),
                                  "cell": np.arange(x)})
    ds["crs"] = xr.DataArray(0, attrs={"grid_mapping_name": "healpix", "indexing_scheme": order,
                                       "refinement_level": LEVEL_IN})
    ds.to_netcdf(path)
    return ds


def test_packed_target_dataset_sample_and_frame_slices(tmp_path):
    analyses = [A0, A0 + STEP]
    p = _packed(tmp_path / "obs.nc", analyses)
    frames = sorted({int(t) for t in p.frame_times().reshape(-1)})
    ds_t = _targets(tmp_path / "era5.nc", frames)
    store = TargetStore([str(tmp_path / "era5.nc")], ["t850", "z500", "msl"], LEVEL_IN)
    full = PackedTargetDataset([str(tmp_path / "obs*.nc")], store, LEVEL_M, T)
    assert len(full) == 2
    s = full[1]
    assert s["target"].shape == (3, T, grid.npix(LEVEL_IN))
    # targets are normalised and reordered NEST → PAD_XY
    mean, std = era5_stats(["z500"])
    nest = ds_t["z500"].sel(time=np.datetime64(frames[-1], "s")).values
    want = (grid.reorder(nest[None], LEVEL_IN, "nest", "padxy")[0] - mean[0]) / std[0]
    np.testing.assert_allclose(s["target"][1, -1], want, rtol=1e-5, atol=1e-5)
    assert s["second_of_day"][-1] == 21600.0 and int(s["counts"].sum()) == s["obs"]["value"].shape[0]
    batch = collate([full[0], full[1]])
    ctx = batch.context()
    assert ctx.float_metadata.shape == (ctx.num_obs, 50) and ctx.num_pixels == 2 * T * grid.npix(LEVEL_M)
    half = PackedTargetDataset([str(tmp_path / "obs.nc")], store, LEVEL_M, T, frames=(2, 4))[1]
    assert np.array_equal(half["target"], s["target"][:, 2:]) and np.array_equal(half["counts"], s["counts"][2:])
    torch.testing.assert_close(half["obs"]["value"], s["obs"]["value"][-half["obs"]["value"].shape[0]:])


def test_undeclared_pixel_order_and_missing_times_are_refused(tmp_path):
    x = grid.npix(LEVEL_IN)
    xr.Dataset({"t850": (("time", "cell"), np.zeros((1, x)))},
               coords={"time": np.array([A0], dtype="datetime64[s]").astype("datetime64[ns]")}).to_netcdf(tmp_path / "a.nc")
    store = TargetStore([str(tmp_path / "a.nc")], ["t850"], LEVEL_IN)
    with pytest.raises(InputError, match="pixel order"):
        store.read(A0)
    with pytest.raises(InputError, match="no field"):
        store.read(A0 + 1)


def test_static_file_is_normalised_and_reordered(tmp_path):
    x = grid.npix(LEVEL_IN)
    orog = np.linspace(0, 3000, x)
    xr.Dataset({"orog": ("cell", orog), "lfrac": ("cell", np.ones(x))},
               attrs={"pixel_order": "earth2grid_healpix_pad_xy"}).to_netcdf(tmp_path / "static.nc")
    st = load_static(str(tmp_path / "static.nc"), LEVEL_IN)
    assert st.shape == (2, x)
    assert abs(float(st[0, 0]) - (0 - 232.5601) / 627.3885) < 1e-4 and abs(float(st[1, 0]) - (1 - 0.341048) / 0.46955) < 1e-4


def test_trainer_runs_on_files(tmp_path):
    from healda_core.train import Trainer, load_config

    p = _packed(tmp_path / "obs.nc", [A0, A0 + STEP, A0 + 2 * STEP])
    _targets(tmp_path / "era5.nc", sorted({int(t) for t in p.frame_times().reshape(-1)}))
    cfg = load_config(None, [
        "model.preset='healda-tiny'", "model.hidden_size=32", "model.out_channels=3", f"model.time_length={T}",
        "model.obs_meta_dim=50", f"data.train_obs=['{tmp_path / 'obs.nc'}']", f"data.val_obs=['{tmp_path / 'obs.nc'}']",
        f"data.targets=['{tmp_path / 'era5.nc'}']", "data.channels=['t850', 'z500', 'msl']", "data.num_workers=0",
        "train.val_every=2", "train.ckpt_every=2"])
    summary = Trainer(cfg, tmp_path / "run").fit(max_steps=2)
    assert summary["step"] == 2 and set(summary["val"]["rmse"]) == {"t850", "z500", "msl"}
    assert 0 < summary["val"]["rmse"]["z500"] < 50 * 2730  # physical units (m² s⁻²)


def _trainer_cfg(tmp_path, static):
    from healda_core.train import load_config

    p = _packed(tmp_path / "obs.nc", [A0, A0 + STEP])
    _targets(tmp_path / "era5.nc", sorted({int(t) for t in p.frame_times().reshape(-1)}))
    return load_config(None, [
        "model.preset='healda-tiny'", "model.hidden_size=32", "model.out_channels=3", f"model.time_length={T}",
        "model.obs_meta_dim=50", f"data.train_obs=['{tmp_path / 'obs.nc'}']", f"data.targets=['{tmp_path / 'era5.nc'}']",
        "data.channels=['t850', 'z500', 'msl']", "data.num_workers=0", f"data.static='{static}'"])


def test_trainer_reads_static_like_inference(tmp_path):
    """Training takes its static inputs from ``healda_core.static.load_static``: RING accepted, NaN refused."""
    from healda_core.train import Trainer

    x = grid.npix(LEVEL_IN)
    orog_nest, lfrac_nest = np.linspace(0, 3000, x), np.linspace(0, 1, x)
    ring = xr.Dataset({"orog": ("cell", grid.reorder(orog_nest, LEVEL_IN, "nest", "ring")),
                       "lfrac": ("cell", grid.reorder(lfrac_nest, LEVEL_IN, "nest", "ring"))},
                      attrs={"pixel_order": "ring"})
    ring.to_netcdf(tmp_path / "ring.nc")
    trainer = Trainer(_trainer_cfg(tmp_path, tmp_path / "ring.nc"), tmp_path / "run")
    mean = np.array([232.56013904090733, 0.341048085753957])  # the CSV's orog and lfrac rows
    std = np.array([627.3885284872, 0.4695501683565522])
    want = grid.reorder((np.stack([orog_nest, lfrac_nest]) - mean[:, None]) / std[:, None], LEVEL_IN, "nest", "padxy")
    np.testing.assert_allclose(trainer.static.numpy(), want.astype(np.float32), rtol=0, atol=0)
    ring["lfrac"][3] = np.nan
    ring.to_netcdf(tmp_path / "nan.nc")
    with pytest.raises(InputError, match=r"nan\.nc.*lfrac.*NaN"):
        Trainer(_trainer_cfg(tmp_path, tmp_path / "nan.nc"), tmp_path / "second")


def test_one_stats_table_for_training_and_inference():
    import csv
    from importlib import resources

    from healda_core import analysis_io
    from healda_core import era5_stats as stats

    text = (resources.files("healda_core") / "data" / "stats" / "era5_13_levels_stats.csv").read_text()
    rows = {(r["variable"], int(float(r["level"]))): (float(r["mean"]), float(r["std"]))
            for r in csv.DictReader(text.splitlines())}
    assert stats.table() == rows
    names = [f"{v}{lev}" for v in "uvtzq" for lev in (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)]
    names += ["tcwv", "t2m", "u10m", "v10m", "u100m", "v100m", "msl", "sst", "sic"]
    train_mean, train_std = era5_stats(names)
    infer_mean, infer_std = analysis_io.era5_stats()
    assert np.array_equal(train_mean, infer_mean) and np.array_equal(train_std, infer_std)
    assert train_mean[names.index("z500")] == rows[("Z", 500)][0] and train_std[-1] == rows[("sic", -1)][1]
