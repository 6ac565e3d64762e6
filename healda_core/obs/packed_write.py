"""Writing the packed-observation NetCDF (schema: :mod:`healda_core.obs.packed_schema`).

The netCDF-C library creates the whole file (dimensions, attributes, coordinates, tables, and the per-obs
variables with their chunking, shuffle and deflate filters) but writes no per-obs data; HDF5 allocates chunks
only when written, so the skeleton stays small. h5py then stores each chunk's bytes as encoded by
:mod:`healda_core.obs.deflate` (the same shuffle + deflate pipeline HDF5 would apply), so the file is an
ordinary NetCDF-4 file that every netCDF/HDF5 reader decompresses. Columns can be streamed in while they are
still being gathered (:func:`write_packed_columns`), which overlaps compression with the gathers.
``engine="netcdf4"`` keeps the plain netCDF4-python writer (the reference; also used without h5py).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import netCDF4
import numpy as np

from healda_core.obs import frames, vocab
from healda_core.obs.deflate import ChunkCompressor
from healda_core.obs.packed_schema import (
    FLOAT_FILL,
    OBS_ATTRS,
    OBS_VARS,
    PackedObs,
    channel_units,
    global_attrs,
)
from healda_core.obs.stats import channel_table


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

