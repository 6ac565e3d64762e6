"""Parallel HDF5-compatible chunk compression: the shuffle + deflate filter pipeline, done in Python threads.

HDF5 applies a chunk's filters in order (here: shuffle, then deflate) and stores the result. Doing the same
work ourselves lets chunks be compressed on every core in a thread pool (ISA-L and zlib release the GIL)
while the main thread keeps gathering columns; the bytes are then stored unchanged with h5py's
``write_direct_chunk``, and any HDF5/netCDF reader decompresses them with its ordinary filters.

* :func:`shuffle_bytes` is HDF5's shuffle filter (H5Zshuffle.c): byte ``j`` of element ``i`` goes to
  position ``j*n + i``; a no-op for 1-byte types.
* :func:`deflate` writes a zlib stream (RFC 1950), which is what HDF5's deflate filter stores. Levels 1-3
  use ISA-L (the ``isal`` package, several times faster than zlib with a ratio at least as good on these
  columns); other levels, or a missing ``isal``, use the standard library's zlib.
* :func:`decode_chunk` is the way back (inflate, unshuffle) for readers that fetch the stored bytes
  themselves (``read_direct_chunk``) and decode the chunks of a column on every core.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

try:  # ISA-L: zlib-compatible streams, levels 0-3
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - isal is a dependency; the stdlib fallback stays correct
    _isal = None


def shuffle_bytes(a: np.ndarray) -> np.ndarray:
    """HDF5 shuffle of a contiguous 1-D array: the (n, itemsize) byte matrix, transposed (uint8, C order)."""
    a = np.ascontiguousarray(a)
    s = a.itemsize
    if s == 1 or a.size <= 1:
        return a.view(np.uint8)
    b = a.view(np.uint8).reshape(a.size, s)
    out = np.empty((s, a.size), dtype=np.uint8)
    for j in range(s):  # one strided byte copy per plane beats a full transpose copy
        out[j] = b[:, j]
    return out.reshape(-1)


def deflate(data: np.ndarray | bytes, level: int) -> bytes:
    """zlib stream of ``data`` at ``level`` (1-9); ISA-L for levels 1-3 when available."""
    if _isal is not None and 1 <= level <= 3:
        return _isal.compress(data, level)
    return zlib.compress(memoryview(data).cast("B") if isinstance(data, np.ndarray) else data, level)


def inflate(data: bytes) -> bytes:
    """The bytes of a zlib stream (ISA-L when available; both release the GIL)."""
    return _isal.decompress(data) if _isal is not None else zlib.decompress(data)


def unshuffle_into(raw: np.ndarray, out: np.ndarray) -> None:
    """Undo :func:`shuffle_bytes`: the byte planes of ``raw`` (uint8, ``out.size * itemsize``) into ``out``."""
    s, n = out.itemsize, out.size
    if s == 1:
        out.view(np.uint8)[:] = raw[:n]
        return
    planes = raw[: s * n].reshape(s, n)
    dst = out.view(np.uint8).reshape(n, s)
    for j in range(s):
        dst[:, j] = planes[j]


def decode_chunk(stored: bytes, chunk_len: int, dtype: np.dtype, deflated: bool, shuffled: bool) -> np.ndarray:
    """One stored chunk back to its ``chunk_len`` elements of ``dtype`` (inflate, then unshuffle)."""
    dtype = np.dtype(dtype)
    try:
        raw = np.frombuffer(inflate(stored) if deflated else stored, dtype=np.uint8)
    except Exception as exc:  # zlib.error, isal_zlib.error: a damaged chunk
        raise ValueError(f"stored chunk does not inflate ({exc})") from None
    if raw.size != chunk_len * dtype.itemsize:
        raise ValueError(f"stored chunk decodes to {raw.size} bytes, expected {chunk_len * dtype.itemsize}")
    if not shuffled:
        return raw.view(dtype)
    out = np.empty(chunk_len, dtype)
    unshuffle_into(raw, out)
    return out


def backend(level: int) -> str:
    """Name of the deflate implementation used at ``level`` (recorded in benchmarks)."""
    if level <= 0:
        return "none"
    return "isal" if _isal is not None and level <= 3 else "zlib"


def nan_to_fill_value(a: np.ndarray, fill: object, inplace: bool = False) -> np.ndarray:
    """``np.where(np.isnan(a), fill, a)`` for a float array, fast.

    ``np.fmax`` (which returns the non-NaN operand) is branch-free, unlike a masked assignment, whose cost
    explodes on the random NaN patterns of mixed satellite/conventional columns (~10x). It equals the
    select wherever ``a >= fill``; any value below ``fill`` (e.g. -inf) falls back to the select.
    """
    f = a.dtype.type(fill)
    if np.less(a, f).any():
        return np.where(np.isnan(a), f, a)
    return np.fmax(a, f, out=a if inplace else None)


def encode_chunk(chunk: np.ndarray, chunk_len: int, fill: object, level: int, shuffle: bool,
                 nan_to_fill: bool = False, index: np.ndarray | None = None) -> bytes:
    """One stored chunk: gather ``chunk[index]`` (if ``index`` is given), NaN -> ``fill`` (if
    ``nan_to_fill``), pad to ``chunk_len`` elements, shuffle, deflate.

    HDF5 stores every chunk at full size (the edge chunk of a fixed-size dimension too), so the edge
    chunk is padded with the variable's fill value. ``level`` 0 skips the deflate step.
    """
    if index is not None:
        chunk = np.take(chunk, index)
    if nan_to_fill:
        chunk = nan_to_fill_value(chunk, fill, inplace=index is not None)
    if chunk.size < chunk_len:
        padded = np.full(chunk_len, fill, dtype=chunk.dtype)
        padded[: chunk.size] = chunk
        chunk = padded
    data = shuffle_bytes(chunk) if shuffle else np.ascontiguousarray(chunk).view(np.uint8)
    return deflate(data, level) if level > 0 else data.tobytes()


class ChunkCompressor:
    """Encode the chunks of 1-D columns in a thread pool; hand the results back in submission order.

    ``submit`` queues every chunk of a column; ``ready`` yields the finished chunks at the head of the
    queue (``block=True`` waits for all). Keeping at most ``max_pending`` columns' chunks in flight bounds
    the memory of columns that are gathered faster than they are compressed.
    """

    def __init__(self, chunk_len: int, workers: int | None = None, max_pending: int = 3):
        self.chunk_len = int(chunk_len)
        self.pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2,
                                       thread_name_prefix="healda-deflate")
        self.queue: deque[tuple[str, int, Future]] = deque()
        self.max_pending = max_pending

    def submit(self, name: str, column: np.ndarray, *, fill: object, level: int, shuffle: bool,
               nan_to_fill: bool = False, index: np.ndarray | None = None) -> None:
        """Queue the chunks of ``column`` (or of ``column[index]``, gathered chunk by chunk in the workers)
        for :func:`encode_chunk`."""
        n = column.size if index is None else index.size
        for start in range(0, n, self.chunk_len):
            stop = start + self.chunk_len
            part, idx = (column[start:stop], None) if index is None else (column, index[start:stop])
            fut = self.pool.submit(encode_chunk, part, self.chunk_len, fill, level, shuffle, nan_to_fill, idx)
            self.queue.append((name, start, fut))

    def pending_columns(self) -> int:
        return len({name for name, _, _ in self.queue})

    def ready(self, block: bool = False):
        """Yield ``(name, start, encoded)`` of finished chunks, in order.

        ``block`` waits for every chunk; otherwise it waits only while more than ``max_pending`` columns
        are queued (back-pressure), then yields whatever is already done.
        """
        while self.queue and (block or self.queue[0][2].done() or self.pending_columns() > self.max_pending):
            name, start, fut = self.queue.popleft()
            yield name, start, fut.result()

    def close(self) -> None:
        for _, _, fut in self.queue:
            fut.cancel()
        self.queue.clear()
        self.pool.shutdown(wait=True)

    def __enter__(self) -> ChunkCompressor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
