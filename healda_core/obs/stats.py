"""Normalisation tables (DATA §1.4) and the global channel table built from them.

The CSVs ship as package data in ``healda_core/data/stats`` (see the NOTICE there). For a satellite sensor
the pooled rows (``Platform_ID == -1``) give, per raw channel, ``mean``/``std``; the sorted raw channel ids
define the local channel rank. Conv-plevel ids use ``conv_normalizations_by_level.csv`` per (variable,
level), falling back to the base conv stat; ps keeps its base stat.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from jaxtyping import Float, Int

from healda_core.obs import vocab

_STATS_PKG = "healda_core"
MAX_RAW_CHANNEL = 8461  # IASI has 8461 channels, the largest raw channel number


def _stats_dir():
    return resources.files(_STATS_PKG) / "data" / "stats"


def _read_csv(name: str) -> list[dict[str, str]]:
    path = _stats_dir() / name
    with path.open("r", newline="") as fh:
        return list(csv.DictReader(fh))


def stats_files() -> list[str]:
    """Names of the shipped normalisation CSVs, sorted."""
    d = _stats_dir()
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".csv"))


@lru_cache(maxsize=1)
def stats_sha256() -> str:
    """SHA-256 over the shipped normalisation CSVs (names and bytes), recorded in packed files."""
    h = hashlib.sha256()
    for name in stats_files():
        h.update(name.encode())
        h.update((_stats_dir() / name).read_bytes())
    return h.hexdigest()


def _pooled(sensor: str) -> list[tuple[int, float, float]]:
    rows = [r for r in _read_csv(f"{sensor}_normalizations.csv") if int(r["Platform_ID"]) == -1]
    return sorted((int(r["Raw_Channel_ID"]), float(r["obs_mean"]), float(r["obs_std"])) for r in rows)


@dataclass(frozen=True)
class ChannelTable:
    """Every global channel id (0 .. 634): name, sensor, raw channel, stats and QC range.

    Attributes:
        name: (C,) e.g. ``"amsua_7"``, ``"t_850"``, ``"ps"``. sensor: (C,) sensor ids. raw: (C,) raw channel
        (conv code for conv-plevel). level_hpa: (C,) conv-plevel level (0 if none). mean, std, valid_min,
        valid_max: (C,) float64. known: (C,) whether the id has a channel definition.
    """

    name: list[str]
    sensor: Int[np.ndarray, " C"]
    raw: Int[np.ndarray, " C"]
    level_hpa: Int[np.ndarray, " C"]
    mean: Float[np.ndarray, " C"]
    std: Float[np.ndarray, " C"]
    valid_min: Float[np.ndarray, " C"]
    valid_max: Float[np.ndarray, " C"]
    known: np.ndarray


def _conv_tables() -> tuple[dict[int, tuple[float, float]], dict[tuple[str, int], tuple[float, float]]]:
    base = {int(r["Raw_Channel_ID"]): (float(r["obs_mean"]), float(r["obs_std"]))
            for r in _read_csv("conv_normalizations.csv") if int(r["Platform_ID"]) == -1}
    by_level = {(r["channel"], int(float(r["Level_hPa"]))): (float(r["obs_mean"]), float(r["obs_std"]))
                for r in _read_csv("conv_normalizations_by_level.csv")}
    return base, by_level


def _empty_table() -> dict[str, np.ndarray | list]:
    c = vocab.N_GLOBAL_CHANNELS
    return {
        "name": [""] * c, "sensor": np.zeros(c, np.int64), "raw": np.zeros(c, np.int64),
        "level_hpa": np.zeros(c, np.int64), "mean": np.zeros(c), "std": np.ones(c),
        "valid_min": np.full(c, -np.inf), "valid_max": np.full(c, np.inf), "known": np.zeros(c, bool),
    }


def _set(t: dict, g: int, name: str, sensor: vocab.Sensor, raw: int, ms: tuple[float, float],
         vrange: tuple[float, float], level: int = 0) -> None:
    t["name"][g] = name
    t["sensor"][g], t["raw"][g], t["level_hpa"][g] = sensor.id, raw, level
    t["mean"][g], t["std"][g] = ms
    t["valid_min"][g], t["valid_max"][g] = vrange
    t["known"][g] = True


@lru_cache(maxsize=1)
def channel_table() -> ChannelTable:
    """The global channel table (cached)."""
    t = _empty_table()
    for s in vocab.SENSORS:
        if s.is_conv or s.name == "airs":  # airs: no stats table shipped, channels undefined
            continue
        for local, (raw, mean, std) in enumerate(_pooled(s.name)[: s.n_channels]):
            _set(t, s.offset + local, f"{s.name}_{raw}", s, raw, (mean, std), (s.valid_min, s.valid_max))
    base, by_level = _conv_tables()
    conv, plev = vocab.SENSOR_BY_NAME["conv"], vocab.SENSOR_BY_NAME["conv-plevel"]
    for code, var in enumerate(vocab.CONV_CHANNELS, start=1):
        _set(t, conv.offset + code - 1, var, conv, code, base[code], vocab.CONV_VALID[var])
    for gi, var in enumerate(vocab.PLEVEL_GROUPS):
        code = vocab.CONV_CODE[var]
        for li, lev in enumerate(vocab.PLEVELS_HPA):
            ms = by_level.get((var, lev), base[code])
            _set(t, plev.offset + gi * 13 + li, f"{var}_{lev}", plev, code, ms, vocab.CONV_VALID[var], lev)
    _set(t, plev.offset + vocab.PS_PLEVEL_LOCAL, "ps", plev, vocab.CONV_CODE["ps"], base[vocab.CONV_CODE["ps"]],
         vocab.CONV_VALID["ps"])
    return ChannelTable(**t)


@lru_cache(maxsize=1)
def raw_to_local_lut() -> Int[np.ndarray, "sensors raw"]:
    """``lut[sensor_id, raw_channel]`` = local channel rank, or -1 when the raw channel is unknown.

    Conv rows map code 1..8 to local 0..7 (base conv ids); conv-plevel expansion is separate.
    """
    lut = np.full((len(vocab.SENSORS), MAX_RAW_CHANNEL + 1), -1, dtype=np.int16)
    table = channel_table()
    for g in np.flatnonzero(table.known):
        s = vocab.SENSORS[table.sensor[g]]
        if s.name != "conv-plevel":
            lut[s.id, table.raw[g]] = g - s.offset
    lut.setflags(write=False)
    return lut
