"""NetCDF helpers shared by the readers: safe open, typed variable reads, fill values, CF time units.

Every file-level problem becomes an :class:`~healda_core.errors.InputError` naming file and variable.
Float variables come back with ``_FillValue``/``missing_value`` and IODA's large sentinels as NaN; integer
variables come back as int64 with missing entries replaced by a caller-chosen value.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import zlib

import netCDF4
import numpy as np

from healda_core.errors import InputError, input_error
from healda_core.fileio import open_netcdf
from healda_core.obs import vocab
from healda_core.obs.raw import NAT, TIME_MAX_NS, TIME_MIN_NS

#: IODA missing values are huge negatives (float -3.3688e38, int32 -2147483643, int64 -9.2e18); GSI diag files
#: and BUFR decoders use the BUFRLIB missing value 1e11 (10e10): any float of magnitude >= 1e10 is missing.
FLOAT_SENTINEL = -1.0e37
BUFR_MISSING = 1.0e10
INT_SENTINEL = -2147483600


def open_nc(path: str | os.PathLike) -> netCDF4.Dataset:
    """:func:`~healda_core.fileio.open_netcdf` (every file-level problem an InputError) with automatic masking and
    scaling off: the readers handle fill values themselves."""
    ds = open_netcdf(path)
    ds.set_auto_maskandscale(False)
    return ds


def find_var(ds: netCDF4.Dataset, name: str) -> netCDF4.Variable | None:
    """Variable ``name`` (``Group/var`` for groups), or None."""
    node = ds
    *groups, leaf = name.split("/")
    for g in groups:
        if g not in node.groups:
            return None
        node = node.groups[g]
    return node.variables.get(leaf)


def _raw(ds: netCDF4.Dataset, path: object, name: str, kinds: str, required: bool) -> tuple[np.ndarray, object] | None:
    v = find_var(ds, name)
    if v is None:
        if required:
            raise input_error(path, name, "required variable missing")
        return None
    kind = np.dtype(v.dtype).kind if not isinstance(v.dtype, type) else "O"
    if kind not in kinds:
        want = {"f": "float", "i": "integer", "u": "integer"}
        raise input_error(path, name, f"wrong dtype {v.dtype}, expected {'/'.join(sorted({want[k] for k in kinds}))}")
    v.set_auto_maskandscale(False)
    try:
        data = np.asarray(v[...])
    except (OSError, RuntimeError, IndexError, ValueError) as exc:
        raise input_error(path, name, f"cannot read data, file truncated or corrupt ({exc})") from None
    return data, v


def _fills(v: netCDF4.Variable, path: object, name: str) -> list[float]:
    """The numbers of ``_FillValue`` and ``missing_value``; a non-numeric one is an InputError."""
    out = []
    for att in ("_FillValue", "missing_value"):
        if att in v.ncattrs():
            value = np.atleast_1d(v.getncattr(att))
            if value.dtype.kind not in "fiub":
                raise input_error(path, name, f"attribute {att}={v.getncattr(att)!r} is not a number")
            out.extend(value.tolist())
    return out


def read_float(ds: netCDF4.Dataset, path: object, name: str, required: bool = True,
               dtype: type = np.float32) -> np.ndarray | None:
    """Float array of ``name`` (any numeric storage) with every kind of missing value as NaN."""
    got = _raw(ds, path, name, "fiu", required)
    if got is None:
        return None
    data, v = got
    bad = np.zeros(data.shape, dtype=bool)
    for f in _fills(v, path, name):
        with np.errstate(all="ignore"):  # a fill value the storage type cannot hold matches nothing
            bad |= data == (np.asarray(f).astype(data.dtype) if data.dtype.kind == "f" else f)
    if data.dtype.kind == "f":
        bad |= (data <= FLOAT_SENTINEL) | (np.abs(data) >= BUFR_MISSING)
    elif data.dtype.kind == "i":
        bad |= data <= INT_SENTINEL
    out = data.astype(dtype)
    out[bad] = np.nan
    return out


def read_int(ds: netCDF4.Dataset, path: object, name: str, required: bool = True, missing: int = -1,
             kinds: str = "iu") -> np.ndarray | None:
    """int64 array of integer variable ``name`` with missing values (fills, sentinels) set to ``missing``."""
    got = _raw(ds, path, name, kinds, required)
    if got is None:
        return None
    data, v = got
    bad = np.zeros(data.shape, dtype=bool)
    for f in _fills(v, path, name):
        bad |= data == f
    if data.dtype.kind == "i":
        bad |= data <= INT_SENTINEL
    if data.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad |= ~np.isfinite(data) | (data <= FLOAT_SENTINEL) | (np.abs(data) >= 9.2e18)  # beyond int64
        data = np.where(bad, 0, data)
    out = data.astype(np.int64)
    out[bad] = missing
    return out


def to_time_ns(count: np.ndarray, per_ns: int, epoch_ns: int, missing: np.ndarray) -> np.ndarray:
    """``count × per_ns + epoch_ns`` as int64 ns (``count`` integer or float); missing, non-finite or
    out-of-range (:data:`~healda_core.obs.raw.TIME_MIN_NS` ..) entries become ``NAT``, without any overflow."""
    c = np.asarray(count)
    ok = ~np.asarray(missing, dtype=bool)
    if c.dtype.kind == "f":
        with np.errstate(invalid="ignore", over="ignore"):
            ns_f = c.astype(np.float64) * float(per_ns) + float(epoch_ns)
            ok &= np.isfinite(ns_f) & (ns_f > TIME_MIN_NS - 1e6) & (ns_f < TIME_MAX_NS + 1e6)  # then exact below
        ns = np.full(c.shape, NAT, dtype=np.int64)
        ns[ok] = np.round(c[ok] * float(per_ns)).astype(np.int64) + np.int64(epoch_ns)
    else:
        lo = -((epoch_ns - TIME_MIN_NS) // per_ns)  # the smallest count at or after TIME_MIN_NS
        hi = -((epoch_ns - TIME_MAX_NS) // per_ns)  # the smallest count at or after TIME_MAX_NS
        i64 = np.iinfo(np.int64)
        ok &= (c >= max(lo, i64.min)) & (c < min(hi, i64.max))
        ns = np.full(c.shape, NAT, dtype=np.int64)
        ns[ok] = c[ok].astype(np.int64) * np.int64(per_ns) + np.int64(epoch_ns)
    ns[(ns < TIME_MIN_NS) | (ns >= TIME_MAX_NS)] = NAT
    return ns


_UNIT_NS = {"nanosecond": 1, "microsecond": 1_000, "millisecond": 1_000_000, "second": 1_000_000_000,
            "minute": 60_000_000_000, "hour": 3_600_000_000_000, "day": 86_400_000_000_000}


def time_units_ns(path: object, name: str, units: str | None) -> tuple[int, int]:
    """(ns per unit, epoch in ns) of CF ``"<unit> since <date>"``; InputError if absent or unparseable."""
    m = re.fullmatch(r"\s*(\w+?)s?\s+since\s+(.+?)\s*", units or "")
    if not m or m.group(1).lower() not in _UNIT_NS:
        raise input_error(path, name, f"time units {units!r} not understood; expected e.g. "
                          "'seconds since 1970-01-01T00:00:00Z'")
    ref = m.group(2).replace("Z", "+00:00").replace(" UTC", "+00:00")
    ref = re.sub(r"^(\d{4}-\d{2}-\d{2}) (\d)", r"\1T\2", ref)
    try:
        t = _dt.datetime.fromisoformat(ref)
    except ValueError:
        raise input_error(path, name, f"time units {units!r}: cannot parse reference date") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
    delta = t - epoch
    epoch_ns = (delta.days * 86400 + delta.seconds) * 1_000_000_000
    if not TIME_MIN_NS <= epoch_ns < TIME_MAX_NS:
        raise input_error(path, name, f"time units {units!r}: reference date outside 1900–2200")
    return _UNIT_NS[m.group(1).lower()], epoch_ns


def cycle_seconds(text: object) -> int | None:
    """Seconds since 1970 of a ``YYYYMMDDHH`` cycle stamp (int or str) or an ISO time; None if unparseable."""
    s = str(text).strip()
    try:
        if re.fullmatch(r"\d{10}", s):
            t = _dt.datetime.strptime(s, "%Y%m%d%H")
        else:
            t = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.UTC)
    return int(t.timestamp())


def read_strings(ds: netCDF4.Dataset, path: object, name: str) -> np.ndarray | None:
    """(N,) bytes array of a char variable ``(N, strlen)`` or a string variable ``(N,)``; None if absent."""
    v = find_var(ds, name)
    if v is None:
        return None
    try:
        v.set_auto_chartostring(False)
        data = np.asarray(v[...])
    except (OSError, RuntimeError, IndexError, ValueError) as exc:
        raise input_error(path, name, f"cannot read data, file truncated or corrupt ({exc})") from None
    if data.dtype.kind == "S" and data.ndim == 2:
        return np.char.strip(data.view(f"S{data.shape[1]}").reshape(-1))
    if data.ndim != 1:
        raise input_error(path, name, f"shape {data.shape}, expected (obs,) strings or (obs, strlen) chars")
    return np.char.strip(data.astype("S"))


def profile_keys(path: object, station: np.ndarray | None, obs_type: np.ndarray) -> np.ndarray | None:
    """(N,) int64 report keys for :attr:`RawObs.profile`: rows of one sonde ascent share a key, others get -1.

    A report is (file, station id, report type); only radiosonde-family report types get a key, since other
    platforms' rows are not one vertical profile.
    """
    if station is None:
        return None
    fam = vocab.report_family(obs_type, np.full(obs_type.shape, 4))
    sonde = fam == vocab.FAMILY_NAMES.index("radiosonde")
    _, inv = np.unique(station, return_inverse=True)
    key = (zlib.crc32(str(path).encode()) & 0x7FFFFF) << 40 | inv.astype(np.int64) << 16 | obs_type.astype(np.int64)
    return np.where(sonde & (station != b""), key, -1).astype(np.int64)


def attr(ds: netCDF4.Dataset, *names: str) -> object | None:
    """First present global attribute among ``names``."""
    for n in names:
        if n in ds.ncattrs():
            return ds.getncattr(n)
    return None


__all__ = ["InputError", "attr", "cycle_seconds", "find_var", "open_nc", "profile_keys", "read_float", "read_int",
           "read_strings", "time_units_ns", "to_time_ns"]
