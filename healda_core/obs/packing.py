"""In-memory packing: QC'd raw observations -> per-pixel sorted arrays (:class:`PackedObs`).

Pixel at ``level`` in PAD_XY order, flat index ``(b*T + t)*X' + pix``, O(N) stable counting sort. The
arrays are what the packed NetCDF stores (DATA §7b); :mod:`healda_core.obs.packed` writes and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Int

from healda_core import grid
from healda_core.obs import frames, vocab
from healda_core.obs.qc import REASON_CODE, QCOptions, QCResult, count_by_sensor, run_qc
from healda_core.obs.raw import RawObs
from healda_core.obs.sorting import counting_sort

#: per-obs stored variables: name -> (source column of RawObs or a computed name, dtype)
OBS_VARS: dict[str, type] = {
    "value_raw": np.float32, "value_norm": np.float32, "time": np.int64, "lat": np.float32, "lon": np.float32,
    "height": np.float32, "pressure_hpa": np.float32, "scan_angle": np.float32, "sat_zenith": np.float32,
    "solar_zenith": np.float32, "global_channel": np.uint16, "global_platform": np.uint16,
    "obs_type": np.uint16, "sensor_id": np.uint8, "pix": np.int32,
}
_RAW_SOURCE = {"value_raw": "value", "time": "time_ns", "lat": "lat", "lon": "lon", "height": "height",
               "pressure_hpa": "pressure_hpa", "scan_angle": "scan_angle", "sat_zenith": "sat_zenith",
               "solar_zenith": "solar_zenith", "global_platform": "platform", "obs_type": "obs_type"}


@dataclass
class PackedObs:
    """Observations sorted by flat pixel id.

    Attributes:
        analysis_s: (B,) analysis times, s since 1970. n_frames, step_s, level: frame count, spacing (s),
        HEALPix level. counts: (B*T*X',) int64 obs per flat pixel. obs: per-obs arrays (:data:`OBS_VARS`),
        each (N,). sensor_lengths: (n_sensors, B, T) int64 obs per model sensor and frame.
    """

    analysis_s: Int[np.ndarray, " B"]
    n_frames: int
    step_s: int
    level: int
    counts: Int[np.ndarray, " P"]
    obs: dict[str, np.ndarray]
    sensor_lengths: Int[np.ndarray, "S B T"]
    attrs: dict[str, object] = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return int(self.counts.sum())

    @property
    def n_cell(self) -> int:
        return grid.npix(self.level)

    def frame_times(self) -> Int[np.ndarray, "B T"]:
        return frames.frame_times(self.analysis_s, self.n_frames, self.step_s)


@dataclass
class PackResult:
    """Packed arrays plus the bookkeeping of what was dropped.

    Attributes:
        packed: the :class:`PackedObs`. counts: (256, len(REASONS)) rows per (raw sensor id, reason).
        derived: conv rows completed from the standard atmosphere.
    """

    packed: PackedObs
    counts: Int[np.ndarray, "s r"]
    derived: dict[str, int]


def pixels(lon: np.ndarray, lat: np.ndarray, level: int) -> Int[np.ndarray, " n"]:
    """PAD_XY pixel ids at ``level`` (int32), via NEST ids and the cached NEST->PAD_XY table."""
    nest = grid.ang2pix(lon, lat, level, order="nest")
    return grid.nest_to_padxy(level)[nest].astype(np.int32)


def _model_sensor(raw_sensor: np.ndarray) -> np.ndarray:
    return np.where(raw_sensor == vocab.CONV, vocab.CONV_PLEVEL, raw_sensor).astype(np.uint8)


def _gather(raw: RawObs, qc: QCResult, src: np.ndarray, pix: np.ndarray, consume: bool) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    out["sensor_id"] = _model_sensor(raw.sensor[src])
    for name, dtype in OBS_VARS.items():
        if name in _RAW_SOURCE:
            out[name] = getattr(raw, _RAW_SOURCE[name])[src].astype(dtype, copy=False)
            if consume:  # release the raw column as soon as it is gathered (peak memory)
                setattr(raw, _RAW_SOURCE[name], np.zeros(0, getattr(raw, _RAW_SOURCE[name]).dtype))
    out["value_norm"] = qc.value_norm[src]
    out["global_channel"] = qc.global_channel[src].astype(np.uint16)
    out["pix"] = pix
    return {k: out[k] for k in OBS_VARS}


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
    qc = qc if qc is not None else run_qc(raw, qc_options)
    kept = np.flatnonzero(qc.reason == 0)
    rows, bt = frames.assign_frames(raw.time_ns[kept], list(analysis_s), n_frames, step_s)
    in_frame = np.zeros(kept.size, dtype=bool)
    in_frame[rows] = True
    qc.reason[kept[~in_frame]] = REASON_CODE["outside_frames"]
    counts_by = count_by_sensor(raw.sensor, qc.reason)
    src = kept[rows]
    del kept, rows, in_frame
    x = grid.npix(level)
    pix = pixels(raw.lon[src], raw.lat[src], level)
    order, counts = counting_sort(bt * x + pix, len(analysis_s) * n_frames * x)
    src, pix, bt = src[order], pix[order], bt[order]
    del order
    obs = _gather(raw, qc, src, pix, consume)
    nb = len(analysis_s) * n_frames
    key = obs["sensor_id"].astype(np.int64) * nb + bt
    lengths = np.bincount(key, minlength=len(vocab.SENSORS) * nb).reshape(len(vocab.SENSORS), len(analysis_s), n_frames)
    packed = PackedObs(np.asarray(analysis_s, np.int64), n_frames, step_s, level, counts, obs, lengths)
    return PackResult(packed, counts_by, qc.derived)
