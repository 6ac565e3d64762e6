"""NOAA GSI diag NetCDF files: conventional ``diag_conv_{t,q,ps,uv,gps}_*`` and radiance ``diag_<sensor>_<platform>_*``.

Times (``Time`` conv, ``Obs_Time`` radiance) are hours relative to the ``date_time`` global attribute
(``YYYYMMDDHH``). Conv: ``Latitude``, ``Longitude``, ``Pressure`` (hPa), ``Height`` (m),
``Observation_Type``, ``Observation`` (uv: ``u_Observation`` and ``v_Observation``; gps: bending angle, plus
``Temperature_at_Obs_Location``/``Specific_Humidity_at_Obs_Location`` as gps_t/gps_q), ``Analysis_Use_Flag``.
``Height`` or ``Pressure`` may be the BUFRLIB missing value 1e11 (most radiosonde levels have no height): it
is derived later from the ascent's own levels (``Station_ID`` groups them) or the standard atmosphere.
Radiance: ``Observation`` (K), ``Channel_Index`` (1-based pointer into ``sensor_chan``, which holds the
raw channel number), ``Scan_Angle``, ``Sat_Zenith_Angle``, ``Sol_Zenith_Angle``, ``QC_Flag``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import netCDF4
import numpy as np

from healda_core.errors import input_error
from healda_core.obs import vocab
from healda_core.obs.raw import RawObs, concat
from healda_core.obs.readers.common import (
    attr,
    cycle_seconds,
    find_var,
    profile_keys,
    read_float,
    read_int,
    read_strings,
    to_time_ns,
)

_CONV_KINDS = ("t", "q", "ps", "uv", "gps")


def looks_gsi(ds: netCDF4.Dataset) -> bool:
    """GSI diag: root ``Latitude`` with ``Observation`` or ``u_Observation``."""
    v = ds.variables
    return "Latitude" in v and ("Observation" in v or "u_Observation" in v)


def _cycle(ds: netCDF4.Dataset, path: object) -> int:
    stamp = attr(ds, "date_time")
    cycle = cycle_seconds(stamp) if stamp is not None else None
    if cycle is None:
        raise input_error(path, "date_time", f"global attribute missing or not YYYYMMDDHH ({stamp!r})")
    return cycle


def _time_ns(ds: netCDF4.Dataset, path: object, name: str, cycle: int) -> np.ndarray:
    hours = read_float(ds, path, name, dtype=np.float64)
    return to_time_ns(hours, 3_600_000_000_000, cycle * 1_000_000_000, np.isnan(hours))


def _conv_kind(ds: netCDF4.Dataset, path: object) -> str:
    m = re.search(r"diag_conv_(t|q|ps|uv|gps)[_.]", Path(str(path)).name)
    if m:
        return m.group(1)
    if "u_Observation" in ds.variables:
        return "uv"
    cls = find_var(ds, "Observation_Class")
    if cls is not None:
        text = b"".join(np.asarray(cls[0]).reshape(-1).astype("S1")).decode(errors="ignore").strip()
        if text in _CONV_KINDS:
            return text
    raise input_error(path, "Observation_Class", "cannot tell the conventional variable (t, q, ps, uv, gps) "
                      "from the file name or Observation_Class")


def _read_conv(path: object, ds: netCDF4.Dataset) -> RawObs:
    cycle = _cycle(ds, path)
    kind = _conv_kind(ds, path)
    base = {"time_ns": _time_ns(ds, path, "Time", cycle), "lat": read_float(ds, path, "Latitude"),
            "lon": read_float(ds, path, "Longitude"), "pressure_hpa": read_float(ds, path, "Pressure"),
            "height": read_float(ds, path, "Height"),
            "obs_type": np.clip(read_int(ds, path, "Observation_Type", missing=0, kinds="iuf"), 0, 65535),
            "use_flag": read_int(ds, path, "Analysis_Use_Flag", required=False, missing=-1, kinds="iuf")}
    n = base["lat"].shape[0]
    base["profile"] = profile_keys(path, read_strings(ds, path, "Station_ID"), base["obs_type"])
    values = {
        "t": [("t", "Observation")], "q": [("q", "Observation")], "ps": [("ps", "Observation")],
        "uv": [("u", "u_Observation"), ("v", "v_Observation")],
        "gps": [("gps_angle", "Observation"), ("gps_t", "Temperature_at_Obs_Location"),
                ("gps_q", "Specific_Humidity_at_Obs_Location")],
    }[kind]
    parts = []
    for var, name in values:
        required = var not in ("gps_t", "gps_q")
        value = read_float(ds, path, name, required=required)
        if value is None:
            continue
        cols = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in base.items()}
        parts.append(RawObs.from_columns(n, **cols, value=value, sensor=vocab.CONV, channel=vocab.CONV_CODE[var]))
    raw = concat(parts)
    raw.cycle_times, raw.sources = [cycle], [str(path)]
    return raw


def _sensor_platform(ds: netCDF4.Dataset, path: object) -> tuple[int, int]:
    sensor = str(attr(ds, "Observation_type", "Satellite_Sensor") or "").split("_")[0]
    platform = str(attr(ds, "Satellite") or "")
    m = re.match(r"diag_(.+?)_(metop-[abc]|n\d\d|npp|aqua|[a-z]+\d*)_", Path(str(path)).name.lower())
    if m:
        sensor, platform = sensor or m.group(1), platform or m.group(2)
    sid = vocab.sensor_id(sensor) if sensor else vocab.UNKNOWN_SENSOR
    if sid == vocab.UNKNOWN_SENSOR:
        raise input_error(path, "Observation_type", f"unknown radiance sensor {sensor!r} (attribute or file name)")
    return sid, vocab.platform_id(platform) if platform else -1


def _read_radiance(path: object, ds: netCDF4.Dataset) -> RawObs:
    cycle = _cycle(ds, path)
    sid, plat = _sensor_platform(ds, path)
    idx = read_int(ds, path, "Channel_Index", missing=0, kinds="iuf")
    table = read_int(ds, path, "sensor_chan", missing=0, kinds="iuf")
    ok = (idx >= 1) & (idx <= table.size)
    chan = np.where(ok, table[np.clip(idx - 1, 0, max(table.size - 1, 0))] if table.size else 0, 0)
    n = idx.shape[0]
    raw = RawObs.from_columns(
        n, time_ns=_time_ns(ds, path, "Obs_Time", cycle), lat=read_float(ds, path, "Latitude"),
        lon=read_float(ds, path, "Longitude"), value=read_float(ds, path, "Observation"), sensor=sid,
        channel=np.clip(chan, 0, 65535), platform=plat, scan_angle=read_float(ds, path, "Scan_Angle"),
        sat_zenith=read_float(ds, path, "Sat_Zenith_Angle"), solar_zenith=read_float(ds, path, "Sol_Zenith_Angle"),
        qc_flag=read_int(ds, path, "QC_Flag", required=False, missing=-1, kinds="iuf"),
    )
    raw.cycle_times, raw.sources = [cycle], [str(path)]
    return raw


def read_gsi(path: str | os.PathLike, ds: netCDF4.Dataset) -> RawObs:
    """Read an opened GSI diag file (conventional or radiance) into :class:`RawObs`."""
    is_conv = "Observation_Type" in ds.variables or "u_Observation" in ds.variables
    return _read_conv(path, ds) if is_conv else _read_radiance(path, ds)
