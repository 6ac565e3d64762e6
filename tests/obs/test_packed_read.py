"""The packed-file reader that decodes stored chunks on every core equals netCDF4's reading, bit for bit."""

from __future__ import annotations

import copy

import netCDF4
import numpy as np
import pytest
import torch

import healda_core.obs.packed_write as packed_write
from healda_core.obs.context import to_obs_context
from healda_core.obs.pack import pack_arrays
from healda_core.obs.packed import read_packed
from healda_core.obs.packed_schema import FLOAT_FILL, MODEL_COLUMNS, OBS_VARS
from healda_core.obs.packed_write import write_packed

from .conftest import T0, make_raw

TIMES = [T0, T0 + 21600, T0 + 43200]


def _netcdf4_columns(path, lo: int, hi: int) -> dict[str, np.ndarray]:
    out = {}
    with netCDF4.Dataset(path) as ds:
        for name, dtype in OBS_VARS.items():
            v = ds.variables[name]
            v.set_auto_maskandscale(False)
            a = np.asarray(v[lo:hi], dtype=dtype)
            if a.dtype.kind == "f":
                a[a <= FLOAT_FILL * 0.5] = np.nan
            out[name] = a
    return out


@pytest.fixture(params=["direct", "netcdf4"])
def small_chunks(tmp_path, monkeypatch, request):
    """Three analyses written with 64-observation chunks, so analyses start and end inside chunks."""
    monkeypatch.setattr(packed_write, "CHUNK_OBS", 64)
    result = pack_arrays(copy.deepcopy(make_raw(900)), TIMES)
    path = tmp_path / "obs.nc"
    write_packed(path, result.packed, {}, engine=request.param)
    with netCDF4.Dataset(path) as ds:
        assert ds.variables["value_norm"].chunking() == [64]
        cu = np.asarray(ds.variables["cu_seqlens"][:], np.int64)
    return path, result.packed, cu


def test_every_column_equals_netcdf4_for_any_analysis_selection(small_chunks):
    path, p, cu = small_chunks
    per = p.n_frames * p.n_cell
    assert p.n_obs > 3 * 64
    for sel in ([0, 1, 2], [1], [2, 0]):
        got = read_packed(path, sel)
        parts = [_netcdf4_columns(path, int(cu[b * per]), int(cu[(b + 1) * per])) for b in sel]
        for name in OBS_VARS:
            want = np.concatenate([q[name] for q in parts])
            assert got.obs[name].dtype == want.dtype and np.array_equal(got.obs[name], want, equal_nan=True), name
        assert np.array_equal(got.counts, np.concatenate([np.diff(cu[b * per:(b + 1) * per + 1]) for b in sel]))


def test_model_columns_into_tensors_give_the_same_obs_context(small_chunks):
    path, _, _ = small_chunks
    ref = to_obs_context(read_packed(path, [1]))
    host = read_packed(path, [1], columns=MODEL_COLUMNS,
                       alloc=lambda n, dt: torch.empty(n, dtype=torch.int16 if dt == np.uint16
                                                       else torch.from_numpy(np.empty(0, dt)).dtype))
    assert set(host.obs) == set(MODEL_COLUMNS) and all(isinstance(v, torch.Tensor) for v in host.obs.values())
    got = to_obs_context(host)
    for f in ("obs", "float_metadata", "obs_type", "channel", "platform", "cu_seqlens_k"):
        a, b = getattr(got, f), getattr(ref, f)
        assert a.dtype == b.dtype and torch.equal(a.nan_to_num(7.0), b.nan_to_num(7.0)), f
    assert got.max_seqlen_k == ref.max_seqlen_k
    assert torch.equal(got.group_map.program_pixels, ref.group_map.program_pixels)


def test_a_damaged_chunk_is_bad_input_naming_the_file(small_chunks):
    import h5py

    from healda_core.errors import InputError

    path, _, _ = small_chunks
    with h5py.File(path, "r+") as f:
        f["lat"].id.write_direct_chunk((64,), b"not a zlib stream", 0)
    with pytest.raises(InputError, match="obs.nc"):
        read_packed(path)


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(b"not netcdf at all"), "not a NetCDF file"),
])
def test_file_level_problems_name_the_file(tmp_path, make, words):
    from healda_core.errors import InputError
    from healda_core.obs.packed import packed_header

    path = tmp_path / "obs.packed.nc"
    make(path)
    for read in (read_packed, packed_header):
        with pytest.raises(InputError, match=words) as err:
            read(path)
        assert "obs.packed.nc" in str(err.value)
