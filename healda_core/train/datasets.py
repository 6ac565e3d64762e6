"""Training datasets: (packed observations of an analysis time, target fields at its frames) pairs.

* Output channels and ERA5 statistics (DATA §4): :func:`channel_names`, :func:`era5_stats`.
* Targets: :class:`TargetStore` reads ERA5-like NetCDF (or Zarr) files on the HEALPix grid of ``level_in``.
  Pixel order must be declared (:func:`healda_core.grid.declared_order`): a CF ``grid_mapping_name = "healpix"``
  variable with ``indexing_scheme`` (``nested`` or ``ring``), a ``cell``/``cell_ids`` coordinate with
  ``indexing_scheme``, or a global ``pixel_order`` attribute (``nest``, ``ring`` or
  ``earth2grid_healpix_pad_xy``). Channels are read as a variable named like the channel (``u500``, ``t2m``),
  a 3-D variable with a ``level`` coordinate (``u`` or ``U``), a stats-CSV name (``tas``, ``pres_msl``), or a
  variable with a ``channel`` dimension of names.
  sst NaN (land) is filled with 290 K and sic NaN with 0, as in training of the reference; other NaN
  become the channel mean.
* Static inputs: :func:`healda_core.static.load_static` (the same reader as inference).
* :class:`PackedTargetDataset` pairs packed-observation files with targets; :class:`SyntheticDataset`
  generates a small learnable problem for tests and demos.
"""

from __future__ import annotations

import glob
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from healda_core import era5_stats as _stats
from healda_core import grid
from healda_core.errors import InputError, UsageError, input_error
from healda_core.obs.frames import calendar
from healda_core.train.data import slice_sample

LEVELS = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)
_3D = {"u": "U", "v": "V", "t": "T", "z": "Z", "q": "Q"}
_2D = {"tcwv": "tcwv", "t2m": "tas", "u10m": "uas", "v10m": "vas", "u100m": "100u", "v100m": "100v",
       "msl": "pres_msl", "sst": "sst", "sic": "sic"}
_NAN_FILL = {"sst": 290.0, "sic": 0.0}


def channel_names(spec: str | list[str]) -> list[str]:
    """Earth2Studio channel names: ``"era5_13_levels_74"`` (u1000…u50, v…, t…, z…, q…, tcwv, t2m, u10m,
    v10m, u100m, v100m, msl, sst, sic) or an explicit list (a declared subset)."""
    if isinstance(spec, str):
        if spec != "era5_13_levels_74":
            raise UsageError(f"unknown channel set {spec!r}; use 'era5_13_levels_74' or a list of names")
        return [f"{v}{lev}" for v in _3D for lev in LEVELS] + list(_2D)
    names = list(spec)
    for n in names:
        _stats_key(n)
    return names


def _stats_key(name: str) -> tuple[str, int]:
    if name in _2D:
        return _2D[name], -1
    if name[:1] in _3D and name[1:].isdigit() and int(name[1:]) in LEVELS:
        return _3D[name[0]], int(name[1:])
    raise UsageError(f"unknown channel {name!r}: expected u/v/t/z/q + one of {LEVELS} or one of {', '.join(_2D)}")


def era5_stats(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float64 arrays for the channel ``names``, from the shipped ERA5 statistics."""
    return _stats.mean_std([_stats_key(n) for n in names])


def _pixel_order(ds, path: object) -> str:
    try:
        return grid.declared_order(ds.attrs, {n: v.attrs for n, v in ds.variables.items()})
    except ValueError as exc:
        raise input_error(path, None, str(exc)) from None


def _open(path: str):
    import xarray as xr

    try:
        if path.endswith(".zarr") or os.path.isdir(path):
            return xr.open_zarr(path)
        return xr.open_dataset(path)
    except Exception as exc:  # noqa: BLE001 - any backend error is an input problem
        raise input_error(path, None, f"cannot open ({type(exc).__name__}: {exc})") from None


def _channel_array(ds, name: str, path: str):
    stats_var, level = _stats_key(name)
    if name in ds.data_vars:
        return ds[name]
    for var in ((name[0], stats_var) if level > 0 else (stats_var,)):
        if var in ds.data_vars:
            da = ds[var]
            if level > 0:
                lev = next((d for d in da.dims if d in ("level", "plev", "pressure", "isobaricInhPa")), None)
                if lev is None:
                    continue
                return da.sel({lev: level})
            return da
    for var in ds.data_vars.values():
        if "channel" in var.dims and "channel" in ds.coords and name in list(map(str, ds["channel"].values)):
            return var.sel(channel=name)
    raise input_error(path, name, "missing (no variable for this channel)")


CACHE_BYTES = 256 * 2**20  # per process


class TargetStore:
    """Normalised target fields (C, X) at given times, PAD_XY order, from one or more files.

    Files are opened lazily in each process (safe with DataLoader workers).
    """

    def __init__(self, paths: list[str], channels: list[str], level: int):
        self.paths, self.channels, self.level = expand(paths), channels, level
        if not self.paths:
            raise UsageError("data.targets: no target files")
        self.mean, self.std = era5_stats(channels)
        self._index: dict[int, tuple[int, int]] = {}
        for fi, p in enumerate(self.paths):
            ds = _open(p)
            if "time" not in ds.coords:
                raise input_error(p, "time", "missing coordinate")
            secs = ds["time"].values.astype("datetime64[s]").astype(np.int64)
            for ti, s in enumerate(secs):
                self._index.setdefault(int(s), (fi, ti))
            ds.close()
        self._pid, self._open_ds = None, {}
        per_time = 4 * len(channels) * grid.npix(level)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_max = max(8, CACHE_BYTES // per_time)  # a training window reuses each time T times

    def times(self) -> np.ndarray:
        return np.array(sorted(self._index), dtype=np.int64)

    def _ds(self, fi: int):
        if self._pid != os.getpid():
            self._pid, self._open_ds = os.getpid(), {}
        if fi not in self._open_ds:
            ds = _open(self.paths[fi])
            order = _pixel_order(ds, self.paths[fi])
            self._open_ds[fi] = (ds, order)
        return self._open_ds[fi]

    def read(self, time_s: int) -> np.ndarray:
        """(C, X) float32 normalised fields at ``time_s`` (seconds since 1970), PAD_XY order (LRU-cached)."""
        key = int(time_s)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        out = self._read(key)
        self._cache[key] = out
        if len(self._cache) > self._cache_max:
            self._cache.popitem(last=False)
        return out

    def _read(self, time_s: int) -> np.ndarray:
        if int(time_s) not in self._index:
            raise InputError(f"targets: no field at {np.datetime64(int(time_s), 's')} in {len(self.paths)} file(s)")
        fi, ti = self._index[int(time_s)]
        ds, order = self._ds(fi)
        out = np.empty((len(self.channels), grid.npix(self.level)), dtype=np.float32)
        for c, name in enumerate(self.channels):
            a = np.asarray(_channel_array(ds, name, self.paths[fi]).isel(time=ti).values, dtype=np.float64)
            if a.shape != (out.shape[1],):
                raise input_error(self.paths[fi], name, f"shape {a.shape}, expected ({out.shape[1]},) cells at "
                                  f"HEALPix level {self.level}")
            a = np.where(np.isnan(a), _NAN_FILL.get(name, self.mean[c]), a)
            out[c] = (a - self.mean[c]) / self.std[c]
        return grid.reorder(out, self.level, order, "padxy")


def expand(patterns: list[str]) -> list[str]:
    """Paths and sorted glob matches, in order, without duplicates."""
    out: list[str] = []
    for p in patterns:
        hits = sorted(glob.glob(p)) if any(ch in p for ch in "*?[") else [p]
        out.extend(h for h in hits if h not in out)
    return out


class PackedTargetDataset(torch.utils.data.Dataset):
    """One sample per analysis time in the packed-observation files (``healda pack-obs`` output).

    Args:
        obs_files: packed files or globs. targets: a :class:`TargetStore`. frames: this rank's frame range.
        level_model, time_length: the model's (checked against each file).
    """

    def __init__(self, obs_files: list[str], targets: TargetStore, level_model: int, time_length: int,
                 frames: tuple[int, int] | None = None):
        import netCDF4

        self.files, self.targets = expand(obs_files), targets
        self.frames = frames or (0, time_length)
        self.items: list[tuple[int, int]] = []
        for fi, p in enumerate(self.files):
            if not Path(p).exists():
                raise input_error(p, None, "packed observation file not found")
            with netCDF4.Dataset(p) as ds:
                if int(ds.hpx_level) != level_model or int(ds.n_frame) != time_length:
                    raise input_error(p, None, f"level {int(ds.hpx_level)} / {int(ds.n_frame)} frames, the model needs "
                                      f"level_model {level_model} / time_length {time_length}")
                self.items.extend((fi, i) for i in range(ds.dimensions["analysis"].size))
        if not self.items:
            raise UsageError("no analysis times in the packed observation files")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        from healda_core.obs.packed import read_packed

        fi, ai = self.items[index]
        p = read_packed(self.files[fi], [ai])
        ft = p.frame_times()[0]
        sod, doy = calendar(ft)
        frame_of_obs = np.repeat(np.arange(p.n_frames), p.counts.reshape(p.n_frames, -1).sum(axis=1))
        o = p.obs
        obs = {"value": torch.from_numpy(o["value_norm"]),
               "obs_type": torch.from_numpy(o["obs_type"].astype(np.int64)),
               "channel": torch.from_numpy(o["global_channel"].astype(np.int64)),
               "platform": torch.from_numpy(o["global_platform"].astype(np.int64)),
               "target_time_s": torch.from_numpy(ft[frame_of_obs])}
        obs.update({k: torch.from_numpy(o[k]) for k in ("time", "lon", "lat", "height", "pressure_hpa",
                                                        "scan_angle", "sat_zenith", "solar_zenith")})
        f0, f1 = self.frames
        sample = {"index": index, "counts": p.counts.reshape(p.n_frames, -1), "obs": obs,
                  "second_of_day": sod.astype(np.float32), "day_of_year": doy.astype(np.float32),
                  "target": np.zeros((len(self.targets.channels), p.n_frames, 0), np.float32)}
        sample = slice_sample(sample, f0, f1)
        sample["target"] = np.stack([self.targets.read(int(t)) for t in ft[f0:f1]], axis=1)
        return sample


class SyntheticDataset(torch.utils.data.Dataset):
    """A deterministic, learnable toy problem on the model's grid (no files).

    Target channel c of sample s: ``P_c(x) + 0.3·a_{s,c}·Q_c(x)·(1 + 0.1·t)`` with fixed smooth-ish patterns
    P, Q and per-sample amplitudes a ~ N(0, 1); observations are noisy target values at random level-``level_model``
    pixels (channel id = c), so the amplitudes can be inferred from them. Datasets with the same ``seed``
    share P and Q; ``first_index`` offsets the samples (a validation set uses a disjoint range).
    """

    def __init__(self, n: int, *, out_channels: int, level_in: int, level_model: int, time_length: int,
                 meta_dim: int, obs_per_sample: int = 256, seed: int = 0, frames: tuple[int, int] | None = None,
                 first_index: int = 0):
        self.n, self.c, self.t, self.meta, self.first = n, out_channels, time_length, meta_dim, first_index
        self.x, self.xm, self.k = grid.npix(level_in), grid.npix(level_model), obs_per_sample
        self.seed, self.frames = seed, frames or (0, time_length)
        g = torch.Generator().manual_seed(1_000_003 + seed)
        lon, lat = (torch.from_numpy(a).float() for a in grid.pixel_centers(level_in, "padxy"))
        lon, lat = torch.deg2rad(lon), torch.deg2rad(lat)
        phase = torch.rand(out_channels, 2, generator=g) * 6.28
        self.p = torch.sin(lon + phase[:, :1]) * torch.cos(lat) + 0.5 * torch.sin(2 * lat + phase[:, 1:])
        self.q = torch.cos(2 * lon + phase[:, 1:]) * torch.cos(lat)
        self.parent = torch.as_tensor(grid.parent(np.arange(self.x), level_in, level_model, "padxy"))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.first + index)
        amp = torch.randn(self.c, generator=g)
        tt = torch.arange(self.t, dtype=torch.float32)
        target = self.p[:, None, :] + 0.3 * amp[:, None, None] * self.q[:, None, :] * (1 + 0.1 * tt)[None, :, None]
        ti = torch.randint(0, self.t, (self.k,), generator=g)
        fine = torch.randint(0, self.x, (self.k,), generator=g)
        ch = torch.randint(0, self.c, (self.k,), generator=g)
        value = target[ch, ti, fine] + 0.05 * torch.randn(self.k, generator=g)
        order = torch.sort(ti * self.xm + self.parent[fine], stable=True).indices
        counts = torch.bincount((ti * self.xm + self.parent[fine]), minlength=self.t * self.xm).view(self.t, self.xm)
        obs = {"value": value[order], "float_metadata": torch.randn(self.k, self.meta, generator=g)[order] * 0.1,
               "obs_type": torch.zeros(self.k, dtype=torch.int64), "channel": ch[order],
               "platform": torch.zeros(self.k, dtype=torch.int64)}
        hours = 6.0 * (index % 4) + 6.0 * tt
        sample = {"index": index, "target": target, "counts": counts, "obs": obs,
                  "second_of_day": (hours % 24) * 3600.0, "day_of_year": (index * 0.25 + tt * 0.25) % 365}
        return slice_sample(sample, *self.frames)
