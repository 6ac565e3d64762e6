"""Observation vocabulary of HealDA v2 (DATA §1.2): sensors, global channel ids, conv-plevel, platforms.

* ``SENSORS``: the UFS/GSI sensor table in id order, with channel counts, global offsets and the valid
  value range used by QC. ``Global_Channel_ID = offset[sensor] + local_channel``.
* Conventional variables (sensor ``conv``) use raw channel codes 1–8 in :data:`CONV_CHANNELS` order.
  The v2 recipe expands them to ``conv-plevel`` ids with :func:`conv_plevel_local`.
* ``PLATFORMS``: global platform ids (``PLATFORM_NAME_TO_ID``), ``NPLATFORMS = 64`` slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

NCHANNEL = 1024
NPLATFORMS = 64
NOBS_TYPES = 1024


@dataclass(frozen=True)
class Sensor:
    """One row of the sensor table (DATA §1.2)."""

    id: int
    name: str
    n_channels: int
    offset: int
    valid_min: float
    valid_max: float

    @property
    def is_conv(self) -> bool:
        return self.name in ("conv", "conv-plevel")


_INF = float("inf")
SENSORS: tuple[Sensor, ...] = (
    Sensor(0, "atms", 22, 0, 0.0, 400.0),
    Sensor(1, "mhs", 5, 22, 0.0, 400.0),
    Sensor(2, "amsua", 15, 27, 0.0, 400.0),
    Sensor(3, "amsub", 5, 42, 0.0, 400.0),
    Sensor(4, "iasi", 175, 47, 150.0, 350.0),
    Sensor(5, "cris-fsr", 100, 222, 150.0, 350.0),
    Sensor(6, "conv", 8, 322, -_INF, _INF),
    Sensor(7, "iasi-pca", 32, 330, -_INF, _INF),
    Sensor(8, "cris-fsr-pca", 32, 362, -_INF, _INF),
    Sensor(9, "airs", 117, 394, 150.0, 350.0),
    Sensor(10, "airs-pca", 32, 511, -_INF, _INF),
    Sensor(11, "conv-plevel", 92, 543, -_INF, _INF),
)
SENSOR_BY_NAME: dict[str, Sensor] = {s.name: s for s in SENSORS}
CONV = SENSOR_BY_NAME["conv"].id
CONV_PLEVEL = SENSOR_BY_NAME["conv-plevel"].id
N_GLOBAL_CHANNELS = SENSORS[-1].offset + SENSORS[-1].n_channels  # 635
UNKNOWN_SENSOR = 255

#: sensors the v2-UFS recipe feeds to the model (model order); raw IR is not used.
V2_SENSORS: tuple[str, ...] = ("atms", "mhs", "amsua", "amsub", "conv-plevel", "iasi-pca", "cris-fsr-pca", "airs-pca")

#: conventional variables, raw channel code = index + 1.
CONV_CHANNELS: tuple[str, ...] = ("gps_angle", "gps_t", "gps_q", "ps", "q", "t", "u", "v")
CONV_CODE: dict[str, int] = {n: i + 1 for i, n in enumerate(CONV_CHANNELS)}
#: QC valid range of each conv variable (NVlabs), in the units of DATA §1.1 (ps in hPa, gps_angle rad).
CONV_VALID: dict[str, tuple[float, float]] = {
    "gps_angle": (0.0, 0.1), "gps_t": (150.0, 350.0), "gps_q": (0.0, 1.0), "ps": (500.0, 1100.0),
    "q": (0.0, 1.0), "t": (150.0, 350.0), "u": (-100.0, 100.0), "v": (-100.0, 100.0),
}
CONV_UNITS: dict[str, str] = {
    "gps_angle": "rad", "gps_t": "K", "gps_q": "kg kg-1", "ps": "hPa", "q": "kg kg-1", "t": "K",
    "u": "m s-1", "v": "m s-1",
}
#: vertical variables of conv-plevel, in group order (ps removed; ps is local id 91).
PLEVEL_GROUPS: tuple[str, ...] = ("gps_angle", "gps_t", "gps_q", "q", "t", "u", "v")
PLEVELS_HPA: tuple[int, ...] = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)
PS_PLEVEL_LOCAL = 91
#: conv code (1..8) -> conv-plevel group (-1 for ps)
_CODE_TO_GROUP = np.array([-1] + [PLEVEL_GROUPS.index(n) if n != "ps" else -1 for n in CONV_CHANNELS], np.int64)

PLATFORMS: tuple[str, ...] = (
    "aqua", "aura", "f10", "f11", "f13", "f14", "f15", "g08", "g10", "g11", "g12", "m08", "m09", "m10",
    "metop-a", "metop-b", "metop-c", "n11", "n12", "n14", "n15", "n16", "n17", "n18", "n19", "n20", "npp",
    "gps", "ps", "q", "t", "uv", "n21",
)
PLATFORM_ID: dict[str, int] = {n: i for i, n in enumerate(PLATFORMS)}
_PLATFORM_ALIASES = {
    "metop-1": "metop-b", "metop-2": "metop-a", "metop-3": "metop-c", "metopa": "metop-a", "metopb": "metop-b",
    "metopc": "metop-c", "suomi-npp": "npp", "snpp": "npp", "s-npp": "npp", "noaa-20": "n20", "j1": "n20",
    "jpss-1": "n20", "noaa-21": "n21", "j2": "n21", "jpss-2": "n21", "eos-aqua": "aqua", "eos-aura": "aura",
}
#: WMO common satellite identifiers (IODA ``MetaData/satelliteIdentifier``) -> platform name.
WMO_SATELLITE: dict[int, str] = {
    3: "metop-b", 4: "metop-a", 5: "metop-c", 206: "n15", 207: "n16", 208: "n17", 209: "n18", 223: "n19",
    224: "npp", 225: "n20", 226: "n21", 784: "aqua", 785: "aura",
}


def platform_id(name: str) -> int:
    """Global platform id of a platform name (case-insensitive, common aliases such as ``NOAA-20``); -1 if unknown."""
    key = name.strip().lower().replace("_", "-")
    key = _PLATFORM_ALIASES.get(key, key)
    if key.startswith("noaa-") and key[5:].isdigit():
        key = f"n{int(key[5:]):02d}"
    return PLATFORM_ID.get(key, -1)


def sensor_id(name: str) -> int:
    """Sensor id of a sensor name (case-insensitive; ``cris`` means ``cris-fsr``); ``UNKNOWN_SENSOR`` if unknown."""
    key = name.strip().lower().replace("_", "-")
    key = {"cris": "cris-fsr", "crisfsr": "cris-fsr", "cris-fsr": "cris-fsr"}.get(key, key)
    s = SENSOR_BY_NAME.get(key)
    return UNKNOWN_SENSOR if s is None else s.id


def plevel_index(pressure_hpa: Float[np.ndarray, " n"]) -> Int[np.ndarray, " n"]:
    """Index (0 = 1000 hPa) of the nearest of the 13 levels; bin edges at midpoints, clipped at 50/1000 hPa.

    A pressure exactly on a midpoint belongs to the higher-pressure (lower index) level, as an ``argmin`` of
    ``|p - level|`` over levels listed from 1000 hPa picks the first. NaN maps to 0.
    """
    p = np.asarray(pressure_hpa, dtype=np.float64)
    levels = np.asarray(PLEVELS_HPA, dtype=np.float64)[::-1]  # ascending 50 .. 1000
    edges = 0.5 * (levels[1:] + levels[:-1])
    asc = np.searchsorted(edges, np.nan_to_num(p, nan=1000.0), side="right")  # 0 .. 12, ascending order
    return (len(PLEVELS_HPA) - 1 - asc).astype(np.int64)


def conv_plevel_local(code: Int[np.ndarray, " n"], pressure_hpa: Float[np.ndarray, " n"]) -> Int[np.ndarray, " n"]:
    """Expanded conv-plevel local id ``group*13 + level`` (ps -> 91) of conv codes 1..8; -1 for a bad code."""
    code = np.asarray(code, dtype=np.int64)
    ok = (code >= 1) & (code <= len(CONV_CHANNELS))
    group = _CODE_TO_GROUP[np.where(ok, code, 0)]
    local = np.where(group >= 0, group * len(PLEVELS_HPA) + plevel_index(pressure_hpa), PS_PLEVEL_LOCAL)
    return np.where(ok, local, -1)


#: conventional report families by PrepBUFR/GSI report type (mass 1xx and wind 2xx share the family), for
#: per-platform counts; GPS-RO is recognised by its conv code, not its report type.
REPORT_FAMILIES: tuple[tuple[str, tuple[range, ...]], ...] = (
    ("radiosonde", (range(120, 123), range(132, 133), range(220, 223), range(232, 233))),
    ("aircraft", (range(130, 132), range(133, 140), range(230, 232), range(233, 240))),
    ("surface", (range(180, 200), range(280, 300))),
    ("profiler", (range(126, 127), range(223, 230))),
    ("satwind", (range(240, 261),)),
)
FAMILY_NAMES: tuple[str, ...] = ("other", "gps", *(name for name, _ in REPORT_FAMILIES))
_FAMILY_LUT = np.zeros(65536, np.uint8)
for _i, (_name, _ranges) in enumerate(REPORT_FAMILIES):
    for _r in _ranges:
        _FAMILY_LUT[_r.start:_r.stop] = _i + 2


def report_family(obs_type: Int[np.ndarray, " n"], code: Int[np.ndarray, " n"]) -> Int[np.ndarray, " n"]:
    """Index into :data:`FAMILY_NAMES` of conv rows (report type, conv code 1..8)."""
    fam = _FAMILY_LUT[np.clip(np.asarray(obs_type, np.int64), 0, 65535)]
    return np.where(np.asarray(code) <= 3, 1, fam).astype(np.uint8)
