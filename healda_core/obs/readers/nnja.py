"""NNJA PrepBUFR cycle tables: the wide conventional stream of the NNJA parquet archive (NVlabs HealDA layout
``parquet/cycles/YYYY/gdas.YYYYMMDD.tHHz.prepbufr.nr.parquet``).

PrepBUFR flattened to parquet: one row per report level, one column per PrepBUFR mnemonic. Read here:
``XOB`` (longitude, degrees east 0–360), ``YOB`` (latitude), ``DHR`` (hours from the cycle, which only the file
name gives: ``.YYYYMMDD.tHHz.``), ``POB`` (pressure, hPa), ``TYP`` (PrepBUFR report type), optional ``ZOB``
(height, m), ``ELV`` (station elevation, m), ``CAT`` (level category, 0 = surface) and ``SID`` (station id),
and each variable's value and quality mark: ``TOB``/``TQM`` (t, °C), ``QOB``/``QQM`` (q, mg kg⁻¹),
``UOB``, ``VOB``/``WQM`` (u, v, m s⁻¹), ``POB``/``PQM`` (station pressure).

A variable gives a row where its value or its quality mark is present (a quality mark without a value is a
reported but missing element, counted as ``missing_value``). ``POB`` is the vertical coordinate of every level;
it is a station-pressure observation only for report types 180, 181, 187 and type 120 at ``CAT`` = 0 (the
sonde's surface level). Heights: ``ZOB``; where absent, surface reports take ``ELV`` (mass types 180–187) or
``ELV`` + 10 m (wind types 280, 281, 287, as GSI); other rows get theirs derived from ``POB`` later.
Quality marks become ``use_flag`` (1 for a mark ≤ 2, 0 above, −1 absent), used only with ``--qc-filter``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from healda_core.errors import input_error
from healda_core.obs import vocab
from healda_core.obs.raw import NAT, RawObs, concat
from healda_core.obs.readers.common import BUFR_MISSING, cycle_seconds, profile_keys

CORE = ("XOB", "YOB", "DHR", "POB", "TYP")
OPTIONAL = ("ZOB", "ELV", "CAT")
#: variable -> (value column, quality-mark column, scale, offset) to healda units (K, kg kg-1, m s-1, hPa)
VARIABLES = {"ps": ("POB", "PQM", 1.0, 0.0), "q": ("QOB", "QQM", 1e-6, 0.0), "t": ("TOB", "TQM", 1.0, 273.15),
             "u": ("UOB", "WQM", 1.0, 0.0), "v": ("VOB", "WQM", 1.0, 0.0)}
PS_TYPES = (180, 181, 187)  # and 120 at CAT 0
SURFACE_MASS_TYPES = (180, 181, 183, 187)
SURFACE_WIND_TYPES = (280, 281, 287)
BATCH_ROWS = 1 << 20
_CYCLE = re.compile(r"\.(\d{8})\.t(\d{2})z\.")


def looks_nnja_prepbufr(names: set[str]) -> bool:
    """An NNJA PrepBUFR cycle table has the PrepBUFR header columns XOB, YOB, DHR, POB and TYP."""
    return set(CORE) <= names


def _cycle_s(path: object) -> int:
    m = _CYCLE.search(Path(str(path)).name)
    cycle = cycle_seconds(m.group(1) + m.group(2)) if m else None
    if cycle is None:
        raise input_error(path, "DHR", "DHR counts hours from the cycle, which only the file name gives: name it "
                          "gdas.YYYYMMDD.tHHz.prepbufr.nr.parquet (any name holding .YYYYMMDD.tHHz.)")
    return cycle


def _floats(batch, name: str) -> np.ndarray:
    """Column as float64 with nulls and BUFRLIB missing values (|x| >= 1e10) as NaN; all NaN if absent."""
    i = batch.schema.get_field_index(name)
    if i < 0:
        return np.full(batch.num_rows, np.nan)
    a = batch.column(i).to_numpy(zero_copy_only=False).astype(np.float64)
    a[np.abs(a) >= BUFR_MISSING] = np.nan
    return a


def _stations(batch) -> np.ndarray | None:
    i = batch.schema.get_field_index("SID")
    if i < 0:
        return None
    sid = batch.column(i).to_pylist()
    return np.array([(s if isinstance(s, bytes) else str(s or "").encode()).strip() for s in sid], "S16")


def _batch_rows(path: object, batch, cycle_ns: int) -> list[RawObs]:
    """The rows of every variable reported on the levels of one record batch."""
    typ_f = _floats(batch, "TYP")
    typ = np.where(np.isfinite(typ_f), np.clip(typ_f, 0, 65535), 0).astype(np.int64)
    dhr, pob, zob, elv, cat = (_floats(batch, k) for k in ("DHR", "POB", "ZOB", "ELV", "CAT"))
    ok = np.abs(dhr) < 1e5  # hours; NaN and absurd offsets are missing times
    time_ns = np.where(ok, cycle_ns + np.rint(np.where(ok, dhr, 0.0) * 3.6e12).astype(np.int64), NAT)
    height = zob.copy()
    fill = ~np.isfinite(height) & np.isin(typ, SURFACE_MASS_TYPES)
    height[fill] = elv[fill]
    fill = ~np.isfinite(height) & np.isin(typ, SURFACE_WIND_TYPES)
    height[fill] = elv[fill] + 10.0
    stations = _stations(batch)
    profile = profile_keys(path, stations, typ) if stations is not None else None
    base = {"time_ns": time_ns, "lat": _floats(batch, "YOB"), "lon": _floats(batch, "XOB"), "pressure_hpa": pob,
            "height": height, "obs_type": typ, "profile": profile}
    parts = []
    for var, (vcol, qcol, scale, offset) in VARIABLES.items():
        value, qm = _floats(batch, vcol), _floats(batch, qcol)
        rows = np.isfinite(value) | np.isfinite(qm)
        if var == "ps":
            rows &= np.isin(typ, PS_TYPES) | ((typ == 120) & (cat == 0))
            rows &= batch.schema.get_field_index(qcol) >= 0  # without PQM, POB is only the coordinate
        idx = np.flatnonzero(rows)
        if not idx.size:
            continue
        use = np.where(np.isfinite(qm[idx]), np.where(qm[idx] <= 2, 1, 0), -1)
        cols = {k: (v[idx] if v is not None else None) for k, v in base.items()}
        if var == "ps":  # station pressure sits at the station: ZOB, else ELV
            cols["height"] = np.where(np.isfinite(cols["height"]), cols["height"], elv[idx])
        parts.append(RawObs.from_columns(idx.size, **cols, value=value[idx] * scale + offset, sensor=vocab.CONV,
                                         channel=vocab.CONV_CODE[var], use_flag=use))
    return parts


def read_nnja_prepbufr(path: str | os.PathLike, pf) -> RawObs:
    """Read an opened NNJA PrepBUFR cycle table (``pyarrow.parquet.ParquetFile``), one record batch at a time."""
    import pyarrow as pa

    cycle = _cycle_s(path)
    schema = pf.schema_arrow
    for name in (*CORE, *OPTIONAL, *{c for v in VARIABLES.values() for c in v[:2]}):
        if name in schema.names and not (pa.types.is_floating(schema.field(name).type)
                                         or pa.types.is_integer(schema.field(name).type)):
            raise input_error(path, name, f"wrong type {schema.field(name).type}, expected a number")
    wanted = [c for c in (*CORE, *OPTIONAL, "SID", *{c for v in VARIABLES.values() for c in v[:2]})
              if c in schema.names]
    parts: list[RawObs] = []
    n = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=sorted(set(wanted)), use_threads=True):
            parts += _batch_rows(path, batch, cycle * 1_000_000_000)
            n += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise input_error(path, None, f"cannot read row data, file truncated or corrupt ({exc})") from None
    if n != pf.metadata.num_rows:
        raise input_error(path, None, f"holds {n} rows, its footer says {pf.metadata.num_rows}")
    raw = concat(parts) if parts else RawObs.from_columns(0, sensor=vocab.CONV)
    raw.cycle_times, raw.sources = [cycle], [str(path)]
    return raw
