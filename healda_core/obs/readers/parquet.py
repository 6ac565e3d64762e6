"""Parquet observation tables of the reference datapipe (UFS "combined" long schema, DATA §1.1; NNJA-derived
tables in the same schema), read with pyarrow, streamed by record batch into preallocated columns. NNJA
PrepBUFR cycle tables (wide, one column per mnemonic) are detected by their columns and read by
:mod:`~healda_core.obs.readers.nnja`.

One row per scalar observation: ``Observation`` (value; ps hPa), ``Latitude``, ``Longitude``,
``Absolute_Obs_Time`` (timestamp, UTC), ``Global_Channel_ID`` (global id of DATA §1.2: 0–542 without
conv-plevel, conv 322–329; conv-plevel ids 543–634 are accepted too), ``Platform_ID`` (global, null for conv),
``Sat_Zenith_Angle``, ``Sol_Zenith_Angle``, ``Scan_Angle`` (degrees, null for conv), ``Pressure`` (hPa),
``Height`` (m), ``Observation_Type`` (report type, null for satellites), optional ``QC_Flag``,
``Analysis_Use_Flag``. ``DA_window`` and loader-added columns are ignored. A finite ``Height`` or
``Pressure`` is not needed to mark a conventional row: the channel id says what each row is.
"""

from __future__ import annotations

import os

import numpy as np

from healda_core.errors import input_error
from healda_core.obs import vocab
from healda_core.obs.raw import COLUMNS, NAT, RawObs
from healda_core.obs.readers.nnja import looks_nnja_prepbufr, read_nnja_prepbufr
from healda_core.obs.stats import channel_table

MAGIC = b"PAR1"
REQUIRED = ("Observation", "Latitude", "Longitude", "Absolute_Obs_Time", "Global_Channel_ID")
#: parquet column -> RawObs column
FLOATS = {"Observation": "value", "Latitude": "lat", "Longitude": "lon", "Sat_Zenith_Angle": "sat_zenith",
          "Sol_Zenith_Angle": "solar_zenith", "Scan_Angle": "scan_angle", "Pressure": "pressure_hpa",
          "Height": "height"}
FLAGS = {"QC_Flag": "qc_flag", "Analysis_Use_Flag": "use_flag"}
BATCH_ROWS = 1 << 20


def _channel_luts() -> tuple[np.ndarray, np.ndarray]:
    """Global channel id -> (raw sensor id, raw channel); conv-plevel ids map back to conv codes."""
    t = channel_table()
    sensor = np.where(t.known, t.sensor, vocab.UNKNOWN_SENSOR).astype(np.uint8)
    sensor = np.where(sensor == vocab.CONV_PLEVEL, vocab.CONV, sensor).astype(np.uint8)
    size = 1 << 16
    s_lut = np.full(size, vocab.UNKNOWN_SENSOR, np.uint8)
    c_lut = np.zeros(size, np.uint16)
    s_lut[:sensor.size], c_lut[:sensor.size] = sensor, np.clip(t.raw, 0, 65535)
    return s_lut, c_lut


def _column(batch, name: str, fill: int = 0) -> np.ndarray | None:
    """Column ``name`` of a record batch as NumPy, without copies where possible.

    Floats: nulls become NaN. Timestamps: int64 ns, nulls ``NAT``. Integers keep their type, nulls ``fill``
    (which must fit the type).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    i = batch.schema.get_field_index(name)
    if i < 0:
        return None
    col = batch.column(i)
    if pa.types.is_timestamp(col.type):
        if col.type.unit != "ns":
            col = pc.cast(col, pa.timestamp("ns", tz=col.type.tz))
        col = col.view(pa.int64())
        fill = NAT
    if col.null_count and not pa.types.is_floating(col.type):
        if fill < 0 and pa.types.is_unsigned_integer(col.type):
            col = col.cast(pa.int64())
        col = pc.fill_null(col, pa.scalar(fill, col.type))
    return col.to_numpy(zero_copy_only=False)


def read_parquet(path: str | os.PathLike) -> tuple[RawObs, str]:
    """Read a parquet observation table into :class:`RawObs`, one record batch (≤ 2**20 rows) at a time.

    Returns the rows and the schema detected from the columns: ``"parquet"`` (UFS combined long schema) or
    ``"nnja-prepbufr"`` (NNJA PrepBUFR cycle table, :mod:`~healda_core.obs.readers.nnja`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise input_error(path, None, f"not a readable parquet file, or truncated ({exc})") from None
    if looks_nnja_prepbufr(names):
        _check_claimed_rows(path, pf.metadata.num_rows)
        return read_nnja_prepbufr(path, pf), "nnja-prepbufr"
    for name in REQUIRED:
        if name not in names:
            raise input_error(path, name, "required column missing (expected the UFS combined observation schema, "
                              "or the NNJA PrepBUFR columns XOB, YOB, DHR, POB, TYP)")
    for name in ("Observation_Type", "Platform_ID", "Global_Channel_ID"):
        if name in names and not pa.types.is_integer(pf.schema_arrow.field(name).type):
            raise input_error(path, name, f"wrong type {pf.schema_arrow.field(name).type}, expected integer")
    n = pf.metadata.num_rows
    _check_claimed_rows(path, n)
    cols = {name: np.empty(n, dtype) for name, dtype in COLUMNS.items()}
    flags = {dst: np.full(n, -1, np.int32) for src, dst in FLAGS.items() if src in names}
    s_lut, c_lut = _channel_luts()
    wanted = [c for c in (*REQUIRED, *FLOATS, *FLAGS, "Platform_ID", "Observation_Type") if c in names]
    pos = 0
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=wanted, use_threads=True):
            s = slice(pos, pos + batch.num_rows)
            for src, dst in FLOATS.items():
                col = _column(batch, src)
                cols[dst][s] = np.nan if col is None else col
            cols["time_ns"][s] = _column(batch, "Absolute_Obs_Time")
            gch = _column(batch, "Global_Channel_ID", 65535)
            gch = gch if gch.dtype == np.uint16 else np.clip(gch, 0, 65535).astype(np.uint16)
            cols["sensor"][s], cols["channel"][s] = s_lut[gch], c_lut[gch]
            plat = _column(batch, "Platform_ID", -1)
            cols["platform"][s] = -1 if plat is None else np.where((plat < 0) | (plat >= 32767), -1, plat)
            otype = _column(batch, "Observation_Type", 0)
            cols["obs_type"][s] = 0 if otype is None else np.clip(otype, 0, 65535)
            for src, dst in FLAGS.items():
                if dst in flags:
                    flags[dst][s] = _column(batch, src, -1)
            pos += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise input_error(path, None, f"cannot read row data, file truncated or corrupt ({exc})") from None
    if pos != n:
        raise input_error(path, None, f"holds {pos} rows, its footer says {n}")
    conv = cols["sensor"] == vocab.CONV
    cols["platform"][conv] = -1
    for name in ("scan_angle", "sat_zenith", "solar_zenith"):
        cols[name][conv] = np.nan
    for name in ("pressure_hpa", "height"):
        cols[name][~conv] = np.nan
    return RawObs.from_columns(n, **cols, **flags, sources=[str(path)]), "parquet"


def _check_claimed_rows(path: str | os.PathLike, n: int) -> None:
    """Refuse a footer claiming more rows than the file can hold or memory can take, before allocating them."""
    from healda_core.fileio import MAX_EXPANSION, check_memory_budget

    row_bytes = sum(np.dtype(d).itemsize for d in COLUMNS.values())
    size = os.path.getsize(path)
    if n < 0 or n * row_bytes > MAX_EXPANSION * size:
        raise input_error(path, None, f"the footer claims {n:,} rows in a {size / 1e3:.0f} KB file; the rows cannot be "
                          "there (corrupt or hostile footer)")
    check_memory_budget(path, None, n * row_bytes, "the footer claims")


def write_parquet(path: str | os.PathLike, raw: RawObs, row_group_rows: int = BATCH_ROWS) -> None:
    """Write ``raw`` in the UFS combined schema (global channel ids without conv-plevel); for tests and converters."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = channel_table()
    lut = np.full((256, 1 << 16), -1, np.int32)
    base = t.known & (t.sensor != vocab.CONV_PLEVEL)
    lut[t.sensor[base], t.raw[base]] = np.flatnonzero(base)
    gch = lut[raw.sensor, raw.channel]
    if (gch < 0).any():
        raise ValueError("rows whose sensor/channel have no global channel id")
    conv = raw.sensor == vocab.CONV
    mask = lambda a, bad: pa.array(a, mask=bad)  # noqa: E731
    table = pa.table({
        "Observation": raw.value, "Latitude": raw.lat, "Longitude": raw.lon,
        "Absolute_Obs_Time": pa.array(raw.time_ns, pa.timestamp("ns")),
        "Platform_ID": mask(np.maximum(raw.platform, 0).astype(np.uint16), conv | (raw.platform < 0)),
        "Global_Channel_ID": gch.astype(np.uint16),
        "Sat_Zenith_Angle": raw.sat_zenith, "Sol_Zenith_Angle": raw.solar_zenith, "Scan_Angle": raw.scan_angle,
        "Pressure": raw.pressure_hpa, "Height": raw.height,
        "Observation_Type": mask(raw.obs_type.astype(np.uint16), ~conv),
    })
    pq.write_table(table, path, row_group_size=row_group_rows, compression="zstd")
