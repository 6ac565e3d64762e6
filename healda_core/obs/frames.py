"""Binning observations by time and place: analysis times and frames (DATA §2), HEALPix pixels, the O(N)
stable sort by flat pixel id, and the row-chunk threads these stages run on.

Frames: for analysis time ``t`` (the last frame) the frames are ``t_k = t - (T-1)*step + k*step``,
k = 0..T-1, and an observation at ``time`` belongs to frame k iff ``t_k - step/2 <= time < t_k + step/2``
(half-open, recorded as ``frame_window = "[-PT3H, +PT3H)"``). Times are int64: seconds for analysis/frame
times, nanoseconds for observation times. All arithmetic is integer, so the edges are exact.

Sort: LSD radix sort on 16-bit digits: NumPy's ``argsort(kind="stable")`` on ``uint16`` keys is itself a
radix sort (O(N)), so two passes cover keys below 2**32. Counts come from ``bincount``; no comparison sort
of records.

Threads: NumPy ufuncs, ``np.take`` and healpy's ``ang2pix`` release the GIL on large arrays, so independent
row chunks run on every core from a plain thread pool (no process start-up, no copies of the inputs).
``HEALDA_THREADS`` caps the number of threads (default: the CPUs this process may run on).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from jaxtyping import Float, Int

from healda_core import grid
from healda_core.errors import UsageError

NS = 1_000_000_000
SYNOPTIC_S = 6 * 3600
_UNITS_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


def parse_time(text: str) -> int:
    """UTC seconds since 1970 of ``2024-01-02T06``, ``2024-01-02T06:00:00Z``, ``2024-01-02 06:00`` or ``2024010206``."""
    s = text.strip()
    if re.fullmatch(r"\d{10}", s):
        s = f"{s[:4]}-{s[4:6]}-{s[6:8]}T{s[8:10]}:00"
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}", s):
        s = s + ":00"
    try:
        t = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"cannot parse time {text!r}; use e.g. 2024-01-02T06:00Z or 2024010206") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    if not 1900 <= t.year < 2200:
        raise UsageError(f"time {text!r} is outside 1900–2200")
    return int(t.timestamp())


def format_time(seconds: int) -> str:
    """ISO-8601 UTC, e.g. ``2024-01-02T06:00:00Z``."""
    return _dt.datetime.fromtimestamp(int(seconds), _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str | float) -> int:
    """Seconds in ``6h``, ``PT6H``, ``90min``, ``1d``, ``3600s`` or a bare number of hours."""
    if isinstance(text, (int, float)):
        return int(round(float(text) * 3600))
    s = text.strip().lower()
    iso = re.fullmatch(r"p(?:(\d+)d)?(?:t(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?)?", s)
    if iso and any(iso.groups()):
        d, h, m, sec = (int(g or 0) for g in iso.groups())
        return ((d * 24 + h) * 60 + m) * 60 + sec
    num = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", s)
    if not num or (num.group(2) and num.group(2) not in _UNITS_S):
        raise UsageError(f"cannot parse duration {text!r}; use e.g. 6h, 90min, PT6H")
    value = float(num.group(1)) * _UNITS_S.get(num.group(2) or "h", 3600)
    if value <= 0:
        raise UsageError(f"duration {text!r} must be positive")
    return int(round(value))


def iso_duration(seconds: int) -> str:
    """``PT6H`` style duration (hours/minutes/seconds)."""
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return "PT" + (f"{h}H" if h else "") + (f"{m}M" if m else "") + (f"{s}S" if s or not (h or m) else "")


def time_range(start: int, end: int, every: int) -> list[int]:
    """Analysis times ``start, start+every, ... <= end`` (seconds)."""
    if end < start:
        raise UsageError("--end is before --start")
    return list(range(int(start), int(end) + 1, int(every)))


def frame_times(analysis_s: Int[np.ndarray, " B"], n_frames: int, step_s: int) -> Int[np.ndarray, "B T"]:
    """``t_k = t - (T-1)*step + k*step`` in seconds, shape (B, T)."""
    a = np.asarray(analysis_s, dtype=np.int64)[:, None]
    return a - (n_frames - 1) * step_s + np.arange(n_frames, dtype=np.int64)[None, :] * step_s


def calendar(times_s: Int[np.ndarray, "*shape"]) -> tuple[Float[np.ndarray, "*shape"], Float[np.ndarray, "*shape"]]:
    """The model's calendar inputs of times in s since 1970 (UTC): second of day and day of year (days since
    1 January 00:00 of the time's year, 0-based, fractional), both float64 of the shape of ``times_s``."""
    t = np.asarray(times_s, dtype=np.int64)
    year_start = t.astype("datetime64[s]").astype("datetime64[Y]").astype("datetime64[s]").astype(np.int64)
    return (t % 86400).astype(np.float64), (t - year_start) / 86400.0


def frame_of(time_ns: Int[np.ndarray, " n"], analysis_s: int, n_frames: int, step_s: int) -> Int[np.ndarray, " n"]:
    """Frame index k of each observation for one analysis, or -1 outside every frame."""
    t0_ns = (int(analysis_s) - (n_frames - 1) * step_s) * NS - (step_s * NS) // 2
    k = (np.asarray(time_ns, dtype=np.int64) - t0_ns) // (step_s * NS)
    return np.where((k >= 0) & (k < n_frames), k, -1)


def assign_frames(
    time_ns: Int[np.ndarray, " n"], analysis_s: list[int], n_frames: int, step_s: int
) -> tuple[Int[np.ndarray, " m"], Int[np.ndarray, " m"]]:
    """Every (observation, analysis, frame) membership.

    Returns:
        rows: (M,) int64 observation indices, grouped by analysis (an observation can belong to several
            analyses when their windows overlap). bt: (M,) int64 ``b*T + k``.
    """
    rows, bt = [], []
    for b, t in enumerate(analysis_s):
        k = frame_of(time_ns, t, n_frames, step_s)
        r = np.flatnonzero(k >= 0)
        rows.append(r)
        bt.append(k[r] + b * n_frames)
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(bt)


def infer_synoptic_times(time_ns: Int[np.ndarray, " n"], step_s: int) -> list[int]:
    """Every synoptic time (00/06/12/18 UTC) whose last frame ``[s - step/2, s + step/2)`` holds an observation."""
    t = np.asarray(time_ns, dtype=np.int64)
    if t.size == 0:
        return []
    half = (step_s * NS) // 2
    j = (t + half) // (SYNOPTIC_S * NS)  # largest synoptic index with s <= time + step/2
    j0 = int(j.min()) - (step_s // SYNOPTIC_S + 1)
    hit = np.zeros(int(j.max()) - j0 + 1, dtype=bool)
    for m in range(step_s // SYNOPTIC_S + 1):
        s = (j - m) * (SYNOPTIC_S * NS)
        ok = s > t - half  # and s <= t + half by construction of j
        hit[(j - m - j0)[ok]] = True
    return [int((j0 + i) * SYNOPTIC_S) for i in np.flatnonzero(hit)]


def pixels(lon: np.ndarray, lat: np.ndarray, level: int) -> Int[np.ndarray, " n"]:
    """PAD_XY pixel ids at ``level`` (int32), via NEST ids and the cached NEST->PAD_XY table."""
    nest = grid.ang2pix(lon, lat, level, order="nest")
    return grid.nest_to_padxy(level)[nest].astype(np.int32)


def counting_sort(keys: Int[np.ndarray, " n"], n_buckets: int) -> tuple[Int[np.ndarray, " n"], Int[np.ndarray, " P"]]:
    """Stable order of ``keys`` (ints in ``[0, n_buckets)``) and the per-bucket counts.

    Returns:
        order: (N,) int64 permutation with ``keys[order]`` non-decreasing, ties in input order.
        counts: (n_buckets,) int64.
    """
    keys = np.asarray(keys)
    if keys.size and (int(keys.min()) < 0 or int(keys.max()) >= n_buckets):
        raise ValueError(f"keys must lie in [0, {n_buckets})")
    if n_buckets > 1 << 32:
        raise ValueError("counting_sort supports at most 2**32 buckets")
    counts = np.bincount(keys, minlength=n_buckets).astype(np.int64)
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if n_buckets > 1 << 16:
        hi = np.take((keys >> 16).astype(np.uint16), order)
        order = np.take(order, np.argsort(hi, kind="stable"))
    return order.astype(np.int64, copy=False), counts


def chunk_bases(chunk_counts: list[Int[np.ndarray, " P"]]) -> tuple[Int[np.ndarray, " P"], list[np.ndarray]]:
    """Merge plan for chunks that were each sorted stably by key (:func:`counting_sort`).

    The element of chunk ``c`` at sorted position ``j`` with key ``k`` goes to ``bases[c][k] + j`` in the
    global stable order (ties: earlier chunks first, then chunk order), i.e. what one global
    :func:`counting_sort` of the concatenated keys gives. Returns the total counts and ``bases``.
    """
    total = np.sum(chunk_counts, axis=0, dtype=np.int64) if chunk_counts else np.zeros(0, np.int64)
    start = np.zeros_like(total)
    np.cumsum(total[:-1], out=start[1:])
    bases, before = [], np.zeros_like(total)
    for c in chunk_counts:
        local = np.zeros_like(total)
        np.cumsum(c[:-1], out=local[1:])
        bases.append(start + before - local)
        before += c
    return total, bases


def scatter_sorted(base: Int[np.ndarray, " P"], sorted_keys: Int[np.ndarray, " m"],
                   pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """``out[dest] = values`` for each ``(out, values)`` of one chunk, ``dest = base[key] + j`` (see
    :func:`chunk_bases`); distinct chunks write disjoint positions, so they may run concurrently."""
    dest = np.take(base, sorted_keys)
    dest += np.arange(sorted_keys.size, dtype=np.int64)
    for out, values in pairs:
        out[dest] = values


T = TypeVar("T")
#: rows per chunk: large enough to amortise Python overhead, small enough to balance two cores
ROW_CHUNK = 1 << 21


def n_threads() -> int:
    """Worker threads: ``HEALDA_THREADS`` if set, else the CPUs available to this process."""
    try:
        avail = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        avail = os.cpu_count() or 1
    env = os.environ.get("HEALDA_THREADS", "").strip()
    return max(1, int(env)) if env.isdigit() else max(1, avail)


def row_slices(n: int, chunk: int | None = None) -> list[slice]:
    """``[0, n)`` cut into consecutive slices of at most ``chunk`` (default :data:`ROW_CHUNK`) rows."""
    chunk = chunk or ROW_CHUNK
    return [slice(s, min(n, s + chunk)) for s in range(0, n, chunk)]


def map_rows(fn: Callable[[slice], T], n: int, chunk: int | None = None) -> list[T]:
    """``[fn(s) for s in row_slices(n, chunk)]``, in order, on :func:`n_threads` threads."""
    slices = row_slices(n, chunk)
    workers = min(n_threads(), len(slices))
    if workers <= 1:
        return [fn(s) for s in slices]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="healda-rows") as ex:
        return list(ex.map(fn, slices))
