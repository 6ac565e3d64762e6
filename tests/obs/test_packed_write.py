"""Parallel-compressed packed files: HDF5-exact shuffle/deflate, identical content to the netCDF4 writer,
streamed gathers equal to in-memory packing, chunked framing/sorting equal to one pass."""

from __future__ import annotations

import copy
import zlib

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr

from healda_core.obs import frames, packed_write
from healda_core.obs.deflate import ChunkCompressor, encode_chunk, shuffle_bytes
from healda_core.obs.pack import column_sources, pack_arrays, plan_pack
from healda_core.obs.packed import read_packed
from healda_core.obs.packed_schema import OBS_VARS
from healda_core.obs.packed_write import write_packed, write_packed_columns

from .conftest import T0, make_raw

TIMES = [T0, T0 + 21600]


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint16, np.uint8, np.int32])
def test_shuffle_and_deflate_match_hdf5(tmp_path, dtype):
    a = (np.random.default_rng(1).normal(0, 1000, 5000)).astype(dtype)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("s", data=a, chunks=(5000,), shuffle=True)
        f.create_dataset("z", data=a, chunks=(5000,), shuffle=True, compression="gzip", compression_opts=1)
        raw_s = f["s"].id.read_direct_chunk((0,))[1]
        raw_z = f["z"].id.read_direct_chunk((0,))[1]
    assert bytes(shuffle_bytes(a)) == raw_s
    assert zlib.decompress(raw_z) == raw_s
    assert zlib.decompress(encode_chunk(a, 5000, 0, 1, True)) == raw_s


def test_encode_chunk_pads_gathers_and_fills():
    a = np.array([1.0, np.nan, 3.0], np.float32)
    out = np.frombuffer(zlib.decompress(encode_chunk(a, 5, -9.0, 1, False, True)), np.float32)
    assert out.tolist() == [1.0, -9.0, 3.0, -9.0, -9.0] and np.isnan(a[1])  # input untouched
    idx = np.array([2, 0])
    out = np.frombuffer(encode_chunk(a, 2, -9.0, 0, False, True, idx), np.float32)
    assert out.tolist() == [3.0, 1.0]


def test_nan_to_fill_value_is_the_select():
    from healda_core.obs.deflate import nan_to_fill_value

    fill = np.float32(-3.3687953e38)
    a = np.array([1.0, np.nan, -0.0, np.inf, -np.inf, -3.4e38, fill, 5e-45], np.float32)
    ref = np.where(np.isnan(a), fill, a)
    assert nan_to_fill_value(a, fill).tobytes() == ref.tobytes()
    b = a[[0, 1, 2, 3, 6, 7]].copy()
    out = nan_to_fill_value(b.copy(), fill, inplace=True)
    assert out.tobytes() == np.where(np.isnan(b), fill, b).tobytes()


def test_compressor_keeps_order():
    with ChunkCompressor(chunk_len=7, workers=2, max_pending=1) as cc:
        cc.submit("a", np.arange(30, dtype=np.int32), fill=0, level=1, shuffle=True)
        cc.submit("b", np.arange(10, dtype=np.int64), fill=0, level=0, shuffle=False)
        got = [(n, s) for n, s, _ in cc.ready(block=True)]
    assert got == [("a", 0), ("a", 7), ("a", 14), ("a", 21), ("a", 28), ("b", 0), ("b", 7)]


def _packed(n=3000):
    return pack_arrays(make_raw(n), TIMES).packed


def _nc_dump(path):
    """What netCDF4 sees: dims, global attrs, per variable dtype/dims/attrs/filters/chunking/raw values."""
    out = {}
    with netCDF4.Dataset(path) as ds:
        out["dims"] = {k: len(v) for k, v in ds.dimensions.items()}
        out["attrs"] = {k: ds.getncattr(k) for k in ds.ncattrs() if k != "date_created"}
        for name, v in ds.variables.items():
            v.set_auto_maskandscale(False)
            out[name] = (v.dtype, v.dimensions, {k: v.getncattr(k) for k in v.ncattrs()}, v.filters(),
                         v.chunking(), v[:])
    return out


@pytest.mark.parametrize("complevel", [1, 0, 5])
def test_direct_writer_identical_to_netcdf4(tmp_path, monkeypatch, complevel):
    monkeypatch.setattr(packed_write, "CHUNK_OBS", 1000)  # several chunks and a padded edge chunk
    p = _packed()
    assert p.n_obs > 2000 and p.n_obs % 1000
    a, b = tmp_path / "ref.nc", tmp_path / "direct.nc"
    write_packed(a, p, {"history": "x"}, complevel=complevel, engine="netcdf4")
    write_packed(b, p, {"history": "x"}, complevel=complevel)
    da, db = _nc_dump(a), _nc_dump(b)
    assert da.keys() == db.keys()
    for k in da:
        if k in ("dims", "attrs"):
            assert da[k] == db[k], k
            continue
        *meta_a, va = da[k]
        *meta_b, vb = db[k]
        assert meta_a == meta_b, k
        assert va.dtype == vb.dtype and np.array_equal(va, vb), k
        if va.dtype != object:  # bit-identical (NaN never stored: floats use the fill value)
            assert va.tobytes() == vb.tobytes(), k
    xa, xb = xr.open_dataset(a), xr.open_dataset(b)
    xa.attrs.pop("date_created"), xb.attrs.pop("date_created")
    assert xa.identical(xb)
    with h5py.File(b) as f:
        d = f["value_norm"]
        assert d.chunks == (1000,) and d.shuffle == (complevel > 0)
        assert d.compression == ("gzip" if complevel else None)


def test_streamed_columns_equal_in_memory_packing(tmp_path, monkeypatch):
    monkeypatch.setattr(packed_write, "CHUNK_OBS", 512)
    raw = make_raw(2500)
    ref = pack_arrays(copy.deepcopy(raw), TIMES)
    plan, qc = plan_pack(raw, TIMES)
    path = tmp_path / "s.nc"
    write_packed_columns(path, plan.header, {}, column_sources(raw, qc, plan, consume=True), complevel=1)
    assert raw.lat.size == 0  # consumed
    got = read_packed(path)
    assert np.array_equal(got.counts, ref.packed.counts)
    assert np.array_equal(got.sensor_lengths, ref.packed.sensor_lengths)
    for k in OBS_VARS:
        assert np.array_equal(got.obs[k], ref.packed.obs[k], equal_nan=True), k


def test_write_columns_rejects_bad_input(tmp_path):
    p = _packed(300)
    cols = [(k, p.obs[k]) for k in OBS_VARS]
    with pytest.raises(ValueError, match="missing"):
        write_packed_columns(tmp_path / "a.nc", p, {}, cols[:-1])
    with pytest.raises(ValueError, match="length"):
        write_packed_columns(tmp_path / "b.nc", p, {}, [(cols[0][0], cols[0][1][:-1])] + cols[1:])


def test_chunked_framing_and_sort_equal_one_pass(monkeypatch):
    raw = make_raw(5000, seed=3)
    monkeypatch.setenv("HEALDA_THREADS", "1")
    monkeypatch.setattr(frames, "ROW_CHUNK", 1 << 30)
    one = pack_arrays(copy.deepcopy(raw), TIMES)
    monkeypatch.setenv("HEALDA_THREADS", "2")
    monkeypatch.setattr(frames, "ROW_CHUNK", 97)  # many chunks, both analyses' windows overlap
    many = pack_arrays(copy.deepcopy(raw), TIMES)
    assert np.array_equal(one.counts, many.counts)
    assert np.array_equal(one.packed.counts, many.packed.counts)
    assert np.array_equal(one.packed.sensor_lengths, many.packed.sensor_lengths)
    assert one.derived == many.derived
    for k in OBS_VARS:
        assert np.array_equal(one.packed.obs[k], many.packed.obs[k], equal_nan=True), k


def test_empty_pack_writes(tmp_path):
    p = pack_arrays(make_raw(50), [T0 + 100 * 86400]).packed
    assert p.n_obs == 0
    write_packed(tmp_path / "e.nc", p, {})
    assert read_packed(tmp_path / "e.nc").n_obs == 0
