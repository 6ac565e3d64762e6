"""``healda make-static``: orography + land fraction on HEALPix (NEST, CF-1.13) from lat-lon invariants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healda_cli import console
from healda_cli.main import app


@app.command("make-static")
def make_static(
    source: Annotated[Path, typer.Argument(help="Regular lat-lon NetCDF with geopotential (z) or orography (m) "
                                                "and a land-sea mask (lsm).", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output static file.")] = Path("static.nc"),
    level: Annotated[int, typer.Option("--level", help="HEALPix level (the checkpoint's level_in).")] = 6,
    orog_var: Annotated[str | None, typer.Option("--orog-var", help="Orography/geopotential variable "
                                                 "(default: detected).")] = None,
    lsm_var: Annotated[str | None, typer.Option("--lsm-var", help="Land-sea mask variable (default: "
                                                "detected).")] = None,
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Replace an existing output.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Build the two static inputs (orography in m, land fraction) by area-weighted averaging.

    Geopotential (m2 s-2, ERA5 `z`) is divided by g = 9.80665. The file holds physical values in NEST order
    with the CF-1.13 HEALPix grid mapping; the model z-scores them when it loads the file.

    Examples:
      healda make-static era5_invariants.nc -o static.nc
      healda make-static invariants.nc --level 2 -o static_l2.nc     # for the healda-tiny preset
    """
    import numpy as np

    from healda_core.errors import UsageError
    from healda_core.fileio import atomic_output, check_writable, history_entry
    from healda_core.static import make_static as build
    from healda_core.static import write_static

    if not 0 <= level <= 10:
        raise UsageError(f"--level must be in 0..10, got {level}")
    check_writable(output, overwrite)
    fields, attrs = build(source, level, orog_var, lsm_var)
    attrs["source_file"] = Path(source).name
    with atomic_output(output, overwrite) as tmp:
        write_static(tmp, fields, level, attrs, history_entry())
    land = float(np.mean(fields["lfrac"]))
    console.info(f"{source} → {output}: level {level}, {fields['orog'].size} cells, mean land fraction {land:.3f}, "
                 f"orography {fields['orog'].min():.0f}…{fields['orog'].max():.0f} m")
    if json_out:
        console.emit_json({"output": str(output), "level": level, "cells": int(fields["orog"].size),
                           "mean_land_fraction": land, **{k: str(v) for k, v in attrs.items()}})
    else:
        console.emit_path(output)
