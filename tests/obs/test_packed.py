"""Packed file: round trip to ObsContext equals direct prepare_obs_context; CF sanity with xarray."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import xarray as xr

from healda_core import grid
from healda_core.obs import frames
from healda_core.obs.context import features_v2, prepare_obs_context
from healda_core.obs.pack import pack_arrays, pack_obs
from healda_core.obs.packed import load_batch
from healda_core.obs.packed_write import write_packed
from healda_core.obs.qc import run_qc
from healda_core.obs.readers import write_canonical

from .conftest import T0, make_raw

TIMES = [T0, T0 + 21600]


def _direct(raw, times):
    """Reference path: QC, frames, features per membership, then the foundation's prepare_obs_context."""
    qc = run_qc(raw)
    kept = np.flatnonzero(qc.reason == 0)
    rows, bt = frames.assign_frames(raw.time_ns[kept], times, 8, 21600)
    src = kept[rows]
    pix = grid.ang2pix(raw.lon[src], raw.lat[src], 5, order="padxy")
    tk = frames.frame_times(np.array(times), 8, 21600).reshape(-1)[bt]
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a))
    feats = features_v2(t(tk), t(raw.time_ns[src]), t(raw.lon[src]), t(raw.lat[src]), t(raw.height[src]),
                        t(raw.pressure_hpa[src]), t(raw.scan_angle[src]), t(raw.sat_zenith[src]),
                        t(raw.solar_zenith[src]))
    return prepare_obs_context(
        t(qc.value_norm[src]), feats, t(raw.obs_type[src].astype(np.int64)), t(qc.global_channel[src].astype(np.int64)),
        t(raw.platform[src].astype(np.int64)), t(bt * 12288 + pix), len(times) * 8 * 12288)


@pytest.fixture
def packed_file(tmp_path):
    raw = make_raw(600)
    result = pack_arrays(copy.deepcopy(raw), TIMES)
    path = tmp_path / "obs.packed.nc"
    write_packed(path, result.packed, {"history": "2024-01-01T00:00:00Z: healda pack-obs test"})
    return path, raw, result


def test_round_trip_equals_direct_packing(packed_file):
    path, raw, result = packed_file
    ctx = load_batch(path).context
    ref = _direct(copy.deepcopy(raw), TIMES)
    assert ctx.num_obs == ref.num_obs == result.packed.n_obs > 0
    assert torch.equal(ctx.cu_seqlens_k, ref.cu_seqlens_k) and ctx.max_seqlen_k == ref.max_seqlen_k
    for name in ("obs", "obs_type", "channel", "platform"):
        assert torch.equal(getattr(ctx, name), getattr(ref, name)), name
    assert torch.equal(ctx.float_metadata, ref.float_metadata)
    assert ctx.float_metadata.shape[1] == 50
    assert torch.equal(ctx.group_map.program_ptr, ref.group_map.program_ptr)


def test_load_subset_of_analyses(packed_file):
    path, raw, _ = packed_file
    b1 = load_batch(path, analyses=[1], build_group_map=False)
    ref = _direct(copy.deepcopy(raw), [TIMES[1]])
    assert torch.equal(b1.context.cu_seqlens_k, ref.cu_seqlens_k)
    assert torch.equal(b1.context.float_metadata, ref.float_metadata)
    assert b1.frame_time[0, -1].item() == TIMES[1]
    assert b1.second_of_day[0].tolist() == [float((TIMES[1] + (k - 7) * 21600) % 86400) for k in range(8)]


def test_cf_sanity_with_xarray(packed_file):
    path, _, result = packed_file
    with xr.open_dataset(path) as ds:
        n = ds.sizes["obs"]
        assert ds.attrs["Conventions"].startswith("CF-") and "history" in ds.attrs
        assert ds.attrs["hpx_level"] == 5 and ds.attrs["pixel_order"] == "earth2grid_healpix_pad_xy"
        assert ds.attrs["flat_index"] == "(analysis*n_frame + frame)*n_cell + pix"
        assert ds.attrs["frame_window"] == "[-PT3H, +PT3H)" and ds.attrs["metadata_features"] == "healda_features_v2"
        assert ds["obs_count"].attrs["sample_dimension"] == "obs"
        assert int(ds["obs_count"].sum()) == n == result.packed.n_obs
        assert int(ds["cu_seqlens"][-1]) == n and ds.sizes["cell_edge"] == 2 * 8 * 12288 + 1
        assert ds.sizes == {**ds.sizes, "analysis": 2, "frame": 8, "cell": 12288, "channel": 635, "sensor": 12}
        for name, var in ds.variables.items():
            if var.dtype.kind not in "OUSM" and name not in ("time", "analysis_time", "frame_time"):
                per_channel = "channel_units" in var.attrs.get("comment", "")  # units vary along channels
                assert ("units" in var.attrs) != per_channel, name
        assert np.issubdtype(ds["time"].dtype, np.datetime64) and np.issubdtype(ds["analysis_time"].dtype, np.datetime64)
        assert ds["analysis_time"].values[0] == np.datetime64("2024-01-01T00:00:00", "ns")
        assert ds["lat"].encoding["zlib"] and ds["lat"].encoding["shuffle"]
        assert np.isnan(ds["height"].values).sum() == (ds["sensor_id"].values != 11).sum()  # fill -> NaN
        assert int(ds["sensor_lengths"].sum()) == n
        assert str(ds["channel_name"].values[582]) == "q_1000"
        flat = np.repeat(np.arange(ds.sizes["cell_edge"] - 1), ds["obs_count"].values.reshape(-1))
        assert np.array_equal(flat % 12288, ds["pix"].values)  # pix agrees with the ragged layout


def test_pack_obs_pipeline_writes_atomically_and_counts(tmp_path):
    src = tmp_path / "raw.nc"
    write_canonical(src, make_raw(300))
    summary = pack_obs([src], times=[T0])
    out = tmp_path / "raw.packed.nc"
    assert summary.output == str(out) and out.exists()
    assert sum(s.read for s in summary.sensors) == 300
    assert sum(s.kept + sum(s.dropped.values()) for s in summary.sensors) == 300
    assert not list(tmp_path.glob(".*.tmp.*"))
    with xr.open_dataset(out) as ds:
        assert ds.sizes["obs"] == summary.n_packed


def test_empty_result_is_a_valid_file(tmp_path):
    raw = make_raw(50)
    result = pack_arrays(raw, [T0 + 100 * 86400])  # no obs near this analysis
    path = tmp_path / "empty.nc"
    write_packed(path, result.packed, {})
    batch = load_batch(path)
    assert batch.context.num_obs == 0 and batch.context.max_seqlen_k == 0
    assert batch.context.cu_seqlens_k.shape == (8 * 12288 + 1,)
