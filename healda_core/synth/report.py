"""The demo report: ``report.md`` with the score table and PNG maps (truth, analysis, error, coverage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from healda_core.obs import vocab
from healda_core.obs.frames import format_time
from healda_core.plot import draw_healpix, draw_points
from healda_core.synth.evaluate import HEADLINE, read_fields

METHODS = ("healda", "climatology", "oi")
MAPS = (("z", 500, "geopotential", "m2 s-2"), ("t", 850, "temperature", "K"))
LEVELS = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)


def _maps(w: Path, nature: Path, t_s: int, oi: dict[str, np.ndarray]) -> list[str]:
    n_times, truth = read_fields(nature)
    a_times, analysis = read_fields(w / "analysis.nc")
    ti, ai = int(np.nonzero(n_times == t_s)[0][0]), int(np.nonzero(a_times == t_s)[0][0])
    images = []
    for var, lev, name, units in MAPS:
        k = LEVELS.index(lev)
        tru, ana = truth[var][ti][k], analysis[var][ai][k]
        lo, hi = float(min(tru.min(), ana.min())), float(max(tru.max(), ana.max()))
        err_max = float(np.abs(ana - tru).max())
        when = format_time(t_s)
        for tag, field, cmap, vmin, vmax in (
            ("truth", tru, "viridis", lo, hi), ("analysis", ana, "viridis", lo, hi),
            ("error", ana - tru, "RdBu_r", -err_max, err_max), ("oi_error", oi[var][k] - tru, "RdBu_r", -err_max, err_max),
        ):
            png = f"{tag}_{var}{lev}.png"
            label = {"truth": "nature run", "analysis": "HealDA analysis", "error": "HealDA analysis − truth",
                     "oi_error": "OI analysis − truth"}[tag]
            draw_healpix(field, w / png, f"{label}: {lev} hPa {name}, {when}", units, cmap=cmap, vmin=vmin, vmax=vmax,
                         overwrite=True)
            images.append(png)
    return images


def _coverage(w: Path, obs: Path, t_s: int) -> str:
    from healda_core.obs.readers import read_obs_file

    raw, _ = read_obs_file(obs)
    sec = raw.time_ns // 10**9
    sel = (sec >= t_s - 3 * 3600) & (sec < t_s + 3 * 3600)
    names = [vocab.SENSORS[int(s)].name for s in raw.sensor[sel]]
    codes = {n: i for i, n in enumerate(sorted(set(names)))}
    draw_points(raw.lon[sel], raw.lat[sel], np.array([codes[n] for n in names]), w / "coverage.png",
                f"observations within ±3 h of {format_time(t_s)}: " + ", ".join(f"{i}={n}" for n, i in codes.items()),
                "sensor", cmap="tab10", overwrite=True, size=3.0)
    return "coverage.png"


def write_report(w: Path, scores: dict[str, dict[str, float]], syn, last_time: int,
                 oi_last: dict[int, dict[str, np.ndarray]], steps: int, timings: dict[str, float]) -> Path:
    """Write ``report.md`` and its images into ``w``; returns the report path."""
    images = _maps(w, syn.nature, last_time, oi_last[last_time])
    images.append(_coverage(w, syn.obs, last_time))
    lines = ["# healda demo: an observing-system simulation experiment", "",
             "A synthetic nature run (`synth/nature.nc`) is observed by radiosondes, surface stations, aircraft and "
             "three microwave sounders (`synth/obs.nc`). HealDA (preset `healda-demo`) is trained on the earlier "
             f"analysis times for {steps} steps, then analyses the held-out times. Scores are global RMSEs against "
             "the nature run over the held-out times (wind: vector RMSE).", "",
             "| score | unit | HealDA | climatology | OI |", "|---|---|---|---|---|"]
    units = {"z500": "m² s⁻²", "t850": "K", "wind250": "m s⁻¹", "q700": "kg kg⁻¹", "t2m": "K", "msl": "Pa"}
    for name, _var, _lev in HEADLINE:
        lines.append(f"| {name} | {units[name]} | " + " | ".join(f"{scores[m][name]:.4g}" for m in METHODS) + " |")
    lines += ["", "*Climatology*: mean of the nature run over the training times. *OI*: univariate optimal "
              "interpolation per level of the in-situ observations (sondes, aircraft; geopotential from sonde "
              "heights) on the climatology, Gaussian background-error correlations (800 km), observation errors as "
              "drawn; it uses no radiances and keeps climatological surface fields.", "",
              "Stage timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()), "", "## Maps", ""]
    lines += [f"![{p}]({p})" for p in images]
    report = w / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
