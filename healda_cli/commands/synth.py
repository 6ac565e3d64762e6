"""``healda synth``: a synthetic nature run and observations drawn from it (OSSE inputs)."""

from __future__ import annotations

from typing import Annotated

import typer

from healda_cli import console
from healda_cli.main import app
from healda_core.obs import frames


@app.command("synth")
def synth_cmd(
    out_dir: Annotated[str, typer.Option("-o", "--output", help="Directory for nature.nc, static.nc, obs.nc.")],
    start: Annotated[str, typer.Option("--start", help="First time of the nature run (00/06/12/18 UTC).")]
    = "2024-01-01T00",
    days: Annotated[float, typer.Option("--days", help="Length of the nature run in days.")] = 3.0,
    level: Annotated[int, typer.Option("--level", help="HEALPix level of the fields (the model's level_in).")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (fields and observation errors).")] = 0,
    density: Annotated[float, typer.Option("--density", help="Scale of the observing networks (1 = 250 sondes, "
                                           "500 surface stations, 25 flights/h, a scan line every 3 min).")] = 1.0,
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Replace existing outputs.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print paths and counts as JSON on stdout.")] = False,
) -> None:
    """Write a nature run (truth every 6 h, 74 channels), its static fields and observations drawn from it.

    Networks: radiosondes (00/12 UTC), surface pressure stations, aircraft at 250 hPa and three polar-orbiting
    microwave sounders (AMSU-A on metop-b and n19, ATMS on n20), with Gaussian errors.
    """
    from healda_core.synth.run import synthesize

    t0 = frames.parse_time(start)
    hours = int(days * 24) + 6
    with console.progress() as bar:
        task = bar.add_task("synth", total=int(days * 4) + 1 + hours)
        res = synthesize(out_dir, t0, days, level, seed, overwrite, density, on_step=lambda _k: bar.advance(task))
    console.info("observations: " + ", ".join(f"{v} {k}" for k, v in res.counts.items()))
    if json_out:
        console.emit_json({"nature": str(res.nature), "static": str(res.static), "obs": str(res.obs),
                           "counts": res.counts, "times": [frames.format_time(t) for t in res.times]})
    else:
        for p in (res.nature, res.static, res.obs):
            console.emit_path(p)
