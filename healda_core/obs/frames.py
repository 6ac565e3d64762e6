"""Analysis times and frames (DATA §2).

For analysis time ``t`` (the last frame) the frames are ``t_k = t - (T-1)*step + k*step``, k = 0..T-1, and
an observation at ``time`` belongs to frame k iff ``t_k - step/2 <= time < t_k + step/2`` (half-open,
recorded as ``frame_window = "[-PT3H, +PT3H)"``). Times are int64: seconds for analysis/frame times,
nanoseconds for observation times. All arithmetic is integer, so the edges are exact.
"""

from __future__ import annotations

import datetime as _dt
import re

import numpy as np
from jaxtyping import Int

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
