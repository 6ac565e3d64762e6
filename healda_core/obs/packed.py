"""The packed-observation NetCDF (DATA §7b; documented in ``docs/formats.md``): write, read, load.

A CF contiguous ragged array: per-obs variables on dimension ``obs`` sorted by flat pixel id, the count
variable ``obs_count(analysis, frame, cell)`` with ``sample_dimension = "obs"``, and ``cu_seqlens(cell_edge)``
(its int64 prefix sum). :func:`load_batch` returns the model's :class:`ObsContext` with the 50
``features_v2`` computed on the target device.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from healda_core.errors import input_error
from healda_core.fileio import open_netcdf
from healda_core.obs.context import ObsContext, build_pixel_group_map
from healda_core.obs.features import features_v2
from healda_core.obs.packed_schema import FLOAT_FILL
from healda_core.obs.packed_write import CHUNK_OBS, write_packed, write_packed_columns
from healda_core.obs.packing import OBS_VARS, PackedObs


def _read_obs(ds: netCDF4.Dataset, start: int, stop: int) -> dict[str, np.ndarray]:
    out = {}
    for name, dtype in OBS_VARS.items():
        v = ds.variables[name]
        v.set_auto_maskandscale(False)
        a = np.asarray(v[start:stop], dtype=dtype) if stop > start else np.zeros(0, dtype)
        if np.dtype(dtype).kind == "f":
            a[a <= FLOAT_FILL * 0.5] = np.nan
        out[name] = a
    return out


def read_packed(path: str | Path, analyses: Sequence[int] | None = None) -> PackedObs:
    """Read a packed file (optionally only the analysis indices ``analyses``) back into a :class:`PackedObs`."""
    ds = open_netcdf(path)
    with ds:
        if "cu_seqlens" not in ds.variables:
            raise input_error(path, "cu_seqlens", "missing; not a healda packed observation file")
        t, level = int(ds.n_frame), int(ds.hpx_level)
        x, b_all = ds.dimensions["cell"].size, ds.dimensions["analysis"].size
        sel = list(range(b_all)) if analyses is None else [int(i) for i in analyses]
        cu = np.asarray(ds.variables["cu_seqlens"][:], dtype=np.int64)
        parts, counts = [], []
        for b in sel:
            lo, hi = b * t * x, (b + 1) * t * x
            parts.append(_read_obs(ds, int(cu[lo]), int(cu[hi])))
            counts.append(np.diff(cu[lo:hi + 1]))
        obs = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, d) for k, d in OBS_VARS.items()}
        lengths = np.asarray(ds.variables["sensor_lengths"][:], dtype=np.int64)[:, sel, :]
        analysis = np.asarray(ds.variables["analysis_time"][:], dtype=np.int64)[sel]
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
        step = int(ds.frame_step_seconds)
    counts_all = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    return PackedObs(analysis, t, step, level, counts_all, obs, lengths, attrs)


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


def packed_features(p: PackedObs, device: torch.device | str = "cpu") -> Float[Tensor, "N 50"]:
    """The 50 features_v2 of every packed observation, each relative to its own frame time."""
    counts = torch.as_tensor(p.counts, device=device)
    bucket = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts)
    ft = torch.as_tensor(p.frame_times().reshape(-1), device=device)
    tk = ft[torch.div(bucket, p.n_cell, rounding_mode="floor")]
    col = {k: torch.as_tensor(v, device=device) for k, v in p.obs.items() if k not in ("global_channel",
                                                                                         "global_platform", "obs_type")}
    return features_v2(tk, col["time"], col["lon"], col["lat"], col["height"], col["pressure_hpa"],
                       col["scan_angle"], col["sat_zenith"], col["solar_zenith"])


def to_obs_context(p: PackedObs, device: torch.device | str = "cpu", build_group_map: bool = True) -> ObsContext:
    """Build the :class:`ObsContext` directly from the stored (already sorted) arrays; no re-sort."""
    counts = torch.as_tensor(p.counts, device=device)
    cu = torch.zeros(counts.numel() + 1, dtype=torch.int32, device=device)
    cu[1:] = torch.cumsum(counts, 0).to(torch.int32)
    as_long = lambda k: torch.as_tensor(p.obs[k].astype(np.int64), device=device)
    return ObsContext(
        obs=torch.as_tensor(p.obs["value_norm"], device=device),
        float_metadata=packed_features(p, device),
        obs_type=as_long("obs_type"), channel=as_long("global_channel"), platform=as_long("global_platform"),
        cu_seqlens_k=cu, max_seqlen_k=int(p.counts.max()) if p.counts.size and p.n_obs else 0,
        group_map=build_pixel_group_map(cu) if build_group_map else None,
    )


def load_batch(path: str | Path, analyses: Sequence[int] | None = None, device: torch.device | str = "cpu",
               build_group_map: bool = True) -> PackedBatch:
    """Load analyses (indices into the file's ``analysis`` dimension; all by default) as a :class:`PackedBatch`."""
    p = read_packed(path, analyses)
    ft = p.frame_times()
    day0 = ft.astype("datetime64[s]").astype("datetime64[Y]").astype("datetime64[s]").astype(np.int64)
    return PackedBatch(
        context=to_obs_context(p, device, build_group_map),
        analysis_time=torch.as_tensor(p.analysis_s, device=device),
        frame_time=torch.as_tensor(ft, device=device),
        second_of_day=torch.as_tensor((ft % 86400).astype(np.float32), device=device),
        day_of_year=torch.as_tensor(((ft - day0) / 86400.0).astype(np.float32), device=device),
    )


def qc_options_of(path: str | Path) -> dict:
    """The QC options recorded in a packed file's ``healda_qc_options`` attribute."""
    with netCDF4.Dataset(path) as ds:
        return json.loads(getattr(ds, "healda_qc_options", "{}"))


__all__ = [
    "CHUNK_OBS",
    "PackedBatch",
    "PackedObs",
    "load_batch",
    "packed_features",
    "read_packed",
    "to_obs_context",
    "write_packed",
    "write_packed_columns",
]
