"""JCSDA IODA v2/v3 NetCDF4 files (groups ``MetaData``, ``ObsValue``, ``ObsError``, ``PreQC``).

Conventional files: every present ``ObsValue`` variable among :data:`CONV_VARS` becomes rows of its conv
code, with ``MetaData/pressure`` (Pa), ``MetaData/height`` (else ``stationElevation`` for surface reports and station pressure; sonde levels of
one ``stationIdentification`` form a profile) and the report type
from ``ObsType/<var>``, ``MetaData/prepbufrReportType`` or ``MetaData/ObsType``. Radiance files:
``ObsValue/brightnessTemperature(Location, Channel)`` with ``MetaData/sensorChannelNumber``, the sensor from
file attributes (``sensor``, ``instrument``, ...) or the file name, and the platform from
``MetaData/satelliteIdentifier`` (WMO code) or file attributes. ``MetaData/dateTime`` is int64
``seconds since`` its units' epoch. IODA fill sentinels and ``_FillValue`` read as missing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import netCDF4
import numpy as np

from healda_core.errors import input_error
from healda_core.obs import vocab
from healda_core.obs.raw import NAT, RawObs, concat
from healda_core.obs.readers.common import (
    attr,
    cycle_seconds,
    find_var,
    profile_keys,
    read_float,
    read_int,
    read_strings,
    time_units_ns,
    to_time_ns,
)

#: ObsValue variable -> conv variable name
CONV_VARS: dict[str, str] = {
    "airTemperature": "t", "specificHumidity": "q", "windEastward": "u", "windNorthward": "v",
    "stationPressure": "ps", "bendingAngle": "gps_angle",
}
_REPORT_TYPE = ("MetaData/prepbufrReportType", "MetaData/ObsType", "MetaData/observationTypeNum")


def looks_ioda(ds: netCDF4.Dataset) -> bool:
    """Groups ``MetaData`` and ``ObsValue`` mark an IODA file."""
    return "MetaData" in ds.groups and "ObsValue" in ds.groups


def _time_ns(ds: netCDF4.Dataset, path: object) -> np.ndarray:
    name = "MetaData/dateTime"
    t = read_int(ds, path, name, missing=NAT)
    per, epoch = time_units_ns(path, name, getattr(find_var(ds, name), "units", None))
    return to_time_ns(t, per, epoch, t == NAT)


def _location_cols(ds: netCDF4.Dataset, path: object) -> dict[str, np.ndarray]:
    return {"time_ns": _time_ns(ds, path), "lat": read_float(ds, path, "MetaData/latitude"),
            "lon": read_float(ds, path, "MetaData/longitude")}


def _first(ds: netCDF4.Dataset, path: object, names: tuple[str, ...]) -> np.ndarray | None:
    for n in names:
        if find_var(ds, n) is not None:
            return read_float(ds, path, n)
    return None


def _read_conv(path: object, ds: netCDF4.Dataset) -> RawObs:
    loc = _location_cols(ds, path)
    n = loc["lat"].shape[0]
    p = read_float(ds, path, "MetaData/pressure", required=False)
    p_hpa = p / np.float32(100.0) if p is not None else np.full(n, np.nan, np.float32)
    h = _first(ds, path, ("MetaData/height", "MetaData/impactHeightRO"))
    elev = read_float(ds, path, "MetaData/stationElevation", required=False)
    h = h if h is not None else np.full(n, np.nan, np.float32)
    station = read_strings(ds, path, "MetaData/stationIdentification")
    parts = []
    for var, conv in CONV_VARS.items():
        name = f"ObsValue/{var}"
        if find_var(ds, name) is None:
            continue
        value = read_float(ds, path, name)
        rtype = next((read_int(ds, path, r, missing=0) for r in (f"ObsType/{var}", *_REPORT_TYPE)
                      if find_var(ds, r) is not None), np.zeros(n, np.int64))
        pres, height = p_hpa, h
        if conv == "ps":  # station pressure: the value (Pa) is the pressure at the station; hPa per DATA §1.1
            value = value / np.float32(100.0)
            pres = np.where(np.isnan(p_hpa), value, p_hpa)
        if elev is not None:  # a surface report's height is the station's (upper-air levels' is not)
            surface = vocab.report_family(rtype, vocab.CONV_CODE[conv]) == vocab.FAMILY_NAMES.index("surface")
            height = np.where(np.isnan(h) & (surface | (conv == "ps")), elev, h)
        qc = read_int(ds, path, f"PreQC/{var}", required=False, missing=-1)
        parts.append(RawObs.from_columns(
            n, **loc, value=value, sensor=vocab.CONV, channel=vocab.CONV_CODE[conv], pressure_hpa=pres.copy(),
            height=height.copy(), obs_type=np.clip(rtype, 0, 65535), qc_flag=qc,
            profile=profile_keys(path, station, np.clip(rtype, 0, 65535))))
    if not parts:
        raise input_error(path, "ObsValue", f"no supported variable; expected one of {sorted(CONV_VARS)} "
                          "or brightnessTemperature")
    return concat(parts)


def _sensor_platform(ds: netCDF4.Dataset, path: object) -> tuple[int, str]:
    name = str(attr(ds, "sensor", "instrument", "sensorCommonName", "sensor_name") or "")
    sid = vocab.sensor_id(name) if name else vocab.UNKNOWN_SENSOR
    stem = Path(str(path)).name.lower()
    if sid == vocab.UNKNOWN_SENSOR:
        for s in sorted(vocab.SENSORS, key=lambda s: -len(s.name)):
            if re.search(rf"(^|[_.\-]){re.escape(s.name)}([_.\-]|$)", stem) and not s.is_conv:
                sid = s.id
                break
    if sid == vocab.UNKNOWN_SENSOR:
        raise input_error(path, "sensor", "cannot tell the radiance sensor (no 'sensor' attribute, no sensor "
                          "name in the file name)")
    plat = str(attr(ds, "platform", "platformCommonName", "satellite", "platform_name") or "")
    if not plat:
        m = re.search(r"(metop-[abc]|n\d\d|npp|aqua)", stem)
        plat = m.group(1) if m else ""
    return sid, plat


def _platform_ids(ds: netCDF4.Dataset, path: object, n: int, plat: str) -> np.ndarray:
    sat = read_int(ds, path, "MetaData/satelliteIdentifier", required=False, missing=-1, kinds="iuf")
    if sat is None:
        return np.full(n, vocab.platform_id(plat) if plat else -1, np.int64)
    lut = np.full(1024, -1, np.int64)
    for code, name in vocab.WMO_SATELLITE.items():
        lut[code] = vocab.PLATFORM_ID[name]
    return np.where((sat >= 0) & (sat < 1024), lut[np.clip(sat, 0, 1023)], -1)


def _read_radiance(path: object, ds: netCDF4.Dataset) -> RawObs:
    loc = _location_cols(ds, path)
    n = loc["lat"].shape[0]
    bt = read_float(ds, path, "ObsValue/brightnessTemperature")
    if bt.ndim != 2 or bt.shape[0] != n:
        raise input_error(path, "ObsValue/brightnessTemperature", f"shape {bt.shape}, expected (Location={n}, Channel)")
    nch = bt.shape[1]
    chans = read_int(ds, path, "MetaData/sensorChannelNumber", required=False, missing=0)
    if chans is None:
        chans = read_int(ds, path, "Channel", missing=0, kinds="iuf") if "Channel" in ds.variables else np.arange(1, nch + 1)
    sid, plat = _sensor_platform(ds, path)
    per_loc = {
        "platform": _platform_ids(ds, path, n, plat),
        "scan_angle": _first(ds, path, ("MetaData/sensorScanAngle", "MetaData/sensorViewAngle")),
        "sat_zenith": _first(ds, path, ("MetaData/sensorZenithAngle",)),
        "solar_zenith": _first(ds, path, ("MetaData/solarZenithAngle",)),
        **loc,
    }
    cols = {k: (np.repeat(v, nch) if v is not None else None) for k, v in per_loc.items()}
    qc = read_int(ds, path, "PreQC/brightnessTemperature", required=False, missing=-1)
    return RawObs.from_columns(
        n * nch, **cols, value=bt.reshape(-1), sensor=sid, channel=np.tile(np.clip(chans, 0, 65535), n),
        qc_flag=None if qc is None else qc.reshape(-1))


def read_ioda(path: str | os.PathLike, ds: netCDF4.Dataset) -> RawObs:
    """Read an opened IODA file (conventional or radiance) into :class:`RawObs`."""
    raw = _read_radiance(path, ds) if find_var(ds, "ObsValue/brightnessTemperature") is not None else \
        _read_conv(path, ds)
    ref = attr(ds, "datetimeReference", "date_time")
    cycle = cycle_seconds(ref) if ref is not None else None
    raw.cycle_times = [cycle] if cycle is not None else []
    raw.sources = [str(path)]
    return raw
