"""The demo report: ``report.md`` with the score tables (mean ± spread over seeds), a bar chart of RMSE by
score and method, and maps of every headline score (truth, HealDA, OI and climatology errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from healda_core.obs.frames import format_time
from healda_core.plot import draw_healpix
from healda_core.synth.evaluate import HEADLINE, UNITS

METHODS = ("healda", "climatology", "oi")
LABELS = {"healda": "HealDA", "climatology": "climatology", "oi": "OI"}
LEVELS = (1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50)


def _field(f: dict[str, np.ndarray], var: str, lev: int | None) -> np.ndarray:
    if var == "wind":
        k = LEVELS.index(lev)
        return np.hypot(f["u"][k], f["v"][k])
    return f[var] if lev is None else f[var][LEVELS.index(lev)]


def _error(f: dict[str, np.ndarray], truth: dict[str, np.ndarray], var: str, lev: int | None) -> np.ndarray:
    """Analysis − truth; for wind the magnitude of the vector error."""
    if var == "wind":
        k = LEVELS.index(lev)
        return np.hypot(f["u"][k] - truth["u"][k], f["v"][k] - truth["v"][k])
    return _field(f, var, lev) - _field(truth, var, lev)


def _maps(w: Path, fields: dict, seed: int) -> list[str]:
    """Truth, HealDA analysis and the three methods' errors, on one colour scale per score."""
    images, when = [], format_time(fields["time"])
    truth = fields["truth"]
    for name, var, lev in HEADLINE:
        tru, ana = _field(truth, var, lev), _field(fields["healda"], var, lev)
        lo, hi = float(min(tru.min(), ana.min())), float(max(tru.max(), ana.max()))
        errs = {m: _error(fields[m], truth, var, lev) for m in METHODS}
        e_max = float(max(np.abs(e).max() for e in errs.values()))
        panels = [("truth", tru, "viridis", lo, hi, "nature run"), ("healda", ana, "viridis", lo, hi, "HealDA analysis")]
        cmap, e_lo = ("magma_r", 0.0) if var == "wind" else ("RdBu_r", -e_max)
        panels += [(f"{m}_error", errs[m], cmap, e_lo, e_max, f"{LABELS[m]} − truth") for m in METHODS]
        for tag, data, cm, vmin, vmax, label in panels:
            png = f"map_{name}_{tag}.png"
            title = f"{label}: {name}, {when} (independent realisation, seed {seed})"
            if tag.endswith("error") and var == "wind":
                title = f"|{label}| (vector error): {name}, {when} (seed {seed})"
            draw_healpix(data, w / png, title, UNITS[name], cmap=cm, vmin=vmin, vmax=vmax, overwrite=True)
            images.append(png)
    return images


def _bar_chart(w: Path, summary: dict) -> str:
    """RMSE by headline score and method, relative to climatology (mean over seeds, whiskers: spread)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, _v, _l in HEADLINE]
    ind = summary["independent"]
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    x = np.arange(len(names))
    for i, m in enumerate(METHODS):
        ref = np.array([ind["climatology"][n]["mean"] for n in names])
        mean = np.array([ind[m][n]["mean"] for n in names]) / ref
        std = np.array([ind[m][n]["std"] for n in names]) / ref
        ax.bar(x + (i - 1) * 0.27, mean, 0.27, yerr=std, capsize=3, label=LABELS[m])
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, names)
    ax.set_ylabel("RMSE / climatology RMSE")
    ax.set_title("RMSE on the independent realisation (mean over seeds, whiskers: standard deviation)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(w / "rmse_bars.png")
    plt.close(fig)
    return "rmse_bars.png"


def _table(summary: dict, column: str, wins: dict | None) -> list[str]:
    head = "| score | unit | HealDA | climatology | OI |" + (" beats climatology | beats OI |" if wins else "")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for name, _v, _l in HEADLINE:
        cells = [f"{summary[column][m][name]['mean']:.4g} ± {summary[column][m][name]['std']:.2g}" for m in METHODS]
        row = f"| {name} | {UNITS[name]} | " + " | ".join(cells) + " |"
        if wins:
            row += " " + " | ".join("yes" if wins[name][k] else "**no**" for k in ("vs_climatology", "vs_oi")) + " |"
        lines.append(row)
    return lines


def write_report(w: Path, summary: dict, wins: dict, per_seed: dict, settings, recipe) -> Path:
    """Write ``report.md``, ``rmse_bars.png`` and the maps (first seed) into ``w``; returns the report path."""
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]
    images = [_bar_chart(w, summary)] + _maps(w, first["fields"], seeds[0])
    won = [n for n, v in wins.items() if v["vs_climatology"]]
    lost = [n for n, v in wins.items() if not v["vs_climatology"]]
    lines = ["# healda demo: an observing-system simulation experiment", "",
             (f"Recipe `{settings.recipe}`, seeds {', '.join(map(str, seeds))}. Per seed: {recipe.n_train} training "
             f"nature-run realisations of {recipe.days:g} days and one independent realisation of "
             f"{recipe.test_days:g} days (own spectrum, own observing network and errors, own period), observed by "
             "radiosondes, surface stations, aircraft and three microwave sounders. HealDA (preset "
             f"`{recipe.train.preset}`) trains from scratch on the training realisations for "
             f"{recipe.train.minutes:g} minutes, then analyses the independent realisation. Scores are global "
             "RMSEs against the nature run (wind: vector RMSE), mean ± standard deviation over seeds. A score "
             "counts as won only if it is won for every seed."), "",
             "## Independent realisation (headline)", ""]
    lines += _table(summary, "independent", wins)
    verdict = f"HealDA beats climatology on {len(won)} of {len(wins)} headline scores"
    lines += ["", verdict + (f"; not on {', '.join(lost)}." if lost else "."), ""]
    if "later" in summary:
        lines += ["## Later times of the first training realisation (secondary)", "",
                  "The same trajectory the model trained on, at held-out later times: the easier test.", ""]
        lines += _table(summary, "later", None) + [""]
    head = "| seed | steps | " + " | ".join(f"{n} H / C / OI" for n, _v, _l in HEADLINE) + " |"
    lines += ["## Per seed (independent realisation)", "", head, "|---" * (len(HEADLINE) + 2) + "|"]
    for s in seeds:
        sc = per_seed[s]["scores"]["independent"]
        lines.append(f"| {s} | {per_seed[s]['train_steps']} | " + " | ".join(
            " / ".join(f"{sc[m][n]:.4g}" for m in METHODS) for n, _v, _l in HEADLINE) + " |")
    lines += ["", ("*Climatology*: the mean of the training realisations over their training times. *OI*: "
              "univariate optimal interpolation per level of the in-situ observations (sondes, aircraft; geopotential "
              "from sonde heights; msl from surface-station pressures; t2m from the 1000 hPa increment) on the "
              "climatology, Gaussian background-error correlations (800 km), climatological error variances, "
              "observation errors as drawn; it uses no radiances."), "",
              "Stage timings per seed (s): " + "; ".join(
                  f"seed {s}: " + ", ".join(f"{k} {v}" for k, v in per_seed[s]["timings"].items()) for s in seeds),
              "", "## Charts and maps", ""]
    lines += [f"![{p}]({p})" for p in images]
    report = w / "report.md"
    tmp = w / "report.md.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(report)
    return report
