"""Verification of one OSSE experiment: HealDA analyses, climatology and OI against the nature run.

Columns: ``independent`` (every analysis time of the independent realisation, the headline) and ``later``
(the held-out later times of the first training realisation, secondary). Scores pool the RMSE over the
column's times (:func:`~healda_core.synth.evaluate.mean_scores`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: column → (realisation, role of its times)
SOURCES = {"independent": ("test", "test"), "later": ("train0", "later")}


def verify(paths: dict[str, dict[str, str]], times: dict[str, dict[str, list[int]]], ckpt: Path,
           clim_mean: dict[str, np.ndarray], clim_std: dict[str, np.ndarray], level: int, device: str, w: Path
           ) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, np.ndarray]]]:
    """Scores ``{column: {method: {score: rmse}}}`` and the fields of the last independent time for the maps
    (``{"truth"|"healda"|"climatology"|"oi": {var: field}}``)."""
    from healda_core.assimilate import assimilate
    from healda_core.obs.readers import read_obs_file
    from healda_core.synth.evaluate import mean_scores, read_fields, scores
    from healda_core.synth.oi import oi_analysis

    out: dict[str, dict[str, dict[str, float]]] = {}
    maps: dict[str, dict[str, np.ndarray]] = {}
    for column, (name, role) in SOURCES.items():
        if not times[name][role]:
            continue
        p = paths[name]
        analysis_file = w / f"analysis-{column}.nc"
        assimilate([p[role]], ckpt, p["static"], analysis_file, device=device, overwrite=True)
        a_times, analyses = read_fields(analysis_file)
        n_times, nature = read_fields(p["nature"])
        raw, _ = read_obs_file(p["obs"])
        per: dict[str, list[dict[str, float]]] = {"healda": [], "climatology": [], "oi": []}
        for i, t in enumerate(a_times.tolist()):
            truth = {k: v[int(np.nonzero(n_times == t)[0][0])] for k, v in nature.items()}
            ana = {k: v[i] for k, v in analyses.items()}
            oi = oi_analysis(raw, t, clim_mean, clim_std, level)
            per["healda"].append(scores(ana, truth))
            per["climatology"].append(scores(clim_mean, truth))
            per["oi"].append(scores(oi, truth))
            if column == "independent" and i == len(a_times) - 1:
                maps = {"truth": truth, "healda": ana, "climatology": clim_mean, "oi": oi, "time": int(t)}
        out[column] = {m: mean_scores(v) for m, v in per.items()}
    return out, maps
