"""Reading the packed-observation NetCDF (DATA §7b; documented in ``docs/formats.md``) back into a
:class:`~healda_core.obs.packed_schema.PackedObs`, and :func:`load_batch`, which returns the model's
:class:`ObsContext` with the 50 ``features_v2`` computed on the target device.

Every file is checked on reading (:mod:`healda_core.obs.packed_check`); the schema is in
:mod:`healda_core.obs.packed_schema` and the writer in :mod:`healda_core.obs.packed_write`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from healda_core.errors import input_error
from healda_core.fileio import HDF5_LOCK, open_netcdf
from healda_core.obs import frames
from healda_core.obs.context import ObsContext, to_obs_context
from healda_core.obs.deflate import decode_chunk
from healda_core.obs.packed_check import (
    check_analysis_times,
    check_index,
    check_obs_ids,
    packed_layout,
    reading,
)
from healda_core.obs.packed_schema import FLOAT_FILL, MODEL_COLUMNS, OBS_VARS, PackedObs

__all__ = ["FLOAT_FILL", "MODEL_COLUMNS", "OBS_VARS", "PackedBatch", "PackedObs", "load_batch", "packed_header",
           "qc_options_of", "read_packed"]


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
