"""The packed-observation NetCDF's schema (DATA §7b; documented in ``docs/formats.md``): the per-obs variables
and their attributes, the in-memory form :class:`PackedObs`, the global attributes and the channel units.

A CF contiguous ragged array: per-obs variables on dimension ``obs`` sorted by flat pixel id, the count
variable ``obs_count(analysis, frame, cell)`` with ``sample_dimension = "obs"``, and ``cu_seqlens(cell_edge)``
(its int64 prefix sum). :mod:`healda_core.obs.packed_write` writes it, :mod:`healda_core.obs.packed` reads it.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Int

from healda_core import __version__, grid
from healda_core.obs import frames, vocab
from healda_core.obs.stats import stats_sha256

#: per-obs stored variables: name -> (source column of RawObs or a computed name, dtype)
OBS_VARS: dict[str, type] = {
    "value_raw": np.float32, "value_norm": np.float32, "time": np.int64, "lat": np.float32, "lon": np.float32,
    "height": np.float32, "pressure_hpa": np.float32, "scan_angle": np.float32, "sat_zenith": np.float32,
    "solar_zenith": np.float32, "global_channel": np.uint16, "global_platform": np.uint16,
    "obs_type": np.uint16, "sensor_id": np.uint8, "pix": np.int32,
}


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


#: on-disk fill of float variables (IODA's float missing value; NaN in memory, never on disk)
FLOAT_FILL = np.float32(-3.3687953e38)
#: the CF version of every file healda writes (packed observations, analyses, static fields)
CF_VERSION = "CF-1.13"
_TIME_UNITS = "nanoseconds since 1970-01-01T00:00:00Z"

OBS_ATTRS: dict[str, dict[str, str]] = {
    "value_raw": {"long_name": "observed value in physical units",
                  "comment": "units depend on the channel: channel_units[global_channel] (K, hPa, kg kg-1, m s-1, "
                             "rad, or 1 for PCA scores)"},
    "value_norm": {"long_name": "normalised value (value_raw - channel_mean) / channel_std", "units": "1"},
    "time": {"long_name": "observation time", "standard_name": "time", "units": _TIME_UNITS,
             "calendar": "proleptic_gregorian"},
    "lat": {"long_name": "latitude", "standard_name": "latitude", "units": "degrees_north"},
    "lon": {"long_name": "longitude", "standard_name": "longitude", "units": "degrees_east"},
    "height": {"long_name": "observation height (conventional only)", "units": "m"},
    "pressure_hpa": {"long_name": "observation pressure (conventional only)", "standard_name": "air_pressure",
                     "units": "hPa"},
    "scan_angle": {"long_name": "sensor scan angle (satellite only)", "units": "degree"},
    "sat_zenith": {"long_name": "satellite zenith angle, signed (satellite only)", "units": "degree"},
    "solar_zenith": {"long_name": "solar zenith angle (satellite only)", "standard_name": "solar_zenith_angle",
                     "units": "degree"},
    "global_channel": {"long_name": "global channel id (index into the channel dimension)", "units": "1"},
    "global_platform": {"long_name": "global platform id (0 for conventional)", "units": "1"},
    "obs_type": {"long_name": "GSI/PrepBUFR report type (0 for satellite)", "units": "1"},
    "sensor_id": {"long_name": "model sensor id (index into the sensor dimension)", "units": "1"},
    "pix": {"long_name": "HEALPix pixel at hpx_level, earth2grid PAD_XY order", "units": "1"},
}


def global_attrs(p, attrs: dict[str, object]) -> dict[str, object]:
    """CF global attributes plus the self-description of DATA §7b; ``attrs`` adds or overrides."""
    ft = p.frame_times()
    half = frames.iso_duration(p.step_s // 2)
    out: dict[str, object] = {
        "Conventions": CF_VERSION,
        "title": "HealDA packed observations",
        "institution": "healda",
        "source": f"healda {__version__}; model_recipe=v2-ufs-hpx64",
        "references": "HealDA: arXiv 2601.17636",
        "date_created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "healda_version": __version__,
        "healda_layout": "CF contiguous ragged array sorted by flat_index (obs_count has sample_dimension obs)",
        "hpx_level": np.int32(p.level), "hpx_nside": np.int32(1 << p.level),
        "pixel_order": "earth2grid_healpix_pad_xy",
        "pixel_order_comment": "XY(origin=N, clockwise=True): index f*n*n + y*n + x inside each base face",
        "flat_index": "(analysis*n_frame + frame)*n_cell + pix",
        "n_frame": np.int32(p.n_frames), "n_cell": np.int32(p.n_cell),
        "frame_step": frames.iso_duration(p.step_s), "frame_step_seconds": np.int64(p.step_s),
        "frame_window": f"[-{half}, +{half})", "analysis_frame": np.int32(p.n_frames - 1),
        "metadata_features": "healda_features_v2", "n_metadata_features": np.int32(50),
        "channel_vocabulary": "ufs-gsi+conv-plevel", "model_recipe": "v2-ufs-hpx64",
        "normalisation_stats_sha256": stats_sha256(),
        "time_coverage_start": frames.format_time(int(ft.min()) - p.step_s // 2) if ft.size else "",
        "time_coverage_end": frames.format_time(int(ft.max()) + p.step_s // 2) if ft.size else "",
    }
    out.update({k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v) for k, v in attrs.items()})
    return out


def channel_units(t) -> list[str]:
    """Units of every global channel: K (radiances), the conv variable's units, 1 (PCA scores, unused ids)."""
    out = []
    for sid, raw, known in zip(t.sensor, t.raw, t.known):
        name = vocab.SENSORS[sid].name if known and sid < len(vocab.SENSORS) else ""
        if name and vocab.SENSORS[sid].is_conv:
            out.append(vocab.CONV_UNITS[vocab.CONV_CHANNELS[int(raw) - 1]])
        else:
            out.append("1" if not name or name.endswith("pca") else "K")
    return out



#: the per-obs columns the model reads; ``value_raw``, ``sensor_id`` and ``pix`` are there for people and tools
MODEL_COLUMNS = ("value_norm", "time", "lat", "lon", "height", "pressure_hpa", "scan_angle", "sat_zenith",
                 "solar_zenith", "global_channel", "global_platform", "obs_type")
