"""The ``pack-obs`` pipeline: raw observation files -> QC -> frames, pixels, sort -> one packed NetCDF.

:func:`pack_obs` is the one function the CLI calls: read (auto-detected readers), choose the analysis times
(given, or inferred), QC and normalise, frame, pixelise, counting-sort, write atomically. It returns a
:class:`PackSummary` accounting for every row (read / kept / dropped by reason, per sensor).

In memory (:func:`plan_pack`, :func:`pack_arrays`): pixels at ``level`` in PAD_XY order, flat index
``(b*T + t)*X' + pix``, O(N) stable counting sort. The arrays are what the packed NetCDF stores
(DATA §7b, :class:`~healda_core.obs.packed_schema.PackedObs`); :mod:`healda_core.obs.packed_write` writes them,
:mod:`healda_core.obs.packed` reads them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from jaxtyping import Int

from healda_core import grid
from healda_core.errors import UsageError, input_error
from healda_core.fileio import atomic_output, check_writable
from healda_core.obs import frames, vocab
from healda_core.obs.frames import counting_sort
from healda_core.obs.packed_schema import OBS_VARS, PackedObs
from healda_core.obs.packed_write import write_packed_columns
from healda_core.obs.qc import REASON_CODE, REASONS, QCOptions, QCResult, count_by_sensor, run_qc
from healda_core.obs.raw import NAT, RawObs, concat
from healda_core.obs.readers import read_obs_file

#: source column of RawObs of each stored per-obs variable (the others are computed)
_RAW_SOURCE = {"value_raw": "value", "time": "time_ns", "lat": "lat", "lon": "lon", "height": "height",
               "pressure_hpa": "pressure_hpa", "scan_angle": "scan_angle", "sat_zenith": "sat_zenith",
               "solar_zenith": "solar_zenith", "global_platform": "platform", "obs_type": "obs_type"}


@dataclass
class PackResult:
    """Packed arrays plus the bookkeeping of what was dropped.

    Attributes:
        packed: the :class:`PackedObs`. counts: (256, len(REASONS)) rows per (raw sensor id, reason).
        derived: conv rows whose height or pressure was derived, per report family and kind.
    """

    packed: PackedObs
    counts: Int[np.ndarray, "s r"]
    derived: dict[str, dict[str, int]]

_GATHER_CHUNK = 1 << 20  # output rows per np.take call: the index slice stays in cache


def _model_sensor(raw_sensor: np.ndarray) -> np.ndarray:
    return np.where(raw_sensor == vocab.CONV, vocab.CONV_PLEVEL, raw_sensor).astype(np.uint8)


def take(a: np.ndarray, idx: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """``a[idx]`` (as ``dtype``), gathered with ``np.take`` in cache-sized slices of ``idx``.

    ``np.take`` is ~1.5x faster than fancy indexing at 30 M rows. A same-size integer ``dtype`` is a
    reinterpretation, bit-identical to ``astype`` (two's complement), so it costs nothing.
    """
    dt = np.dtype(dtype or a.dtype)
    if dt != a.dtype and dt.kind in "iu" and a.dtype.kind in "iu" and dt.itemsize == a.dtype.itemsize:
        a = a.view(dt)
    if dt != a.dtype:
        return np.take(a, idx).astype(dt)
    out = np.empty(idx.size, dtype=dt)
    for s in range(0, idx.size, _GATHER_CHUNK):
        np.take(a, idx[s:s + _GATHER_CHUNK], out=out[s:s + _GATHER_CHUNK])
    return out


@dataclass
class PackPlan:
    """Where every packed observation comes from, before the column gathers.

    Attributes:
        header: the :class:`PackedObs` with every field but ``obs`` (empty): counts, sensor lengths, times.
        src: (N,) int64 raw row of each packed observation, in packed (flat pixel) order.
        pix: (N,) int32 pixel. sensor_id: (N,) uint8 model sensor id. counts_by, derived: as in
        :class:`PackResult`.
    """

    header: PackedObs
    src: Int[np.ndarray, " n"]
    pix: Int[np.ndarray, " n"]
    sensor_id: Int[np.ndarray, " n"]
    counts_by: Int[np.ndarray, "s r"]
    derived: dict[str, dict[str, int]]


@dataclass
class _Chunk:
    """One chunk of kept rows after framing, pixels and a local stable sort by flat key."""

    src: np.ndarray  # raw rows, sorted by key
    sensor_id: np.ndarray  # model sensor ids, same order
    key: np.ndarray  # flat keys, sorted
    counts: np.ndarray  # (n_buckets,) keys per bucket
    lengths: np.ndarray  # (n_sensors * B * T,) obs per sensor and frame
    in_frame: np.ndarray  # (rows of the chunk,) bool: in some frame of some analysis


def _frame_pixel_sort(raw: RawObs, kept_all: np.ndarray, analysis_s: list[int], n_frames: int, step_s: int,
                      level: int, rows_of_kept: slice) -> _Chunk:
    kept = kept_all[rows_of_kept]
    x, nb = grid.npix(level), len(analysis_s) * n_frames
    rows, bt = frames.assign_frames(take(raw.time_ns, kept), list(analysis_s), n_frames, step_s)
    in_frame = np.zeros(kept.size, dtype=bool)
    in_frame[rows] = True
    src = take(kept, rows)
    key = bt * x + frames.pixels(take(raw.lon, src), take(raw.lat, src), level)
    sid = np.take(_model_sensor(np.arange(256, dtype=np.uint8)), take(raw.sensor, src))
    lengths = np.bincount(sid.astype(np.int64) * nb + bt, minlength=len(vocab.SENSORS) * nb)
    order, counts = counting_sort(key, nb * x)
    return _Chunk(take(src, order), take(sid, order), take(key, order), counts, lengths, in_frame)


def _run_job(jobs: list[tuple], one: slice) -> None:
    frames.scatter_sorted(*jobs[one.start])
    jobs[one.start] = None  # release the chunk's sorted runs as soon as they are scattered


def plan_pack(
    raw: RawObs,
    analysis_s: list[int],
    *,
    n_frames: int = 8,
    step_s: int = 6 * 3600,
    level: int = 5,
    qc_options: QCOptions = QCOptions(),
    qc: QCResult | None = None,
) -> tuple[PackPlan, QCResult]:
    """QC (unless ``qc`` is given), frame, pixelise and counting-sort; no per-obs column is gathered yet.

    Chunks of kept rows are framed, pixelised and sorted by flat key on every core; their sorted runs are
    then scattered into the global stable order, the same as one global counting sort of the concatenated
    keys (:func:`~healda_core.obs.frames.chunk_bases`). Each chunk's bucket counts cost ``n_buckets`` int64,
    so a few analyses use small chunks and many analyses big ones.
    """
    qc = qc if qc is not None else run_qc(raw, qc_options)
    kept = np.flatnonzero(qc.reason == 0)
    x, nb, n_sensors = grid.npix(level), len(analysis_s) * n_frames, len(vocab.SENSORS)
    chunk = max(frames.ROW_CHUNK, -(-kept.size * nb * x // (1 << 24)))
    parts = frames.map_rows(partial(_frame_pixel_sort, raw, kept, analysis_s, n_frames, step_s, level),
                             kept.size, chunk)
    in_frame = np.concatenate([p.in_frame for p in parts]) if parts else np.zeros(0, bool)
    qc.reason[kept[~in_frame]] = REASON_CODE["outside_frames"]
    counts_by = count_by_sensor(raw.sensor, qc.reason)
    del kept, in_frame  # peak memory: release what is no longer needed as early as possible
    counts, bases = frames.chunk_bases([p.counts for p in parts])
    if not parts:
        counts = np.zeros(nb * x, np.int64)
    lengths = np.sum([p.lengths for p in parts], axis=0) if parts else np.zeros(n_sensors * nb, np.int64)
    lengths = lengths.reshape(n_sensors, len(analysis_s), n_frames).astype(np.int64)
    n = int(counts.sum())
    src, sensor_id = np.empty(n, np.int64), np.empty(n, np.uint8)
    jobs = [(base, p.key, [(src, p.src), (sensor_id, p.sensor_id)]) for base, p in zip(bases, parts)]
    del parts, bases
    frames.map_rows(partial(_run_job, jobs), len(jobs), 1)
    del jobs
    pix = (np.repeat(np.arange(counts.size, dtype=np.int64), counts) % x).astype(np.int32)  # sorted keys % x
    header = PackedObs(np.asarray(analysis_s, np.int64), n_frames, step_s, level, counts, {}, lengths)
    return PackPlan(header, src, pix, sensor_id, counts_by, qc.derived), qc


def column_sources(raw: RawObs, qc: QCResult, plan: PackPlan, consume: bool = False):
    """Yield ``(name, (source, index))`` for every :data:`OBS_VARS` entry, in order: the packed column is
    ``source[index]`` (``index`` None: ``source`` itself), with ``source`` already of the stored dtype.

    Lets a consumer gather chunk by chunk (e.g. on several threads) instead of materialising columns.
    With ``consume`` each raw column is dropped from ``raw`` after it is yielded (the consumer's reference
    keeps it alive only until it has been gathered), which lowers peak memory.
    """
    for name, dtype in OBS_VARS.items():
        attr = None
        if name == "sensor_id":
            item = (plan.sensor_id, None)
        elif name == "pix":
            item = (plan.pix, None)
        elif name == "value_norm":
            item = (qc.value_norm, plan.src)
        elif name == "global_channel":
            item = (qc.global_channel.view(np.uint16), plan.src)  # ids of kept rows are >= 0
        else:
            attr = _RAW_SOURCE[name]
            col = getattr(raw, attr)
            dt = np.dtype(dtype)
            same_int = col.dtype.kind in "iu" and dt.kind in "iu" and col.dtype.itemsize == dt.itemsize
            item = (col.view(dtype) if same_int else col.astype(dtype, copy=False), plan.src)
            del col
        yield name, item
        if consume and attr is not None:
            setattr(raw, attr, np.zeros(0, getattr(raw, attr).dtype))


def gather_columns(raw: RawObs, qc: QCResult, plan: PackPlan, consume: bool = False):
    """Yield ``(name, column)`` for every :data:`OBS_VARS` entry, in order, gathered in packed order.

    With ``consume`` each raw column is released as soon as it is gathered (lower peak memory).
    """
    for name, (source, index) in column_sources(raw, qc, plan, consume):
        yield name, source if index is None else take(source, index)
        del source


def pack_arrays(
    raw: RawObs,
    analysis_s: list[int],
    *,
    n_frames: int = 8,
    step_s: int = 6 * 3600,
    level: int = 5,
    qc_options: QCOptions = QCOptions(),
    qc: QCResult | None = None,
    consume: bool = False,
) -> PackResult:
    """QC, frame, pixelise and sort ``raw`` for the analyses ``analysis_s`` (s since 1970).

    ``raw`` is modified in place (derived pressure/height, conv platform set to 0); with ``consume`` its
    columns are released while gathering, so ``raw`` is unusable afterwards but peak memory stays lower.
    """
    plan, qc = plan_pack(raw, analysis_s, n_frames=n_frames, step_s=step_s, level=level,
                         qc_options=qc_options, qc=qc)
    h = plan.header
    obs = dict(gather_columns(raw, qc, plan, consume))
    packed = PackedObs(h.analysis_s, h.n_frames, h.step_s, h.level, h.counts, obs, h.sensor_lengths)
    return PackResult(packed, plan.counts_by, plan.derived)


Progress = Callable[[str, int, int], None]
SYNOPTIC_S = 6 * 3600


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
    warnings: list[str] = field(default_factory=list)

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


def choose_times(raw: RawObs, times: Sequence[int] | None, reason: np.ndarray,
                 step_s: int) -> tuple[list[int], str | None]:
    """Analysis times: the given ones, else the files' cycle time, else the synoptic times holding obs that
    passed QC (``reason``: (N,) QC drop codes, 0 = kept)."""
    if times:
        return sorted(set(int(t) for t in times)), None
    if raw.cycle_times:
        return [max(raw.cycle_times)], "cycle time in file attributes (latest)"
    t = raw.time_ns[(reason == 0) & (raw.time_ns != NAT)]
    inferred = frames.infer_synoptic_times(t, step_s)
    if not inferred:
        raise input_error(", ".join(raw.sources), None, "no observation passed QC, so no analysis time can be "
                          f"inferred (give --time); {_drop_summary(reason)}")
    return inferred, "synoptic times whose last frame holds observations"


def _drop_summary(reason: np.ndarray) -> str:
    """``"dropped: bad_latlon 12, bad_time 3"``: the QC drop reasons of every row, most frequent first."""
    if reason.size == 0:
        return "the files hold no rows"
    counts = np.bincount(reason, minlength=len(REASONS))
    top = sorted(((int(c), REASONS[r]) for r, c in enumerate(counts) if r and c), reverse=True)
    return "dropped: " + ", ".join(f"{name} {c}" for c, name in top)


def _sensor_rows(counts: np.ndarray) -> list[SensorCounts]:
    rows = []
    for sid in np.flatnonzero(counts.sum(axis=1)):
        # conv rows are packed as conv-plevel channels: name them as the packed file does
        name = vocab.SENSORS[vocab.CONV_PLEVEL if sid == vocab.CONV else sid].name if sid < len(vocab.SENSORS) \
            else "unknown"
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
    strict: bool = False,
) -> PackSummary:
    """Pack raw observation files into ``output`` (default: first input ``x.nc`` -> ``x.packed.nc``).

    Args:
        times: analysis times, s since 1970 (None: inferred). n_frames, step_s: frames per analysis and
            their spacing. level: HEALPix level of the pixels (the model level, 5). history: the CF ``history``
            line to record (None: none). complevel: zlib level (0: uncompressed). strict: refuse (before
            writing anything) what is otherwise a warning in ``PackSummary.warnings``: a given analysis time that
            is not a synoptic hour (UsageError), an analysis time that no observation falls in (InputError).
    """
    if n_frames < 1 or step_s <= 0 or step_s % 2:
        raise UsageError("--frames must be >= 1 and --step a positive even number of seconds")
    out = Path(output) if output is not None else default_output(inputs[0])
    check_writable(out, overwrite)  # fail fast, before reading anything
    warnings = [f"analysis time {frames.format_time(t)} is not a synoptic hour (00, 06, 12, 18 UTC), which HealDA "
                "was trained on" for t in times or () if t % SYNOPTIC_S]
    if strict and warnings:
        raise UsageError(warnings[0] + " (--strict)")
    raw, fmts = read_inputs(inputs, progress)
    qc = run_qc(raw, qc_options)
    analysis, inferred = choose_times(raw, times, qc.reason, step_s)
    sources = list(raw.sources)
    plan, qc = plan_pack(raw, analysis, n_frames=n_frames, step_s=step_s, level=level, qc=qc)
    per_analysis = np.asarray(plan.header.sensor_lengths).sum(axis=(0, 2))
    empty = [frames.format_time(t) for t, n in zip(analysis, per_analysis) if n == 0]
    if empty:
        msg = f"no observation falls in the window of analysis time {', '.join(empty)}"
        if strict:
            raise input_error(", ".join(raw.sources), "time", msg + " (--strict)")
        warnings.append(msg + "; its frames are empty")
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
        sensors=_sensor_rows(plan.counts_by), derived=plan.derived, warnings=warnings,
    )
