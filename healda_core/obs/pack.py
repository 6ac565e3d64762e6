"""The ``pack-obs`` pipeline: raw observation files -> one packed observation NetCDF.

:func:`pack_obs` is the one function the CLI calls: read (auto-detected readers), choose the analysis times
(given, or inferred), QC and normalise, frame, pixelise, counting-sort, write atomically. It returns a
:class:`PackSummary` accounting for every row (read / kept / dropped by reason, per sensor).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from healda_core.errors import UsageError, input_error
from healda_core.fileio import atomic_output, check_writable
from healda_core.obs import frames, vocab
from healda_core.obs.packed_write import write_packed_columns
from healda_core.obs.packing import column_sources, plan_pack
from healda_core.obs.qc import REASONS, QCOptions, run_qc
from healda_core.obs.raw import NAT, RawObs, concat
from healda_core.obs.readers import read_obs_file

Progress = Callable[[str, int, int], None]


@dataclass
class SensorCounts:
    """Rows of one raw sensor: read, kept (packed at least once) and dropped by reason."""

    sensor: str
    read: int
    kept: int
    dropped: dict[str, int]


@dataclass
class PackSummary:
    """What :func:`pack_obs` did; ``to_dict`` is the ``--json`` output."""

    output: str
    inputs: list[str]
    formats: list[str]
    analysis_times: list[str]
    times_inferred_from: str | None
    n_frames: int
    step: str
    level: int
    n_packed: int
    sensors: list[SensorCounts]
    derived: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def default_output(first_input: str | os.PathLike) -> Path:
    """``raw.nc`` -> ``raw.packed.nc`` (beside the input; ``.nc4`` and no suffix work too)."""
    p = Path(first_input)
    stem = p.name[: -len(p.suffix)] if p.suffix in (".nc", ".nc4", ".netcdf") else p.name
    return p.with_name(f"{stem}.packed.nc")


def read_inputs(paths: Sequence[str | os.PathLike], progress: Progress | None = None) -> tuple[RawObs, list[str]]:
    """Read and concatenate every input file."""
    if not paths:
        raise UsageError("no input files")
    parts, fmts = [], []
    for i, path in enumerate(paths):
        raw, fmt = read_obs_file(path)
        parts.append(raw)
        fmts.append(fmt)
        if progress:
            progress("read", i + 1, len(paths))
    return concat(parts), fmts


def choose_times(raw: RawObs, times: Sequence[int] | None, reason_ok: np.ndarray, step_s: int) -> tuple[list[int], str | None]:
    """Analysis times: the given ones, else the files' cycle time, else the synoptic times holding obs."""
    if times:
        return sorted(set(int(t) for t in times)), None
    if raw.cycle_times:
        return [max(raw.cycle_times)], "cycle time in file attributes (latest)"
    t = raw.time_ns[reason_ok & (raw.time_ns != NAT)]
    inferred = frames.infer_synoptic_times(t, step_s)
    if not inferred:
        raise input_error(", ".join(raw.sources), "time", "no valid observation times; cannot infer analysis "
                          "times (give --time)")
    return inferred, "synoptic times whose last frame holds observations"


def _sensor_rows(counts: np.ndarray) -> list[SensorCounts]:
    rows = []
    for sid in np.flatnonzero(counts.sum(axis=1)):
        name = vocab.SENSORS[sid].name if sid < len(vocab.SENSORS) else "unknown"
        c = counts[sid]
        dropped = {REASONS[r]: int(c[r]) for r in range(1, len(REASONS)) if c[r]}
        rows.append(SensorCounts(name, int(c.sum()), int(c[0]), dropped))
    return rows


def pack_obs(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike | None = None,
    *,
    times: Sequence[int] | None = None,
    n_frames: int = 8,
    step_s: int = 6 * 3600,
    level: int = 5,
    qc_options: QCOptions = QCOptions(),
    overwrite: bool = False,
    history: str | None = None,
    complevel: int = 1,
    progress: Progress | None = None,
) -> PackSummary:
    """Pack raw observation files into ``output`` (default: first input ``x.nc`` -> ``x.packed.nc``).

    Args:
        times: analysis times, s since 1970 (None: inferred). n_frames, step_s: frames per analysis and
            their spacing. level: HEALPix level of the pixels (the model level, 5). history: the CF ``history``
            line to record (None: none). complevel: zlib level (0: uncompressed).
    """
    if n_frames < 1 or step_s <= 0 or step_s % 2:
        raise UsageError("--frames must be >= 1 and --step a positive even number of seconds")
    out = Path(output) if output is not None else default_output(inputs[0])
    check_writable(out, overwrite)  # fail fast, before reading anything
    raw, fmts = read_inputs(inputs, progress)
    qc = run_qc(raw, qc_options)
    analysis, inferred = choose_times(raw, times, qc.reason == 0, step_s)
    sources = list(raw.sources)
    plan, qc = plan_pack(raw, analysis, n_frames=n_frames, step_s=step_s, level=level, qc=qc)
    attrs: dict[str, object] = {"healda_input_files": [str(s) for s in sources],
                                "healda_input_file_number": np.int32(len(sources)),
                                "healda_qc_options": asdict(qc_options), "healda_derived": plan.derived}
    if history:
        attrs["history"] = history
    if progress:
        progress("write", 0, 1)
    with atomic_output(out, overwrite) as tmp:  # columns are gathered while earlier ones are compressed
        write_packed_columns(tmp, plan.header, attrs, column_sources(raw, qc, plan, consume=True),
                             complevel=complevel)
    del raw, qc
    return PackSummary(
        output=str(out), inputs=[str(s) for s in sources], formats=fmts,
        analysis_times=[frames.format_time(t) for t in analysis], times_inferred_from=inferred,
        n_frames=n_frames, step=frames.iso_duration(step_s), level=level, n_packed=plan.header.n_obs,
        sensors=_sensor_rows(plan.counts_by), derived=plan.derived,
    )
