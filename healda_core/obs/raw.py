"""In-memory raw observations: one row per scalar value, columns as NumPy arrays (DATA §1.1).

Every reader returns a :class:`RawObs`; QC, framing and packing consume it. Missing values are NaN in
float columns, :data:`NAT` in ``time_ns``, -1 in ``platform``, 0 in ``obs_type``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
from jaxtyping import Float, Int

NAT = np.iinfo(np.int64).min  # missing time
#: observation times outside [1900-01-01, 2200-01-01) are treated as missing (``bad_time``): none is real, and
#: values near the int64 limits would overflow the nanosecond and frame arithmetic
TIME_MIN_NS = -2_208_988_800 * 1_000_000_000
TIME_MAX_NS = 7_258_118_400 * 1_000_000_000

#: column name -> dtype, in storage order
COLUMNS: dict[str, type] = {
    "time_ns": np.int64, "lat": np.float32, "lon": np.float32, "value": np.float32, "sensor": np.uint8,
    "channel": np.uint16, "platform": np.int16, "scan_angle": np.float32, "sat_zenith": np.float32,
    "solar_zenith": np.float32, "pressure_hpa": np.float32, "height": np.float32, "obs_type": np.uint16,
}
#: optional columns (None when no reader gave them) and their dtypes
OPTIONAL: dict[str, type] = {"qc_flag": np.int32, "use_flag": np.int32, "profile": np.int64}
#: missing-value fill of each column when a reader has no such variable
FILL: dict[str, float | int] = {"time_ns": NAT, "platform": -1, "obs_type": 0, "sensor": 255, "channel": 0}


@dataclass
class RawObs:
    """Raw observations from one or more files.

    Attributes:
        time_ns: (N,) int64 ns since 1970-01-01 UTC (``NAT`` if missing).
        lat, lon: (N,) float32 degrees. value: (N,) float32 physical value (ps in hPa).
        sensor: (N,) uint8 sensor id (``vocab.SENSORS``; conv rows are ``conv``, 255 unknown).
        channel: (N,) uint16 raw channel number; conv code 1..8 for conv rows.
        platform: (N,) int16 global platform id (-1 missing). scan_angle, sat_zenith, solar_zenith: (N,)
        float32 degrees (NaN for conv). pressure_hpa, height: (N,) float32 (NaN for sat).
        obs_type: (N,) uint16 report type (0 for sat).
        qc_flag, use_flag: optional (N,) int32 GSI flags (only used by ``qc_filter``).
        profile: optional (N,) int64 report key: the rows of one report (a sonde ascent, one station's
        surface report) share it, -1 for none; lets missing heights be derived from the report's own levels.
        cycle_times: analysis/cycle times (int64 s) declared by the files' attributes.
        sources: input paths.
    """

    time_ns: Int[np.ndarray, " n"]
    lat: Float[np.ndarray, " n"]
    lon: Float[np.ndarray, " n"]
    value: Float[np.ndarray, " n"]
    sensor: Int[np.ndarray, " n"]
    channel: Int[np.ndarray, " n"]
    platform: Int[np.ndarray, " n"]
    scan_angle: Float[np.ndarray, " n"]
    sat_zenith: Float[np.ndarray, " n"]
    solar_zenith: Float[np.ndarray, " n"]
    pressure_hpa: Float[np.ndarray, " n"]
    height: Float[np.ndarray, " n"]
    obs_type: Int[np.ndarray, " n"]
    qc_flag: Int[np.ndarray, " n"] | None = None
    use_flag: Int[np.ndarray, " n"] | None = None
    profile: Int[np.ndarray, " n"] | None = None
    cycle_times: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])

    @classmethod
    def from_columns(cls, n: int, **cols: np.ndarray | None) -> RawObs:
        """Build from whichever columns are given; absent ones are filled with their missing value."""
        out: dict[str, object] = {}
        for name, dtype in COLUMNS.items():
            col = cols.pop(name, None)
            if col is None:
                col = np.full(n, FILL.get(name, np.nan), dtype=dtype)
            col = np.asarray(col, dtype=dtype)
            out[name] = np.full(n, col, dtype=dtype) if col.ndim == 0 else np.ascontiguousarray(col)
            if out[name].shape != (n,):
                raise ValueError(f"column {name} has shape {col.shape}, expected ({n},)")
        for name, dtype in OPTIONAL.items():
            col = cols.pop(name, None)
            out[name] = None if col is None else np.asarray(col, dtype=dtype)
        out["cycle_times"] = list(cols.pop("cycle_times", None) or [])
        out["sources"] = list(cols.pop("sources", None) or [])
        if cols:
            raise TypeError(f"unknown columns {sorted(cols)}")
        return cls(**out)  # type: ignore[arg-type]

    def take(self, idx: np.ndarray) -> RawObs:
        """Rows ``idx`` (an index or boolean array) as a new :class:`RawObs`."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in list(COLUMNS) + list(OPTIONAL):
            if kw[name] is not None:
                kw[name] = kw[name][idx]
        return RawObs(**kw)


def concat(parts: list[RawObs]) -> RawObs:
    """Concatenate row-wise; optional flags are kept only when every part has them."""
    if len(parts) == 1:
        return parts[0]
    kw: dict[str, object] = {n: np.concatenate([getattr(p, n) for p in parts]) for n in COLUMNS}
    for name in ("qc_flag", "use_flag"):
        cols = [getattr(p, name) for p in parts]
        kw[name] = None if any(c is None for c in cols) else np.concatenate(cols)
    profiles = [p.profile for p in parts]
    kw["profile"] = None if all(c is None for c in profiles) else np.concatenate(
        [np.full(len(p), -1, np.int64) if c is None else c for p, c in zip(parts, profiles)])
    kw["cycle_times"] = [t for p in parts for t in p.cycle_times]
    kw["sources"] = [s for p in parts for s in p.sources]
    return RawObs(**kw)  # type: ignore[arg-type]
