"""Attributes, fill values and lookup tables of the packed-observation NetCDF (DATA §7b)."""

from __future__ import annotations

import datetime as _dt
import json

import netCDF4
import numpy as np

from healda_core import __version__
from healda_core.obs import frames, vocab
from healda_core.obs.stats import channel_table, stats_sha256

#: on-disk fill of float variables (IODA's float missing value; NaN in memory, never on disk)
FLOAT_FILL = np.float32(-3.3687953e38)
_TIME_UNITS = "nanoseconds since 1970-01-01T00:00:00Z"

OBS_ATTRS: dict[str, dict[str, str]] = {
    "value_raw": {"long_name": "observed value in physical units (per channel, see channel_units)",
                  "units": "1", "comment": "units depend on the channel: K, hPa, kg kg-1, m s-1, rad, or 1 (PCA)"},
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
        "Conventions": "CF-1.11",
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


def _string_var(ds: netCDF4.Dataset, name: str, dim: str, values: list[str], long_name: str) -> None:
    v = ds.createVariable(name, str, (dim,))
    v.long_name = long_name
    for i, s in enumerate(values):
        v[i] = s


def write_tables(ds: netCDF4.Dataset, p) -> None:
    """The channel table (dim ``channel``), sensor names (dim ``sensor``) and ``sensor_lengths``."""
    t = channel_table()
    ds.createDimension("channel", len(t.name))
    ds.createDimension("sensor", len(vocab.SENSORS))
    _string_var(ds, "channel_name", "channel", t.name, "channel name ('' = unused id)")
    for name, arr, dtype, long, units in (
        ("channel_sensor", t.sensor, "u1", "sensor id of the channel", "1"),
        ("channel_raw_id", t.raw, "i4", "raw channel number (conv variable code 1-8 for conv)", "1"),
        ("channel_level_hpa", t.level_hpa, "i4", "conv-plevel pressure level (0 if none)", "hPa"),
        ("channel_mean", t.mean, "f8", "normalisation mean", "1"),
        ("channel_std", t.std, "f8", "normalisation standard deviation", "1"),
        ("channel_valid_min", t.valid_min, "f8", "QC minimum valid value", "1"),
        ("channel_valid_max", t.valid_max, "f8", "QC maximum valid value", "1"),
    ):
        v = ds.createVariable(name, dtype, ("channel",))
        v.setncatts({"long_name": long, "units": units})
        v[:] = arr
    _string_var(ds, "sensor_name", "sensor", [s.name for s in vocab.SENSORS], "sensor name (index = sensor_id)")
    v = ds.createVariable("sensor_lengths", "i8", ("sensor", "analysis", "frame"))
    v.setncatts({"long_name": "observations per sensor, analysis and frame", "units": "1"})
    v[:] = p.sensor_lengths
