"""The ERA5 normalisation statistics (DATA §4): the one reader of the shipped ``era5_13_levels_stats.csv``.

Rows are ``variable, level, std, mean``: the 3-D variables ``U V T Z Q`` at 13 pressure levels (hPa), the
single-level variables (``tcwv``, ``tas``, … ``sic``) at level -1, and the two static inputs ``orog`` and
``lfrac`` (level -1). Training targets, the de-normalisation of ``assimilate`` and the static inputs
(:func:`healda_core.static.load_static`) all z-score with these values.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
from jaxtyping import Float

FILE = "era5_13_levels_stats.csv"
#: the static inputs' rows, in the model's static channel order
STATIC_KEYS: tuple[tuple[str, int], ...] = (("orog", -1), ("lfrac", -1))


def _path():
    return resources.files("healda_core") / "data" / "stats" / FILE


@lru_cache(maxsize=1)
def table() -> dict[tuple[str, int], tuple[float, float]]:
    """``(variable, level) -> (mean, std)``, level -1 for single-level variables (read once; do not modify)."""
    with _path().open("r", newline="") as fh:
        return {(r["variable"], int(float(r["level"]))): (float(r["mean"]), float(r["std"]))
                for r in csv.DictReader(fh)}


def mean_std(keys: Sequence[tuple[str, int]]) -> tuple[Float[np.ndarray, " c"], Float[np.ndarray, " c"]]:
    """(mean, std) float64 arrays, one entry per ``(variable, level)`` key, in order."""
    t = table()
    missing = [k for k in keys if k not in t]
    if missing:
        raise RuntimeError(f"{FILE} lacks {missing}")
    ms = np.array([t[k] for k in keys], dtype=np.float64).reshape(-1, 2)
    return ms[:, 0], ms[:, 1]


def static_mean_std() -> tuple[Float[np.ndarray, " 2"], Float[np.ndarray, " 2"]]:
    """(mean, std) of orography (m) and land fraction (1)."""
    return mean_std(STATIC_KEYS)


def sha256() -> str:
    """SHA-256 of the statistics file (recorded in checkpoints as ``output_stats_sha256``)."""
    return hashlib.sha256(_path().read_bytes()).hexdigest()
