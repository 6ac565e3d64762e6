"""The canonical raw format: a CF point NetCDF, one row per scalar observation (DATA §7a.1).

Dimension ``obs``; required ``time`` (integer, CF units ``<unit> since <date>``), ``lat``, ``lon``, ``value``,
``sensor`` (uint8 code, ``flag_values``/``flag_meanings`` = sensor names), ``channel`` (raw channel; conv
variable code 1..8). Satellite rows also need ``platform`` (global id, or codes with flag meanings),
``scan_angle``, ``sat_zenith_angle``, ``solar_zenith_angle``; conventional rows need ``obs_type`` and
``pressure`` (Pa, or hPa if its units say so) and/or ``height`` (m). Optional: ``qc_flag``, ``use_flag``,
``station_id`` (strings or chars; groups the levels of a sonde ascent).
Documented in ``docs/formats.md``.
"""

from __future__ import annotations

import os

import netCDF4
import numpy as np

from healda_core.errors import input_error
from healda_core.obs import vocab
from healda_core.obs.raw import NAT, RawObs
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

REQUIRED = ("time", "lat", "lon", "value", "sensor", "channel")
SAT_VARS = ("platform", "scan_angle", "sat_zenith_angle", "solar_zenith_angle")
_TIME_UNITS = "nanoseconds since 1970-01-01T00:00:00Z"


def looks_canonical(ds: netCDF4.Dataset) -> bool:
    """Root variables ``value``, ``sensor`` and ``channel`` mark the canonical form."""
    return all(n in ds.variables for n in ("value", "sensor", "channel"))


def _flag_lut(ds: netCDF4.Dataset, name: str, lookup) -> np.ndarray | None:
    v = find_var(ds, name)
    if v is None or "flag_meanings" not in v.ncattrs() or "flag_values" not in v.ncattrs():
        return None
    codes = np.atleast_1d(v.getncattr("flag_values")).astype(np.int64)
    lut = np.full(max(int(codes.max()) + 1, 256), -1, dtype=np.int64)
    for code, meaning in zip(codes, str(v.getncattr("flag_meanings")).split()):
        lut[code] = lookup(meaning)
    return lut


def _mapped(ds: netCDF4.Dataset, path: object, name: str, lookup, missing: int) -> np.ndarray:
    codes = read_int(ds, path, name, missing=-1)
    lut = _flag_lut(ds, name, lookup)
    if lut is None:
        return np.where(codes < 0, missing, codes)
    ok = (codes >= 0) & (codes < lut.size)
    out = np.where(ok, lut[np.where(ok, codes, 0)], -1)
    return np.where(out < 0, missing, out)


def _time_ns(ds: netCDF4.Dataset, path: object) -> np.ndarray:
    raw = read_int(ds, path, "time", missing=NAT)
    per, epoch = time_units_ns(path, "time", getattr(ds.variables["time"], "units", None))
    return to_time_ns(raw, per, epoch, raw == NAT)


def _pressure_hpa(ds: netCDF4.Dataset, path: object) -> np.ndarray | None:
    p = read_float(ds, path, "pressure", required=False)
    if p is None:
        return None
    units = str(getattr(ds.variables["pressure"], "units", "Pa")).strip()
    return p if units.lower() in ("hpa", "mbar", "mb", "millibar") else p / np.float32(100.0)


def read_canonical(path: str | os.PathLike, ds: netCDF4.Dataset) -> RawObs:
    """Read an opened canonical file into :class:`RawObs` (row problems are left to QC)."""
    for name in REQUIRED:
        if find_var(ds, name) is None:
            raise input_error(path, name, "required variable missing")
    sensor = _mapped(ds, path, "sensor", vocab.sensor_id, vocab.UNKNOWN_SENSOR)
    n = sensor.shape[0]
    is_conv = sensor == vocab.CONV
    cols: dict[str, np.ndarray | None] = {
        "time_ns": _time_ns(ds, path), "lat": read_float(ds, path, "lat"), "lon": read_float(ds, path, "lon"),
        "value": read_float(ds, path, "value"), "sensor": sensor,
        "channel": np.clip(read_int(ds, path, "channel", missing=0), 0, 65535),
    }
    sat_rows = bool((~is_conv).any())
    if sat_rows:
        cols["platform"] = _mapped(ds, path, "platform", vocab.platform_id, -1)
        for src, dst in zip(SAT_VARS[1:], ("scan_angle", "sat_zenith", "solar_zenith")):
            cols[dst] = read_float(ds, path, src)
    if is_conv.any():
        cols["pressure_hpa"] = _pressure_hpa(ds, path)
        cols["height"] = read_float(ds, path, "height", required=False)
        if cols["pressure_hpa"] is None and cols["height"] is None:
            raise input_error(path, "pressure", "required variable missing (conventional rows need pressure or height)")
        cols["obs_type"] = np.clip(read_int(ds, path, "obs_type", missing=0), 0, 65535)
        cols["profile"] = profile_keys(path, read_strings(ds, path, "station_id"), cols["obs_type"])
    cols["qc_flag"] = read_int(ds, path, "qc_flag", required=False, missing=-1)
    cols["use_flag"] = read_int(ds, path, "use_flag", required=False, missing=-1)
    _conv_nan_sat(cols, is_conv)
    for name, col in cols.items():
        if col is not None and col.shape != (n,):
            raise input_error(path, name, f"shape {col.shape} does not match obs dimension ({n},)")
    stamp = attr(ds, "analysis_time", "cycle_time")
    cycle = cycle_seconds(stamp) if stamp is not None else None
    return RawObs.from_columns(n, **cols, cycle_times=[cycle] if cycle is not None else [], sources=[str(path)])


def _conv_nan_sat(cols: dict, is_conv: np.ndarray) -> None:
    """Satellite fields are NaN on conv rows and conv fields NaN on satellite rows (features switch on height)."""
    for name in ("scan_angle", "sat_zenith", "solar_zenith"):
        if cols.get(name) is not None:
            cols[name][is_conv] = np.nan
    for name in ("pressure_hpa", "height"):
        if cols.get(name) is not None:
            cols[name][~is_conv] = np.nan


def write_canonical(path: str | os.PathLike, raw: RawObs, attrs: dict[str, str] | None = None) -> None:
    """Write ``raw`` in the canonical form (pressure in Pa, time in ns, NaN fills); for tests and converters."""
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.setncatts({"Conventions": "CF-1.13", "featureType": "point", "source": "healda write_canonical",
                      **(attrs or {})})
        ds.createDimension("obs", len(raw))
        specs = (
            ("time", raw.time_ns, "i8", {"units": _TIME_UNITS, "calendar": "proleptic_gregorian"}),
            ("lat", raw.lat, "f4", {"units": "degrees_north", "standard_name": "latitude"}),
            ("lon", raw.lon, "f4", {"units": "degrees_east", "standard_name": "longitude"}),
            ("value", raw.value, "f4", {"units": "1", "long_name": "observed value"}),
            ("sensor", raw.sensor, "u1", {"flag_values": np.arange(11, dtype=np.uint8),
                                          "flag_meanings": " ".join(s.name for s in vocab.SENSORS[:11])}),
            ("channel", raw.channel, "u2", {"long_name": "raw channel number or conv variable code"}),
            ("platform", np.where(raw.platform < 0, 255, raw.platform).astype(np.uint8), "u1",
             {"long_name": "global platform id", "_FillValue": np.uint8(255)}),
            ("scan_angle", raw.scan_angle, "f4", {"units": "degree"}),
            ("sat_zenith_angle", raw.sat_zenith, "f4", {"units": "degree"}),
            ("solar_zenith_angle", raw.solar_zenith, "f4", {"units": "degree"}),
            ("pressure", raw.pressure_hpa * np.float32(100.0), "f4", {"units": "Pa"}),
            ("height", raw.height, "f4", {"units": "m"}),
            ("obs_type", raw.obs_type, "u2", {"long_name": "report type"}),
        )
        for name, data, dtype, atts in specs:
            fill = atts.pop("_FillValue", np.float32(np.nan) if dtype == "f4" else None)
            v = ds.createVariable(name, dtype, ("obs",), zlib=True, complevel=1, fill_value=fill)
            v.setncatts(atts)
            v[:] = data
