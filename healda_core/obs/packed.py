"""The packed-observation NetCDF (DATA §7b; documented in ``docs/formats.md``): its in-memory form
:class:`PackedObs`, attributes and tables, writer, reader and :func:`load_batch`.

A CF contiguous ragged array: per-obs variables on dimension ``obs`` sorted by flat pixel id, the count
variable ``obs_count(analysis, frame, cell)`` with ``sample_dimension = "obs"``, and ``cu_seqlens(cell_edge)``
(its int64 prefix sum). :func:`load_batch` returns the model's :class:`ObsContext` with the 50
``features_v2`` computed on the target device.

Writing: the netCDF-C library creates the whole file (dimensions, attributes, coordinates, tables, and the
per-obs variables with their chunking, shuffle and deflate filters) but writes no per-obs data; HDF5
allocates chunks only when written, so the skeleton stays small. h5py then stores each chunk's bytes as
encoded by :mod:`healda_core.obs.deflate` (the same shuffle + deflate pipeline HDF5 would apply), so the
file is an ordinary NetCDF-4 file that every netCDF/HDF5 reader decompresses. Columns can be streamed in
while they are still being gathered (:func:`write_packed_columns`), which overlaps compression with the
gathers. ``engine="netcdf4"`` keeps the plain netCDF4-python writer (the reference; also used without h5py).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import netCDF4
import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from healda_core import __version__, grid
from healda_core.errors import input_error
from healda_core.fileio import HDF5_LOCK, open_netcdf
from healda_core.obs import frames, vocab
from healda_core.obs.context import ObsContext, to_obs_context
from healda_core.obs.deflate import ChunkCompressor, decode_chunk
from healda_core.obs.packed_check import (
    check_analysis_times,
    check_index,
    check_obs_ids,
    packed_layout,
    reading,
)
from healda_core.obs.stats import channel_table, stats_sha256

#: per-obs stored variables: name -> (source column of RawObs or a computed name, dtype)
OBS_VARS: dict[str, type] = {
    "value_raw": np.float32, "value_norm": np.float32, "time": np.int64, "lat": np.float32, "lon": np.float32,
    "height": np.float32, "pressure_hpa": np.float32, "scan_angle": np.float32, "sat_zenith": np.float32,
    "solar_zenith": np.float32, "global_channel": np.uint16, "global_platform": np.uint16,
    "obs_type": np.uint16, "sensor_id": np.uint8, "pix": np.int32,
}


@dataclass
class PackedObs:
    """Observations sorted by flat pixel id.

    Attributes:
        analysis_s: (B,) analysis times, s since 1970. n_frames, step_s, level: frame count, spacing (s),
        HEALPix level. counts: (B*T*X',) int64 obs per flat pixel. obs: per-obs arrays (:data:`OBS_VARS`),
        each (N,). sensor_lengths: (n_sensors, B, T) int64 obs per model sensor and frame.
    """

    analysis_s: Int[np.ndarray, " B"]
    n_frames: int
    step_s: int
    level: int
    counts: Int[np.ndarray, " P"]
    obs: dict[str, np.ndarray]
    sensor_lengths: Int[np.ndarray, "S B T"]
    attrs: dict[str, object] = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return int(self.counts.sum())

    @property
    def n_cell(self) -> int:
        return grid.npix(self.level)

    def frame_times(self) -> Int[np.ndarray, "B T"]:
        return frames.frame_times(self.analysis_s, self.n_frames, self.step_s)


#: on-disk fill of float variables (IODA's float missing value; NaN in memory, never on disk)
FLOAT_FILL = np.float32(-3.3687953e38)
#: the CF version of every file healda writes (packed observations, analyses, static fields)
CF_VERSION = "CF-1.13"
_TIME_UNITS = "nanoseconds since 1970-01-01T00:00:00Z"

OBS_ATTRS: dict[str, dict[str, str]] = {
    "value_raw": {"long_name": "observed value in physical units",
                  "comment": "units depend on the channel: channel_units[global_channel] (K, hPa, kg kg-1, m s-1, "
                             "rad, or 1 for PCA scores)"},
    "value_norm": {"long_name": "normalised value (value_raw - channel_mean) / channel_std", "units": "1"},
    "time": {"long_name": "observation time", "standard_name": "time", "units": _TIME_UNITS,
             "calendar": "proleptic_gregorian"},
    "lat": {"long_name": "latitude", "standard_name": "latitude", "units": "degrees_north"},
    "lon": {"long_name": "longitude", "standard_name": "longitude", "units": "degrees_east"},
    "height": {"long_name": "observation height (conventional only)", "units": "m"},
    "pressure_hpa": {"long_name": "observation pressure (conventional only)", "standard_name": "air_pressure",
                     "units": "hPa"},
    "scan_angle": {"long_name": "sensor scan angle (satellite only)", "units": "degree"},
    "sat_zenith": {"long_name": "satellite zenith angle, signed (satellite only)", "units": "degree"},
    "solar_zenith": {"long_name": "solar zenith angle (satellite only)", "standard_name": "solar_zenith_angle",
                     "units": "degree"},
    "global_channel": {"long_name": "global channel id (index into the channel dimension)", "units": "1"},
    "global_platform": {"long_name": "global platform id (0 for conventional)", "units": "1"},
    "obs_type": {"long_name": "GSI/PrepBUFR report type (0 for satellite)", "units": "1"},
    "sensor_id": {"long_name": "model sensor id (index into the sensor dimension)", "units": "1"},
    "pix": {"long_name": "HEALPix pixel at hpx_level, earth2grid PAD_XY order", "units": "1"},
}


def global_attrs(p, attrs: dict[str, object]) -> dict[str, object]:
    """CF global attributes plus the self-description of DATA §7b; ``attrs`` adds or overrides."""
    ft = p.frame_times()
    half = frames.iso_duration(p.step_s // 2)
    out: dict[str, object] = {
        "Conventions": CF_VERSION,
        "title": "HealDA packed observations",
        "institution": "healda",
        "source": f"healda {__version__}; model_recipe=v2-ufs-hpx64",
        "references": "HealDA: arXiv 2601.17636",
        "date_created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "healda_version": __version__,
        "healda_layout": "CF contiguous ragged array sorted by flat_index (obs_count has sample_dimension obs)",
        "hpx_level": np.int32(p.level), "hpx_nside": np.int32(1 << p.level),
        "pixel_order": "earth2grid_healpix_pad_xy",
        "pixel_order_comment": "XY(origin=N, clockwise=True): index f*n*n + y*n + x inside each base face",
        "flat_index": "(analysis*n_frame + frame)*n_cell + pix",
        "n_frame": np.int32(p.n_frames), "n_cell": np.int32(p.n_cell),
        "frame_step": frames.iso_duration(p.step_s), "frame_step_seconds": np.int64(p.step_s),
        "frame_window": f"[-{half}, +{half})", "analysis_frame": np.int32(p.n_frames - 1),
        "metadata_features": "healda_features_v2", "n_metadata_features": np.int32(50),
        "channel_vocabulary": "ufs-gsi+conv-plevel", "model_recipe": "v2-ufs-hpx64",
        "normalisation_stats_sha256": stats_sha256(),
        "time_coverage_start": frames.format_time(int(ft.min()) - p.step_s // 2) if ft.size else "",
        "time_coverage_end": frames.format_time(int(ft.max()) + p.step_s // 2) if ft.size else "",
    }
    out.update({k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v) for k, v in attrs.items()})
    return out


def channel_units(t) -> list[str]:
    """Units of every global channel: K (radiances), the conv variable's units, 1 (PCA scores, unused ids)."""
    out = []
    for sid, raw, known in zip(t.sensor, t.raw, t.known):
        name = vocab.SENSORS[sid].name if known and sid < len(vocab.SENSORS) else ""
        if name and vocab.SENSORS[sid].is_conv:
            out.append(vocab.CONV_UNITS[vocab.CONV_CHANNELS[int(raw) - 1]])
        else:
            out.append("1" if not name or name.endswith("pca") else "K")
    return out


def _string_var(ds: netCDF4.Dataset, name: str, dim: str, values: list[str], long_name: str) -> None:
    v = ds.createVariable(name, str, (dim,))
    v.long_name = long_name
    for i, s in enumerate(values):
        v[i] = s


def write_tables(ds: netCDF4.Dataset, p) -> None:
    """The channel table (dim ``channel``), sensor names (dim ``sensor``) and ``sensor_lengths``."""
    t = channel_table()
    ds.createDimension("channel", len(t.name))
    ds.createDimension("sensor", len(vocab.SENSORS))
    _string_var(ds, "channel_name", "channel", t.name, "channel name ('' = unused id)")
    _string_var(ds, "channel_units", "channel", channel_units(t), "units of the channel's values and statistics")
    per_channel = {"comment": "in the channel's units (channel_units)"}
    for name, arr, dtype, long, atts in (
        ("channel_sensor", t.sensor, "u1", "sensor id of the channel", {"units": "1"}),
        ("channel_raw_id", t.raw, "i4", "raw channel number (conv variable code 1-8 for conv)", {"units": "1"}),
        ("channel_level_hpa", t.level_hpa, "i4", "conv-plevel pressure level (0 if none)", {"units": "hPa"}),
        ("channel_mean", t.mean, "f8", "normalisation mean", per_channel),
        ("channel_std", t.std, "f8", "normalisation standard deviation", per_channel),
        ("channel_valid_min", t.valid_min, "f8", "QC minimum valid value", per_channel),
        ("channel_valid_max", t.valid_max, "f8", "QC maximum valid value", per_channel),
    ):
        v = ds.createVariable(name, dtype, ("channel",))
        v.setncatts({"long_name": long, **atts})
        v[:] = arr
    _string_var(ds, "sensor_name", "sensor", [s.name for s in vocab.SENSORS], "sensor name (index = sensor_id)")
    v = ds.createVariable("sensor_lengths", "i8", ("sensor", "analysis", "frame"))
    v.setncatts({"long_name": "observations per sensor, analysis and frame", "units": "1"})
    v[:] = p.sensor_lengths


#: observations per stored chunk of every per-obs variable
CHUNK_OBS = 1 << 20


def _time_vars(ds: netCDF4.Dataset, p: PackedObs) -> None:
    ft = p.frame_times()
    units = "seconds since 1970-01-01T00:00:00Z"
    v = ds.createVariable("analysis_time", "i8", ("analysis",))
    v.setncatts({"units": units, "calendar": "proleptic_gregorian", "standard_name": "time",
                 "long_name": "analysis time (the last frame)"})
    v[:] = p.analysis_s
    v = ds.createVariable("frame_time", "i8", ("analysis", "frame"))
    v.setncatts({"units": units, "calendar": "proleptic_gregorian", "long_name": "frame time t_k"})
    v[:] = ft
    sod, doy = frames.calendar(ft)
    v = ds.createVariable("second_of_day", "f8", ("analysis", "frame"))
    v.setncatts({"units": "s", "long_name": "second of day of the frame time (UTC)"})
    v[:] = sod
    v = ds.createVariable("day_of_year", "f8", ("analysis", "frame"))
    v.setncatts({"units": "day", "long_name": "days since 1 January 00:00 UTC of the frame's year (0-based)"})
    v[:] = doy


def _ragged_vars(ds: netCDF4.Dataset, p: PackedObs) -> None:
    b, t, x = len(p.analysis_s), p.n_frames, p.n_cell
    v = ds.createVariable("cell", "i4", ("cell",))
    v.setncatts({"long_name": f"HEALPix pixel index at level {p.level}, earth2grid PAD_XY order", "units": "1"})
    v[:] = np.arange(x, dtype=np.int32)
    v = ds.createVariable("obs_count", "i4", ("analysis", "frame", "cell"), zlib=True, complevel=1, shuffle=True,
                          chunksizes=(1, t, x))
    v.setncatts({"sample_dimension": "obs", "units": "1",
                 "long_name": "number of observations of each (analysis, frame, cell), in obs order"})
    v[:] = p.counts.reshape(b, t, x).astype(np.int32)
    v = ds.createVariable("cu_seqlens", "i8", ("cell_edge",), zlib=True, complevel=1, shuffle=True)
    v.setncatts({"units": "1", "long_name": "offsets: obs of flat pixel i are [cu_seqlens[i], cu_seqlens[i+1])",
                 "flat_index": "(analysis*n_frame + frame)*n_cell + cell"})
    cu = np.zeros(b * t * x + 1, dtype=np.int64)
    np.cumsum(p.counts, out=cu[1:])
    v[:] = cu


def _obs_vars(ds: netCDF4.Dataset, n: int, complevel: int) -> dict[str, netCDF4.Variable]:
    comp = {"zlib": complevel > 0, "complevel": max(complevel, 1), "shuffle": True} if n else {}
    if n:
        comp["chunksizes"] = (min(n, CHUNK_OBS),)
    out = {}
    for name, dtype in OBS_VARS.items():
        is_float = np.dtype(dtype).kind == "f"
        v = ds.createVariable(name, dtype, ("obs",), fill_value=FLOAT_FILL if is_float else None, **comp)
        v.set_auto_maskandscale(False)
        v.setncatts(OBS_ATTRS[name])
        out[name] = v
    return out


def _skeleton(path: str | Path, p: PackedObs, attrs: dict[str, object], complevel: int) -> netCDF4.Dataset:
    """Create the file with everything but the per-obs data; returns the open dataset."""
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    try:
        ds.setncatts(global_attrs(p, attrs))
        b, t, x = len(p.analysis_s), p.n_frames, p.n_cell
        for dim, size in (("analysis", b), ("frame", t), ("cell", x), ("cell_edge", b * t * x + 1),
                          ("obs", p.n_obs)):
            ds.createDimension(dim, size)
        _time_vars(ds, p)
        _ragged_vars(ds, p)
        write_tables(ds, p)
        _obs_vars(ds, p.n_obs, complevel)
    except BaseException:
        ds.close()
        raise
    return ds


def _fill_of(dtype: type) -> object:
    dt = np.dtype(dtype)
    return FLOAT_FILL if dt.kind == "f" else netCDF4.default_fillvals[dt.str[1:]]


def _write_netcdf4(path: str | Path, p: PackedObs, attrs: dict[str, object], complevel: int) -> None:
    with _skeleton(path, p, attrs, complevel) as ds:
        for name, dtype in OBS_VARS.items():
            v, data, is_float = ds.variables[name], p.obs[name], np.dtype(dtype).kind == "f"
            for s in range(0, p.n_obs, CHUNK_OBS):
                chunk = data[s:s + CHUNK_OBS]
                v[s:s + chunk.size] = np.where(np.isnan(chunk), FLOAT_FILL, chunk) if is_float else chunk


def write_packed_columns(path: str | Path, header: PackedObs, attrs: dict[str, object],
                         columns: Iterable[tuple[str, np.ndarray]], *, complevel: int = 1,
                         workers: int | None = None) -> None:
    """Write a packed file whose per-obs columns arrive one by one; ``header.obs`` is not used.

    ``columns`` yields every :data:`OBS_VARS` name once, with either the column (length ``header.n_obs``)
    or a ``(source, index)`` pair meaning ``source[index]`` (see
    :func:`~healda_core.obs.pack.column_sources`), which the worker threads gather chunk by chunk, so
    no full packed column is ever materialised. Each column's chunks are encoded in a thread pool as soon
    as it arrives and stored (in order, by this thread) while later columns are still being encoded.
    """
    import h5py

    n = header.n_obs
    _skeleton(path, header, attrs, complevel).close()
    seen: set[str] = set()
    with h5py.File(path, "r+") as f, ChunkCompressor(min(max(n, 1), CHUNK_OBS), workers) as cc:
        def store(block: bool) -> None:
            for name, start, data in cc.ready(block):
                f[name].id.write_direct_chunk((start,), data, 0)

        for name, col in columns:
            source, index = col if isinstance(col, tuple) else (np.asarray(col, dtype=OBS_VARS[name]), None)
            length = source.shape[0] if index is None else index.shape[0]
            if name not in OBS_VARS or name in seen or length != n or source.dtype != OBS_VARS[name]:
                raise ValueError(f"column {name!r}: unexpected, repeated, not of length {n} or not "
                                 f"{np.dtype(OBS_VARS[name])}")
            seen.add(name)
            d = f[name]
            if d.fletcher32 or d.scaleoffset is not None or d.compression not in (None, "gzip"):
                raise RuntimeError(f"{name}: unexpected HDF5 filters {d._filters}")
            level = int(d.compression_opts) if d.compression == "gzip" else 0
            cc.submit(name, source, fill=_fill_of(OBS_VARS[name]), level=level, shuffle=bool(d.shuffle),
                      nan_to_fill=np.dtype(OBS_VARS[name]).kind == "f", index=index)
            del col, source, index
            store(block=False)
        store(block=True)
    if seen != set(OBS_VARS):
        raise ValueError(f"missing columns: {sorted(set(OBS_VARS) - seen)}")


def write_packed(path: str | Path, p: PackedObs, attrs: dict[str, object], *, complevel: int = 1,
                 engine: str = "direct") -> None:
    """Write ``p`` to ``path`` (NetCDF-4, zlib ``complevel`` + shuffle; 0 disables compression).

    ``engine="direct"`` compresses the chunks in parallel and stores them with h5py; ``"netcdf4"`` is the
    plain netCDF4-python writer. Both give the same variables, values and attributes.
    """
    if engine not in ("direct", "netcdf4"):
        raise ValueError(f"engine must be 'direct' or 'netcdf4', not {engine!r}")
    try:
        import h5py  # noqa: F401
    except ImportError:  # pragma: no cover - h5py is a dependency
        engine = "netcdf4"
    if engine == "netcdf4":
        _write_netcdf4(path, p, attrs, complevel)
    else:
        write_packed_columns(path, p, attrs, ((k, p.obs[k]) for k in OBS_VARS), complevel=complevel)


#: the per-obs columns the model reads; ``value_raw``, ``sensor_id`` and ``pix`` are there for people and tools
MODEL_COLUMNS = ("value_norm", "time", "lat", "lon", "height", "pressure_hpa", "scan_angle", "sat_zenith",
                 "solar_zenith", "global_channel", "global_platform", "obs_type")


def packed_header(path: str | Path) -> dict[str, object]:
    """Global attributes of a packed file plus ``_analysis_time`` (B,) s and ``_n_obs`` (no observation is read);
    the layout is checked (:func:`~healda_core.obs.packed_check.packed_layout`)."""
    with HDF5_LOCK, open_netcdf(path) as ds, reading(path, None):
        ds.set_auto_maskandscale(False)  # fill values are handled explicitly (a damaged attribute cannot mask data)
        lay = packed_layout(ds, path, OBS_VARS)
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
        with reading(path, "analysis_time"):
            attrs["_analysis_time"] = np.asarray(ds.variables["analysis_time"][:]).astype(np.int64)
        check_analysis_times(attrs["_analysis_time"], path)
        attrs["_n_obs"] = lay.n_obs
    return attrs


def _nan_fill(a: np.ndarray) -> None:
    if a.dtype.kind == "f":
        a[a <= FLOAT_FILL * 0.5] = np.nan


def _read_netcdf4(path: str | Path, name: str, ranges: list[tuple[int, int]], out: np.ndarray) -> None:
    with HDF5_LOCK, netCDF4.Dataset(path) as ds, reading(path, name), np.errstate(invalid="ignore", over="ignore"):
        v = ds.variables[name]
        v.set_auto_maskandscale(False)
        at = 0
        for lo, hi in ranges:
            if hi > lo:
                out[at:at + hi - lo] = np.asarray(v[lo:hi])
            at += hi - lo
    _nan_fill(out)


def _direct_tasks(f, path: object, name: str, ranges: list[tuple[int, int]], out: np.ndarray) -> list | None:
    """One task per stored chunk overlapping ``ranges``: decode it and copy its part into ``out``; None when the
    variable's storage is not the shuffle + deflate chunking this reader decodes."""
    d = f[name]
    if d.chunks is None or d.fletcher32 or d.scaleoffset is not None or d.compression not in (None, "gzip"):
        return None
    clen, deflated, shuffled, dtype = d.chunks[0], d.compression == "gzip", bool(d.shuffle), d.dtype
    tasks, at = [], 0
    for lo, hi in ranges:
        for c0 in range(lo - lo % clen, hi, clen):
            a, b = max(lo, c0), min(hi, c0 + clen)
            dst = out[at + a - lo:at + b - lo]

            def task(c0=c0, a=a, b=b, dst=dst) -> None:
                with reading(path, name):
                    with HDF5_LOCK:
                        mask, stored = d.id.read_direct_chunk((c0,))
                    if mask:
                        raise ValueError(f"chunk at {c0} stored with some filters skipped")
                    chunk = decode_chunk(stored, clen, dtype, deflated, shuffled)
                    with np.errstate(invalid="ignore", over="ignore"):
                        dst[:] = chunk[a - c0:b - c0]
                _nan_fill(dst)
            tasks.append(task)
        at += hi - lo
    return tasks


def _read_columns(path: str | Path, names: Sequence[str], ranges: list[tuple[int, int]],
                  alloc: Callable[[int, np.dtype], object]) -> dict[str, object]:
    """The obs ``ranges`` of each column in ``names``, concatenated, in arrays from ``alloc(n, dtype)`` (NaN for
    the float fill). Stored chunks are fetched as they are and decoded on every core (h5py, then
    :func:`~healda_core.obs.deflate.decode_chunk`); netCDF4 reads any other storage."""
    n = sum(hi - lo for lo, hi in ranges)
    out = {k: alloc(n, np.dtype(OBS_VARS[k])) for k in names}
    views = {k: v if isinstance(v, np.ndarray) else v.numpy().view(OBS_VARS[k]) for k, v in out.items()}
    if not n:
        return out
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        h5py = None
    f = None
    try:
        with HDF5_LOCK:
            f = h5py.File(path, "r") if h5py is not None else None
            tasks = {k: _direct_tasks(f, path, k, ranges, views[k]) if f is not None else None for k in names}
        for k in names:
            if tasks[k] is None:
                _read_netcdf4(path, k, ranges, views[k])
        todo = [t for k in names for t in tasks[k] or ()]
        if todo:
            with ThreadPoolExecutor(max_workers=min(frames.n_threads(), len(todo)), thread_name_prefix="healda-read") as ex:
                for fut in [ex.submit(t) for t in todo]:
                    fut.result()
    except OSError as exc:  # h5py cannot open what netCDF4 could
        raise input_error(path, None, f"cannot be read: corrupt or truncated file ({exc})") from None
    finally:
        if f is not None:
            with HDF5_LOCK:
                f.close()
    check_obs_ids(views, path)
    return out


def read_packed(path: str | Path, analyses: Sequence[int] | None = None, columns: Sequence[str] | None = None,
                alloc: Callable[[int, np.dtype], object] | None = None) -> PackedObs:
    """Read a packed file (optionally only the analysis indices ``analyses``) back into a :class:`PackedObs`.

    ``columns``: the per-obs variables to read (default all; :data:`MODEL_COLUMNS` is what the model needs).
    ``alloc(n, dtype)``: where each column goes (default ``np.empty``); it may return a CPU tensor (e.g. pinned
    memory for copies to a GPU), which then stands in ``obs`` as it is. The layout, the ragged index and the id
    columns are checked (:mod:`healda_core.obs.packed_check`); a damaged or inconsistent file raises
    :class:`~healda_core.errors.InputError` naming file and variable.
    """
    names = list(OBS_VARS) if columns is None else list(columns)
    alloc = alloc or (lambda n, dtype: np.empty(n, dtype))
    with HDF5_LOCK, open_netcdf(path) as ds, reading(path, None):
        ds.set_auto_maskandscale(False)  # fill values are handled explicitly (a damaged attribute cannot mask data)
        lay = packed_layout(ds, path, OBS_VARS)
        t, x = lay.n_frames, lay.n_cell
        sel = list(range(lay.n_analysis)) if analyses is None else [int(i) for i in analyses]
        if any(not 0 <= b < lay.n_analysis for b in sel):
            raise input_error(path, "analysis", f"analysis index out of range 0..{lay.n_analysis - 1}")
        with reading(path, "cu_seqlens"):
            cu = np.asarray(ds.variables["cu_seqlens"][:]).astype(np.int64)
        check_index(cu, lay.n_obs, path)
        with reading(path, "sensor_lengths"):
            lengths = np.asarray(ds.variables["sensor_lengths"][:]).astype(np.int64)[:, sel, :]
        with reading(path, "analysis_time"):
            analysis = np.asarray(ds.variables["analysis_time"][:]).astype(np.int64)[sel]
        check_analysis_times(analysis, path)
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
    ranges = [(int(cu[b * t * x]), int(cu[(b + 1) * t * x])) for b in sel]
    counts = [np.diff(cu[b * t * x:(b + 1) * t * x + 1]) for b in sel]
    obs = _read_columns(path, names, ranges, alloc)
    counts_all = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    return PackedObs(analysis, t, lay.step_s, lay.level, counts_all, obs, lengths, attrs)


@dataclass
class PackedBatch:
    """What the model needs for a batch of analyses.

    Attributes:
        context: the :class:`ObsContext` (features_v2 in ``float_metadata``). analysis_time: (B,) s.
        frame_time: (B, T) s. second_of_day: (B, T) float s. day_of_year: (B, T) float days (0-based).
    """

    context: ObsContext
    analysis_time: Tensor
    frame_time: Tensor
    second_of_day: Float[Tensor, "B T"]
    day_of_year: Float[Tensor, "B T"]


def load_batch(path: str | Path, analyses: Sequence[int] | None = None, device: torch.device | str = "cpu",
               build_group_map: bool = True) -> PackedBatch:
    """Load analyses (indices into the file's ``analysis`` dimension; all by default) as a :class:`PackedBatch`."""
    p = read_packed(path, analyses)
    ft = p.frame_times()
    sod, doy = frames.calendar(ft)
    return PackedBatch(
        context=to_obs_context(p, device, build_group_map),
        analysis_time=torch.as_tensor(p.analysis_s, device=device),
        frame_time=torch.as_tensor(ft, device=device),
        second_of_day=torch.as_tensor(sod.astype(np.float32), device=device),
        day_of_year=torch.as_tensor(doy.astype(np.float32), device=device),
    )


def qc_options_of(path: str | Path) -> dict:
    """The QC options recorded in a packed file's ``healda_qc_options`` attribute."""
    with open_netcdf(path) as ds, reading(path, "healda_qc_options"):
        return json.loads(getattr(ds, "healda_qc_options", "{}"))
