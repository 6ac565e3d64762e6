"""WMO BUFR reports decoded with ecCodes: TEMP (radiosondes), aircraft (AMDAR/ACARS) and SYNOP/SHIP surface reports.

Each message is classified by its content: a replicated ``pressure`` sequence with ``nonCoordinateGeopotential``
(or BUFR data category 2) is a TEMP; ``aircraftFlightNumber``/``aircraftRegistrationNumber...`` (category 4) an
aircraft report; a surface temperature, pressure or wind element (categories 0 land, 1 sea) a SYNOP/SHIP. A TEMP
message of several uncompressed subsets (one ascent each) is read subset by subset (ecCodes keys
``/subsetNumber=k/<key>``); compressed multi-subset TEMP messages and other messages are skipped.

Rows and report types (PrepBUFR conventions, DATA §1.1):

* TEMP 120 (t, q) / 220 (u, v) on every level; pressure Pa → hPa; height = geopotential / g where reported,
  else derived later from the ascent's levels (``profile`` = WMO block and station number);
* aircraft 131 / 231; pressure or flight height, the missing one derived from the standard atmosphere;
* SYNOP land 181 / 281, SHIP 180 / 280: station pressure ``ps``, 2 m t and q, 10 m u, v at the station height.

Humidity is specific humidity from the dew point (Bolton 1980: ``e = 6.112 exp(17.67 Td / (Td + 243.5))`` hPa,
Td in °C; ``q = 0.622 e / (p − 0.378 e)``); winds from direction (degrees, from which it blows) and speed:
``u = −s sin(d)``, ``v = −s cos(d)``. ecCodes missing values (−1e100, 2147483647) read as missing.
"""

from __future__ import annotations

import calendar
import os

import numpy as np

from healda_core.errors import input_error
from healda_core.obs import vocab
from healda_core.obs.raw import NAT, RawObs
from healda_core.obs.readers.common import BUFR_MISSING, profile_keys

MAGIC = b"BUFR"
G = 9.80665
_INT_MISSING = 2147483647


def _arr(h, key: str, subset: int | None = None) -> np.ndarray | None:
    """Float array of every occurrence of ``key`` (in uncompressed subset ``subset``, 1-based, if given) with
    missing values as NaN; None if absent."""
    import eccodes

    try:
        if subset is not None:
            key = f"/subsetNumber={subset}/{key}"  # condition keys: codes_is_defined says 0, get raises if absent
        elif not eccodes.codes_is_defined(h, key):
            return None
        a = np.asarray(eccodes.codes_get_array(h, key))
    except eccodes.CodesInternalError:
        return None
    if a.dtype.kind not in "fiu":
        return None
    a = a.astype(np.float64)
    a[(np.abs(a) >= BUFR_MISSING) | (a == _INT_MISSING)] = np.nan
    return a


def _str(h, key: str) -> str:
    import eccodes

    try:
        return str(eccodes.codes_get_string(h, key)).strip() if eccodes.codes_is_defined(h, key) else ""
    except eccodes.CodesInternalError:
        return ""


def _time_ns(h, subset: int | None = None) -> np.ndarray:
    parts = {k: _arr(h, k, subset) for k in ("year", "month", "day", "hour", "minute", "second")}
    if any(parts[k] is None for k in ("year", "month", "day", "hour")):
        return np.array([NAT])
    n = max(len(v) for v in parts.values() if v is not None)
    get = lambda k: np.resize(parts[k] if parts[k] is not None else np.zeros(1), n)  # noqa: E731
    y, mo, d, hr, mi, se = (get(k) for k in ("year", "month", "day", "hour", "minute", "second"))
    out = np.full(n, NAT, np.int64)
    for i in range(n):
        vals = (y[i], mo[i], d[i], hr[i], np.nan_to_num(mi[i]), np.nan_to_num(se[i]))
        if not np.isnan(vals[:4]).any() and 1 <= vals[1] <= 12 and 1 <= vals[2] <= 31:
            s = calendar.timegm((int(vals[0]), int(vals[1]), int(vals[2]), int(vals[3]), int(vals[4]), 0))
            out[i] = (s + int(vals[5])) * 1_000_000_000
    return out


def specific_humidity(dewpoint_k: np.ndarray, pressure_hpa: np.ndarray) -> np.ndarray:
    """Specific humidity (kg kg-1) from dew point (K) and pressure (hPa), Bolton (1980)."""
    td = dewpoint_k - 273.15
    e = 6.112 * np.exp(17.67 * td / (td + 243.5))
    return 0.622 * e / (pressure_hpa - 0.378 * e)


def wind_components(direction_deg: np.ndarray, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) m s-1 from meteorological direction (degrees, blowing from) and speed."""
    d = np.radians(direction_deg)
    return -speed * np.sin(d), -speed * np.cos(d)


def _rows(n, time_ns, lat, lon, p_hpa, height, station, mass_type, wind_type, t, td, wdir, wspd,
          ps=None) -> list[dict]:
    """Row dicts (t, q, u, v[, ps]) sharing location columns; values NaN where not reported."""
    u, v = wind_components(wdir, wspd)
    q = specific_humidity(td, p_hpa)
    common = {"time_ns": np.resize(time_ns, n), "lat": np.resize(lat, n), "lon": np.resize(lon, n),
              "pressure_hpa": p_hpa, "height": height, "station": np.resize(np.asarray(station, "S16"), n)}
    out = [dict(common, value=t, code=vocab.CONV_CODE["t"], obs_type=mass_type),
           dict(common, value=q, code=vocab.CONV_CODE["q"], obs_type=mass_type),
           dict(common, value=u, code=vocab.CONV_CODE["u"], obs_type=wind_type),
           dict(common, value=v, code=vocab.CONV_CODE["v"], obs_type=wind_type)]
    if ps is not None:
        out.append(dict(common, value=ps, code=vocab.CONV_CODE["ps"], obs_type=mass_type))
    return out


def _temp(h, subset: int | None = None) -> list[dict]:
    """Rows of one ascent: the message's only subset, or uncompressed subset ``subset`` (1-based)."""
    p = _arr(h, "pressure", subset)
    if p is None or p.size == 0:
        return []
    p, n = p / 100.0, p.size

    def lev(key: str) -> np.ndarray:
        a = _arr(h, key, subset)
        return np.resize(a, n) if a is not None and a.size else np.full(n, np.nan)

    def first(key: str) -> float:
        a = _arr(h, key, subset)
        return float(a[0]) if a is not None and a.size else np.nan

    station = f"{int(np.nan_to_num(first('blockNumber'))):02d}{int(np.nan_to_num(first('stationNumber'))):03d}"
    return _rows(n, _time_ns(h, subset)[:1], np.array([first("latitude")]), np.array([first("longitude")]), p,
                 lev("nonCoordinateGeopotential") / G, station, 120, 220, lev("airTemperature"),
                 lev("dewpointTemperature"), lev("windDirection"), lev("windSpeed"))


def _temps(h) -> list[dict]:
    """Rows of every ascent of a TEMP message (one per subset)."""
    import eccodes

    n_sub = int(eccodes.codes_get(h, "numberOfSubsets"))
    return _temp(h) if n_sub == 1 else [r for k in range(1, n_sub + 1) for r in _temp(h, k)]


def _single(h, keys: dict[str, str | tuple[str, ...]], n: int) -> dict[str, np.ndarray]:
    """One value per subset of each key (the first of alternative keys present; first occurrences)."""
    out = {}
    for name, alts in keys.items():
        a = next((x for x in (_arr(h, k) for k in ((alts,) if isinstance(alts, str) else alts))
                  if x is not None and x.size), None)
        out[name] = np.resize(a, n) if a is not None else np.full(n, np.nan)
    return out


def _aircraft(h) -> list[dict]:
    n = int(_arr(h, "numberOfSubsets")[0])
    c = _single(h, {"p": "pressure", "z": "height", "fl": "flightLevel", "t": "airTemperature",
                    "td": "dewpointTemperature", "wd": "windDirection", "ws": "windSpeed", "lat": "latitude",
                    "lon": "longitude"}, n)
    z = np.where(np.isnan(c["z"]), c["fl"], c["z"])
    ident = _str(h, "aircraftFlightNumber") or _str(h, "aircraftRegistrationNumberOrOtherIdentification")
    return _rows(n, _time_ns(h), c["lat"], c["lon"], c["p"] / 100.0, z, ident, 131, 231, c["t"], c["td"], c["wd"],
                 c["ws"])


def _synop(h, ship: bool) -> list[dict]:
    n = int(_arr(h, "numberOfSubsets")[0])
    c = _single(h, {"ps": ("nonCoordinatePressure", "pressure"), "elev": "heightOfStationGroundAboveMeanSeaLevel",
                    "elev2": "heightOfStation", "t": ("airTemperatureAt2M", "airTemperature"),
                    "td": ("dewpointTemperatureAt2M", "dewpointTemperature"),
                    "wd": ("windDirectionAt10M", "windDirection"), "ws": ("windSpeedAt10M", "windSpeed"),
                    "lat": "latitude", "lon": "longitude"}, n)
    elev = np.where(np.isnan(c["elev"]), c["elev2"], c["elev"])
    elev = np.where(np.isnan(elev) & ship, 0.0, elev)
    ps = c["ps"] / 100.0
    mass, wind = (180, 280) if ship else (181, 281)
    return _rows(n, _time_ns(h), c["lat"], c["lon"], ps, elev, "", mass, wind, c["t"], c["td"], c["wd"], c["ws"],
                 ps=ps)


def _classify(h) -> str | None:
    import eccodes

    cat = int(eccodes.codes_get(h, "dataCategory"))
    has = lambda k: eccodes.codes_is_defined(h, k)  # noqa: E731
    if has("nonCoordinateGeopotential") and has("pressure") and (cat == 2 or has("radiosondeType")):
        single = int(eccodes.codes_get(h, "numberOfSubsets")) == 1
        return "temp" if single or not int(eccodes.codes_get(h, "compressedData")) else None
    if cat == 4 or has("aircraftFlightNumber") or has("aircraftRegistrationNumberOrOtherIdentification"):
        return "aircraft"
    if cat in (0, 1) and any(has(k) for k in ("airTemperatureAt2M", "airTemperature", "nonCoordinatePressure",
                                              "windSpeedAt10M", "windSpeed")):
        return "ship" if cat == 1 else "synop"
    return None


def _to_raw(path, rows: list[dict]) -> RawObs:
    """One :class:`RawObs` from the row dicts of every message (columns concatenated once)."""
    if not rows:
        raw = RawObs.from_columns(0)
    else:
        sizes = [r["value"].size for r in rows]
        cat = {k: np.concatenate([r[k] for r in rows]) for k in ("time_ns", "lat", "lon", "value", "pressure_hpa",
                                                                 "height", "station")}
        otype = np.repeat([r["obs_type"] for r in rows], sizes).astype(np.int64)
        code = np.repeat([r["code"] for r in rows], sizes)
        station = cat.pop("station")
        raw = RawObs.from_columns(len(otype), **cat, sensor=vocab.CONV, channel=code, obs_type=otype,
                                  profile=profile_keys(path, station, otype))
    raw.sources = [str(path)]
    return raw


def read_bufr(path: str | os.PathLike) -> RawObs:
    """Decode every TEMP, aircraft and SYNOP/SHIP message of a BUFR file into :class:`RawObs` rows.

    Rows with no reported value are kept (QC counts them as ``missing_value``); a file with no decodable
    message of these kinds is an error.
    """
    import eccodes

    rows: list[dict] = []
    n_msg = n_used = 0
    with open(path, "rb") as f:
        while True:
            try:
                h = eccodes.codes_bufr_new_from_file(f)
            except eccodes.CodesInternalError as exc:
                raise input_error(path, None, f"BUFR message {n_msg + 1} cannot be read, file truncated or "
                                  f"corrupt ({exc})") from None
            if h is None:
                break
            n_msg += 1
            try:
                eccodes.codes_set(h, "unpack", 1)
                kind = _classify(h)
                if kind is not None:
                    rows += _temps(h) if kind == "temp" else _aircraft(h) if kind == "aircraft" else \
                        _synop(h, kind == "ship")
                    n_used += 1
            except eccodes.CodesInternalError as exc:
                raise input_error(path, None, f"BUFR message {n_msg} cannot be decoded ({exc})") from None
            finally:
                eccodes.codes_release(h)
    if n_msg == 0:
        raise input_error(path, None, "no BUFR message found (not a BUFR file, or truncated)")
    if n_used == 0:
        raise input_error(path, None, f"none of its {n_msg} BUFR messages is a TEMP, aircraft or SYNOP/SHIP report")
    return _to_raw(path, rows)
