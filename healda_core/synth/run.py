"""``synthesize``: write a nature run, its static fields and observations drawn from it (an OSSE).

Outputs in ``out_dir``:

* ``nature.nc`` — the truth every 6 h, 74 channels, in the analysis layout (:class:`AnalysisWriter`, NEST);
* ``static.nc`` — orography and land fraction (the ``make-static`` layout);
* ``obs.nc`` — observations in the canonical raw format, hourly from ``start − 3 h`` to ``end + 3 h``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from healda_core import __version__
from healda_core.analysis_io import ATMOS_VARS, SURFACE_VARS, AnalysisWriter
from healda_core.fileio import atomic_output, check_writable, history_entry
from healda_core.obs.raw import COLUMNS, RawObs
from healda_core.obs.readers.canonical import write_canonical
from healda_core.static import write_static
from healda_core.synth import observe, satellites
from healda_core.synth.nature import NatureRun, single_threaded_transforms

HOUR, STEP = 3600, 6 * 3600


@dataclass
class SynthResult:
    """Paths written and observation counts per network."""

    nature: Path
    static: Path
    obs: Path
    counts: dict[str, int]
    times: list[int]


def _stack(nature_fields: dict[str, np.ndarray]) -> np.ndarray:
    """(74, npix) in the channel order of DATA §4."""
    return np.concatenate([nature_fields[v.name] for v in ATMOS_VARS] +
                          [nature_fields[v.name][None] for v in SURFACE_VARS]).astype(np.float32)


def _to_raw(rows: list[dict]) -> RawObs:
    n = sum(len(r["lon"]) for r in rows)
    cols = {}
    for name, dtype in COLUMNS.items():
        parts = [r[name] if name in r else np.full(len(r["lon"]), np.nan) for r in rows]
        cols[name] = np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
    return RawObs.from_columns(n, **cols)


def draw_observations(nature: NatureRun, start_s: int, end_s: int, seed: int, density: float = 1.0,
                      on_hour: Callable[[], None] | None = None) -> tuple[RawObs, dict[str, int]]:
    """All networks, hourly over [start − 3 h, end + 3 h).

    ``density`` scales the networks: 250 radiosonde stations, 500 surface stations, 25 flights per hour and
    satellite scan lines every 3 min at 1.0.
    """
    stations, surface = max(1, int(250 * density)), max(1, int(500 * density))
    flights, line_every = max(1, int(25 * density)), max(60, int(round(180 / density)))
    rng = np.random.default_rng(seed + 1)
    s = observe._Sampler(nature, start_s)
    sonde_lon, sonde_lat = observe._stations(rng, nature, stations)
    sfc_lon, sfc_lat = observe._stations(rng, nature, surface)
    rows: dict[str, list[dict]] = {"radiosonde": [], "surface": [], "aircraft": [], "satellite": []}
    for hour in range(start_s - 3 * HOUR, end_s + 3 * HOUR, HOUR):
        if hour % (12 * HOUR) == 0:
            rows["radiosonde"] += observe.radiosondes(s, rng, sonde_lon, sonde_lat, hour)
        if hour % (3 * HOUR) == 0:
            rows["surface"] += observe.surface_stations(s, rng, sfc_lon, sfc_lat, hour)
        rows["aircraft"] += observe.aircraft(s, rng, hour, flights)
        for sensor, platform, phase in observe.SATELLITES:
            rows["satellite"] += satellites.sounder(s, rng, hour, sensor, platform, phase, line_every)
        if on_hour:
            on_hour()
    counts = {k: int(sum(len(r["lon"]) for r in v)) for k, v in rows.items()}
    return _to_raw([r for v in rows.values() for r in v]), counts


def synthesize(out_dir: str | Path, start_s: int, days: float, level: int = 6, seed: int = 0,
               overwrite: bool = False, density: float = 1.0,
               on_step: Callable[[str], None] | None = None, planet_seed: int | None = None) -> SynthResult:
    """Write ``nature.nc``, ``static.nc`` and ``obs.nc`` for ``days`` days from ``start_s`` (a 6-hourly time).

    ``density`` scales the observing networks (see :func:`draw_observations`); ``planet_seed`` draws the
    statics (None: ``seed``, see :class:`NatureRun`).
    """
    if start_s % STEP:
        raise ValueError("start must be a synoptic time (00, 06, 12 or 18 UTC)")
    with single_threaded_transforms():
        return _synthesize(Path(out_dir), start_s, days, level, seed, overwrite, density, on_step, planet_seed)


def _synthesize(out: Path, start_s: int, days: float, level: int, seed: int, overwrite: bool, density: float,
                on_step: Callable[[str], None] | None, planet_seed: int | None) -> SynthResult:
    paths = {name: out / f"{name}.nc" for name in ("nature", "static", "obs")}
    for p in paths.values():
        check_writable(p, overwrite)  # fail before any work
    out.mkdir(parents=True, exist_ok=True)
    nature = NatureRun(level, seed=seed, planet_seed=planet_seed)
    end_s = start_s + int(days * 86400)
    times = list(range(start_s, end_s + 1, STEP))
    attrs = {"Conventions": "CF-1.13", "title": "healda synthetic nature run (OSSE truth)",
             "institution": "healda", "source": f"healda {__version__} synth (seed {seed})",
             "history": history_entry(), "healda_file": "nature"}
    with atomic_output(paths["nature"], overwrite) as tmp, AnalysisWriter(str(tmp), level, [0], attrs) as w:
        for t in times:
            w.write(np.array([t]), _stack(nature.fields(float(t - start_s)))[None, None])
            on_step and on_step("nature")
    with atomic_output(paths["static"], overwrite) as tmp:
        write_static(tmp, {"orog": nature.statics["orography"], "lfrac": nature.statics["land_fraction"]}, level,
                     {"synth_seed": seed}, history_entry())
    raw, counts = draw_observations(nature, start_s, end_s, seed, density,
                                    on_hour=(lambda: on_step("obs")) if on_step else None)
    with atomic_output(paths["obs"], overwrite) as tmp:
        write_canonical(tmp, raw, {"source": f"healda {__version__} synth (seed {seed})",
                                   "history": history_entry(), "comment": "OSSE observations drawn from nature.nc"})
    return SynthResult(paths["nature"], paths["static"], paths["obs"], counts, times)
