"""``healda pack-obs``: raw observation files -> packed observation NetCDF (stdout: the output path)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.table import Table

from healda_cli import console
from healda_cli.main import app
from healda_core.errors import UsageError
from healda_core.fileio import history_entry
from healda_core.obs import frames, vocab
from healda_core.obs.pack import PackSummary, pack_obs
from healda_core.obs.qc import REASONS, QCOptions
from healda_core.obs.stdatm import DERIVED


def _inputs(paths: list[str]) -> list[str]:
    """Expand ``-`` into the paths read from stdin (one per line)."""
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.extend(line.strip() for line in sys.stdin.read().splitlines() if line.strip())
        else:
            out.append(p)
    if not out:
        raise UsageError("no input files (stdin gave none)")
    return _unique(out)


def _unique(paths: list[str]) -> list[str]:
    """The paths with repeats of the same file removed (first kept), each repeat warned about."""
    seen: dict[str, str] = {}
    out = []
    for p in paths:
        key = os.path.realpath(p)
        if key in seen:
            console.warn(f"{p}: the same file as {seen[key]}; packed once")
            continue
        seen[key] = p
        out.append(p)
    return out


def _times(time: list[str] | None, start: str | None, end: str | None, every: str) -> list[int] | None:
    if time and (start or end):
        raise UsageError("use either --time or --start/--end, not both")
    if bool(start) != bool(end):
        raise UsageError("--start and --end go together")
    if start and end:
        return frames.time_range(frames.parse_time(start), frames.parse_time(end), frames.parse_duration(every))
    return [frames.parse_time(t) for t in time] if time else None


def _table(s: PackSummary) -> Table:
    reasons = [r for r in REASONS[1:] if any(r in row.dropped for row in s.sensors)]
    table = Table(title=f"pack-obs: {s.n_packed} observations packed", title_justify="left")
    for col in ("sensor", "read", "kept", *reasons):
        table.add_column(col.replace("_", " "), justify="left" if col == "sensor" else "right")
    for row in s.sensors:
        table.add_row(row.sensor, str(row.read), str(row.kept), *(str(row.dropped.get(r, 0)) for r in reasons))
    return table


def _report(s: PackSummary) -> None:
    how = f" (inferred from {s.times_inferred_from})" if s.times_inferred_from else ""
    console.info(f"analysis times{how}: {', '.join(s.analysis_times)}")
    for w in s.warnings:
        console.warn(w)
    if console.state.verbosity >= 0:
        console.err.print(_table(s))
    if s.derived and console.state.verbosity >= 0:
        console.err.print(_derived_table(s.derived))


def _derived_table(derived: dict[str, dict[str, int]]) -> Table:
    kinds = [k for k in DERIVED[1:] if any(k in row for row in derived.values())]
    table = Table(title="heights and pressures derived (conventional rows)", title_justify="left")
    for col in ("platform", *kinds):
        table.add_column(col.replace("_", " "), justify="left" if col == "platform" else "right")
    for fam, row in derived.items():
        table.add_row(fam, *(str(row.get(k, 0)) for k in kinds))
    return table


@app.command("pack-obs")
def pack_obs_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Raw observation files (canonical CF point, IODA, GSI diag); "
                                                "'-' reads paths from stdin.")],
    output: Annotated[str | None, typer.Option("-o", "--output", help="Output file (default: first input "
                                                  "with .packed.nc).")] = None,
    time: Annotated[list[str] | None, typer.Option("--time", "-t", help="Analysis time (repeatable), e.g. "
                                                      "2024-01-02T06:00Z or 2024010206.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First analysis time of a range.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last analysis time of a range (inclusive).")] = None,
    every: Annotated[str, typer.Option("--every", help="Spacing of the --start/--end range.")] = "6h",
    level: Annotated[int, typer.Option("--level", help="HEALPix level of the pixels (level_model).")] = 5,
    n_frames: Annotated[int, typer.Option("--frames", help="Frames per analysis (T).")] = 8,
    step: Annotated[str, typer.Option("--step", help="Frame spacing, e.g. 6h; window is ±step/2.")] = "6h",
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Replace an existing output.")] = False,
    no_history: Annotated[bool, typer.Option("--no-history", help="Do not record the command in 'history'.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    complevel: Annotated[int, typer.Option("--complevel", min=0, max=9, help="Deflate level (shuffle on; 1-3 via ISA-L, 4-9 via zlib); 0 = uncompressed.")] = 1,
    sensor: Annotated[list[str] | None, typer.Option("--sensor", help="Sensors to keep (repeatable) "
                                                        "(default: the v2 recipe's).")] = None,
    conv_min_pressure: Annotated[float, typer.Option("--conv-min-pressure", help="Non-GPS conv floor, hPa.")] = 1.0,
    all_winds: Annotated[bool, typer.Option("--all-winds", help="Keep non-in-situ (satellite) winds.")] = False,
    all_gps: Annotated[bool, typer.Option("--all-gps", help="Keep gps_t and gps_q, not only bending angle.")] = False,
    qc_filter: Annotated[bool, typer.Option("--qc-filter", help="Keep only rows GSI accepted (flags).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Make warnings errors: a non-synoptic --time, an "
                                         "analysis time no observation falls in.")] = False,
    drop_channel: Annotated[list[int] | None, typer.Option("--drop-channel", help="Global channel id to "
                                                              "drop (repeatable).")] = None,
) -> None:
    """Pack raw observations into the packed observation NetCDF that assimilate and train read."""
    if quiet:
        console.state.verbosity = -1
    for s in sensor or ():
        if s not in vocab.SENSOR_BY_NAME:
            raise UsageError(f"--sensor {s!r}: unknown; choose from {', '.join(vocab.SENSOR_BY_NAME)}")
    opts = QCOptions(sensors=tuple(sensor) if sensor else vocab.V2_SENSORS, conv_min_pressure_hpa=conv_min_pressure,
                     conv_uv_in_situ_only=not all_winds, conv_gps_level1_only=not all_gps, qc_filter=qc_filter,
                     drop_channels=tuple(drop_channel or ()))
    paths = _inputs(inputs)
    with console.progress() as bar:
        task = bar.add_task("pack-obs", total=len(paths) + 1)
        summary = pack_obs(
            paths, output, times=_times(time, start, end, every), n_frames=n_frames,
            step_s=frames.parse_duration(step), level=level, qc_options=opts, overwrite=overwrite,
            history=None if no_history else history_entry(), complevel=complevel, strict=strict,
            progress=lambda stage, i, n: bar.update(task, completed=i if stage == "read" else len(paths),
                                                    description=stage),
        )
    _report(summary)
    if as_json:
        console.emit_json(summary.to_dict())
    else:
        console.emit_path(summary.output)
