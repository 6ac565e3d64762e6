"""``healda plot``: a Mollweide map of any analysis, nature-run, static or packed-observation variable."""

from __future__ import annotations

from typing import Annotated

import typer

from healda_cli import console
from healda_cli.main import app


@app.command("plot")
def plot_cmd(
    file: Annotated[str, typer.Argument(help="Analysis, nature-run, static or packed-observation NetCDF.")],
    var: Annotated[str, typer.Option("--var", help="Variable to draw, e.g. z, t2m, orog, value_norm.")],
    output: Annotated[str, typer.Option("-o", "--output", help="PNG file to write.")],
    level: Annotated[float | None, typer.Option("--level", help="Pressure level in hPa (default: 500).")] = None,
    time: Annotated[int | None, typer.Option("--time", help="Index along time/analysis (default: last).")] = None,
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Replace an existing output.")] = False,
) -> None:
    """Draw one variable on a Mollweide map (PNG); prints the PNG path on stdout."""
    from healda_core.plot import plot_map

    path, title, defaults = plot_map(file, var, output, level=level, time=time, overwrite=overwrite)
    console.info(f"plotted {title}" + (f"; chose {', '.join(defaults)}" if defaults else ""))
    console.emit_path(path)
