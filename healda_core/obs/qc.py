"""Row-level QC (DATA §1.3), global channel ids and normalisation, vectorised over all rows.

Each row gets one drop reason (the first failing check, in :data:`REASONS` order) or 0 (kept). Absent values
(``missing_value``) are counted apart from values outside the valid range (``bad_value``). Conventional rows
with only one of pressure and height are completed first (:func:`stdatm.complete_vertical`: from the report's
own levels, else the standard atmosphere; counted per report family in :class:`QCResult.derived`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float, Int

from healda_core.obs import frames, stats, stdatm, vocab
from healda_core.obs.raw import NAT, TIME_MAX_NS, TIME_MIN_NS, RawObs

#: code -> reason name; code 0 means kept. ``outside_frames`` is assigned by the framing step.
REASONS: tuple[str, ...] = (
    "kept", "unknown_sensor", "bad_time", "bad_latlon", "unknown_channel", "unknown_platform", "sensor_not_used",
    "channel_denied", "missing_value", "bad_value", "no_pressure_height", "bad_height", "bad_pressure", "wind_not_in_situ",
    "gps_t_q_not_used", "qc_flag", "outside_frames",
)
REASON_CODE: dict[str, int] = {r: i for i, r in enumerate(REASONS)}
IN_SITU_WIND_TYPES: tuple[int, ...] = (220, 221, 229, 230, 231, 232, 233, 234, 235, 280, 282)


@dataclass(frozen=True)
class QCOptions:
    """QC rules; the defaults are the v2-UFS recipe (``v2-ufs-hpx64``).

    Attributes:
        sensors: sensors fed to the model (conv rows need ``conv-plevel``). conv_min_pressure_hpa: non-GPS
        floor (v1: 200). gps_min_pressure_hpa: GPS floor. conv_uv_in_situ_only: keep u/v only for in-situ
        report types. conv_gps_level1_only: drop gps_t/gps_q. qc_filter: keep only GSI-accepted rows
        (``use_flag == 1`` conv, ``qc_flag == 0`` sat; rows without flags pass). drop_channels: global ids.
        derive_pressure_height: complete conv rows from the standard atmosphere.
    """

    sensors: tuple[str, ...] = vocab.V2_SENSORS
    conv_min_pressure_hpa: float = 1.0
    gps_min_pressure_hpa: float = 0.5
    conv_uv_in_situ_only: bool = True
    conv_gps_level1_only: bool = True
    qc_filter: bool = False
    drop_channels: tuple[int, ...] = ()
    derive_pressure_height: bool = True


@dataclass
class QCResult:
    """Outcome of :func:`run_qc`.

    Attributes:
        reason: (N,) uint8 drop reason code (0 kept). global_channel: (N,) int16 (-1 unknown).
        value_norm: (N,) float32 normalised value (meaningful where kept).
        derived: completed conv rows per report family (:data:`vocab.FAMILY_NAMES`) and kind
        (:data:`stdatm.DERIVED`), e.g. ``{"radiosonde": {"height_from_profile": 3}}``.
    """

    reason: Int[np.ndarray, " n"]
    global_channel: Int[np.ndarray, " n"]
    value_norm: Float[np.ndarray, " n"]
    derived: dict[str, dict[str, int]] = field(default_factory=dict)


def _flag(reason: np.ndarray, bad: np.ndarray, name: str, rows: np.ndarray | None = None) -> None:
    """Set ``reason`` to ``name`` where ``bad`` and not already dropped (``rows`` indexes a subset)."""
    if rows is None:
        reason[bad & (reason == 0)] = REASON_CODE[name]
    else:
        sub = rows[bad]
        sub = sub[reason[sub] == 0]
        reason[sub] = REASON_CODE[name]


def derive_pressure_height(raw: RawObs, conv_rows: Int[np.ndarray, " m"]) -> dict[str, dict[str, int]]:
    """Fill the missing one of pressure/height of conv rows in place; counts per report family and kind."""
    p, h = raw.pressure_hpa[conv_rows], raw.height[conv_rows]
    prof = None if raw.profile is None else raw.profile[conv_rows]
    code = stdatm.complete_vertical(p, h, prof)
    raw.pressure_hpa[conv_rows], raw.height[conv_rows] = p, h
    fam = vocab.report_family(raw.obs_type[conv_rows], raw.channel[conv_rows])
    counts = np.bincount(fam.astype(np.int64) * len(stdatm.DERIVED) + code,
                         minlength=len(vocab.FAMILY_NAMES) * len(stdatm.DERIVED)).reshape(-1, len(stdatm.DERIVED))
    return {vocab.FAMILY_NAMES[f]: {stdatm.DERIVED[k]: int(counts[f, k]) for k in range(1, len(stdatm.DERIVED))
                                    if counts[f, k]} for f in range(counts.shape[0]) if counts[f, 1:].any()}


def merge_derived(parts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Sum :attr:`QCResult.derived` dicts."""
    out: dict[str, dict[str, int]] = {}
    for part in parts:
        for fam, kinds in part.items():
            for k, n in kinds.items():
                out.setdefault(fam, {})[k] = out.get(fam, {}).get(k, 0) + n
    return out


def _global_channels(raw: RawObs, conv_rows: np.ndarray, sat_rows: np.ndarray) -> np.ndarray:
    gch = np.full(len(raw), -1, dtype=np.int16)
    lut = stats.raw_to_local_lut()
    sens, ch = raw.sensor[sat_rows], raw.channel[sat_rows]
    local = lut[sens, np.minimum(ch, stats.MAX_RAW_CHANNEL)].astype(np.int32)
    offsets = np.array([s.offset for s in vocab.SENSORS], dtype=np.int32)
    gch[sat_rows] = np.where(local >= 0, offsets[sens] + local, -1)
    loc = vocab.conv_plevel_local(raw.channel[conv_rows], raw.pressure_hpa[conv_rows])
    gch[conv_rows] = np.where(loc >= 0, vocab.SENSOR_BY_NAME["conv-plevel"].offset + loc, -1)
    return gch


def _sensor_checks(raw: RawObs, reason: np.ndarray, sat_rows: np.ndarray, opts: QCOptions) -> None:
    used = np.zeros(256, bool)
    for s in opts.sensors:
        used[vocab.SENSOR_BY_NAME[s].id if s in vocab.SENSOR_BY_NAME else 255] = True
    used[vocab.CONV] = used[vocab.CONV_PLEVEL]
    pl = raw.platform[sat_rows]
    _flag(reason, (pl < 0) | (pl >= len(vocab.PLATFORMS)), "unknown_platform", sat_rows)
    _flag(reason, ~used[raw.sensor], "sensor_not_used")


def _conv_checks(raw: RawObs, reason: np.ndarray, conv: np.ndarray, opts: QCOptions) -> None:
    p, h, code = raw.pressure_hpa[conv], raw.height[conv], raw.channel[conv]
    _flag(reason, np.isnan(p) & np.isnan(h), "no_pressure_height", conv)
    _flag(reason, ~((h >= stdatm.MIN_HEIGHT_M) & (h <= 60000)), "bad_height", conv)
    is_gps = code <= 3
    pmin = np.where(is_gps, opts.gps_min_pressure_hpa, opts.conv_min_pressure_hpa)
    _flag(reason, ~((p >= pmin) & (p <= 1100)), "bad_pressure", conv)
    if opts.conv_uv_in_situ_only:
        wind = (code == vocab.CONV_CODE["u"]) | (code == vocab.CONV_CODE["v"])
        _flag(reason, wind & ~np.isin(raw.obs_type[conv], IN_SITU_WIND_TYPES), "wind_not_in_situ", conv)
    if opts.conv_gps_level1_only:
        _flag(reason, (code == 2) | (code == 3), "gps_t_q_not_used", conv)


def _qc_flags(raw: RawObs, reason: np.ndarray, conv: np.ndarray, sat: np.ndarray) -> None:
    if raw.use_flag is not None:
        _flag(reason, raw.use_flag[conv] != 1, "qc_flag", conv)
    if raw.qc_flag is not None:
        _flag(reason, raw.qc_flag[sat] != 0, "qc_flag", sat)


def run_qc(raw: RawObs, opts: QCOptions = QCOptions()) -> QCResult:
    """Check every row, complete conv pressure/height (in place), map channels, normalise values.

    Rows are independent, so chunks of rows are checked on every core (:func:`frames.map_rows`); the
    result is identical to one pass over all rows.
    """
    parts = frames.map_rows(lambda s: _run_qc_rows(raw.take(s), opts), len(raw))
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return _run_qc_rows(raw, opts)
    derived = merge_derived([p.derived for p in parts])
    return QCResult(reason=np.concatenate([p.reason for p in parts]),
                    global_channel=np.concatenate([p.global_channel for p in parts]),
                    value_norm=np.concatenate([p.value_norm for p in parts]), derived=derived)


def _run_qc_rows(raw: RawObs, opts: QCOptions) -> QCResult:
    """:func:`run_qc` on the rows of ``raw`` (a view: in-place completions reach the caller's arrays)."""
    n = len(raw)
    reason = np.zeros(n, dtype=np.uint8)
    known = (raw.sensor < vocab.CONV_PLEVEL) & (raw.sensor != 9)  # airs: no channel table shipped
    _flag(reason, raw.sensor >= vocab.CONV_PLEVEL, "unknown_sensor")
    _flag(reason, (raw.time_ns == NAT) | (raw.time_ns < TIME_MIN_NS) | (raw.time_ns >= TIME_MAX_NS), "bad_time")
    lat, lon = raw.lat, raw.lon
    _flag(reason, ~((np.abs(lat) <= 90) & (lon >= -180) & (lon <= 360)), "bad_latlon")
    is_conv = raw.sensor == vocab.CONV
    conv, sat = np.flatnonzero(is_conv), np.flatnonzero(~is_conv & known)
    derived = derive_pressure_height(raw, conv) if opts.derive_pressure_height else {}
    gch = _global_channels(raw, conv, sat)
    _flag(reason, gch < 0, "unknown_channel")
    raw.platform[conv] = 0
    _sensor_checks(raw, reason, sat, opts)
    if opts.drop_channels:
        _flag(reason, np.isin(gch, np.asarray(opts.drop_channels)), "channel_denied")
    table = stats.channel_table()
    g = np.maximum(gch, 0)
    vmin, vmax = table.valid_min.astype(np.float32)[g], table.valid_max.astype(np.float32)[g]
    _flag(reason, np.isnan(raw.value), "missing_value")
    _flag(reason, ~((raw.value >= vmin) & (raw.value <= vmax)), "bad_value")
    del vmin, vmax
    _conv_checks(raw, reason, conv, opts)
    if opts.qc_filter:
        _qc_flags(raw, reason, conv, sat)
    norm = (raw.value - table.mean.astype(np.float32)[g]) / table.std.astype(np.float32)[g]
    return QCResult(reason=reason, global_channel=gch, value_norm=norm.astype(np.float32, copy=False),
                    derived=derived)


def count_by_sensor(sensor: Int[np.ndarray, " n"], reason: Int[np.ndarray, " n"]) -> Int[np.ndarray, "s r"]:
    """(256, len(REASONS)) counts of rows per (raw sensor id, reason code)."""
    key = sensor.astype(np.int64) * len(REASONS) + reason
    return np.bincount(key, minlength=256 * len(REASONS)).reshape(256, len(REASONS))
