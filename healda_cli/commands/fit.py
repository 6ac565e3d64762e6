"""``healda fit``: O − A (and O − B) of an analysis at conventional observations; table on stderr, path on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from healda_cli import console
from healda_cli.main import app
from healda_core.obs import frames


def _fmt(x: float | None, units: str) -> str:
    if x is None:
        return "-"
    return f"{x:.2e}" if units == "kg kg-1" else f"{x:.3f}"


def _table(s) -> Table:
    bg = s.background is not None
    table = Table(title=f"fit: {s.n_fitted} of {s.n_read} observations, window {s.window}", title_justify="left")
    cols = ["platform", "variable", "units", "count", "O-A bias", "O-A rmse", *(["O-B bias", "O-B rmse"] if bg else [])]
    for c in cols:
        table.add_column(c, justify="left" if c in ("platform", "variable", "units") else "right")
    for r in s.rows:
        vals = [r.platform, r.variable, r.units, str(r.count), _fmt(r.oma_bias, r.units), _fmt(r.oma_rmse, r.units)]
        if bg:
            vals += [_fmt(r.omb_bias, r.units), _fmt(r.omb_rmse, r.units)]
        table.add_row(*vals)
    return table


@app.command("fit")
def fit_cmd(
    analysis: Annotated[str, typer.Argument(help="Analysis (or nature-run) NetCDF written by healda.")],
    observations: Annotated[list[str], typer.Argument(help="Observation files: raw (any reader) or packed.")],
    output: Annotated[str | None, typer.Option("-o", "--output", help="IODA-style fit file [default: "
                                               "ANALYSIS with .fit.nc].")] = None,
    background: Annotated[str | None, typer.Option("--background", "-b", help="Background in the analysis "
                                                   "layout (e.g. a climatology) for O-B.")] = None,
    window: Annotated[str, typer.Option("--window", help="Half-width of the time window around each "
                                        "analysis time.")] = "3h",
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Replace an existing output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON on stdout.")] = False,
) -> None:
    """Interpolate the analysis to every conventional observation; write O-A per observation, print the table."""
    from healda_core.fit import fit_obs

    a = Path(analysis)
    out = output or str(a.with_name(a.name.removesuffix(".nc") + ".fit.nc"))
    summary = fit_obs(analysis, observations, out, background=background, overwrite=overwrite,
                      window_s=frames.parse_duration(window))
    if console.state.verbosity >= 0:
        console.err.print(_table(summary))
    skipped = {k: v for k, v in summary.not_fitted.items() if v}
    if skipped:
        console.info("not fitted: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items()))
    if as_json:
        console.emit_json(summary.to_dict())
    else:
        console.emit_path(summary.output)
