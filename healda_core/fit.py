"""Observation-space fit: an analysis (and optionally a background) at every conventional observation.

:func:`fit_obs` reads conventional observations (raw files of any reader, after QC, or packed files), matches
each to the nearest analysis time within ``±window`` (half-open ``[t − w, t + w)``; a background with a single
time, a climatology, matches every observation), interpolates the analysis
horizontally (bilinear on the sphere, :func:`grid.interp_weights`) and vertically (linear in log-pressure
between the 13 levels), and writes O − A per observation in IODA vocabulary:

* ``MetaData/{latitude, longitude, dateTime, pressure (Pa), height, prepbufrReportType, reportFamily}``;
* ``ObsValue/<var>``, ``hofx/<var>`` (the analysis at the observation), ``oman/<var>`` (O − A) and, with a
  background, ``ombg/<var>`` (O − B), for ``<var>`` in ``airTemperature, specificHumidity, windEastward,
  windNorthward, stationPressure`` (Pa); a location holds one of them, the others are IODA's fill value.

Observation operators: upper-air t, q, u, v from the pressure levels (observations outside 1000–50 hPa are
not fitted); surface reports (types 180–199, 280–299) from ``t2m``, ``u10m``, ``v10m`` (no 2 m humidity:
surface q is not fitted); station pressure from ``msl`` reduced to the station height with the 2 m
temperature, ``ps = msl · exp(−g h / (R_d · t2m))``. GPS-RO is not fitted.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import netCDF4
import numpy as np
from jaxtyping import Float

from healda_core import grid
from healda_core.errors import input_error
from healda_core.fileio import atomic_output, check_writable
from healda_core.obs import vocab
from healda_core.obs.packed import FLOAT_FILL, read_packed
from healda_core.obs.packed_schema import CF_VERSION
from healda_core.obs.qc import QCOptions, run_qc
from healda_core.obs.raw import NAT
from healda_core.obs.readers import read_obs_file
from healda_core.obs.readers.common import open_nc
from healda_core.obs.stats import channel_table

G, R_DRY = 9.80665, 287.05
#: fitted conv variables: code -> (name, IODA ObsValue name, display units)
FIT_VARS: dict[int, tuple[str, str, str]] = {
    vocab.CONV_CODE["t"]: ("t", "airTemperature", "K"), vocab.CONV_CODE["q"]: ("q", "specificHumidity", "kg kg-1"),
    vocab.CONV_CODE["u"]: ("u", "windEastward", "m s-1"), vocab.CONV_CODE["v"]: ("v", "windNorthward", "m s-1"),
    vocab.CONV_CODE["ps"]: ("ps", "stationPressure", "hPa"),
}
_SURFACE = vocab.FAMILY_NAMES.index("surface")


@dataclass
class ConvObs:
    """Conventional observations (N,): value (ps in hPa), lon, lat, time_ns, pressure_hpa, height, obs_type, code."""

    value: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    time_ns: np.ndarray
    pressure_hpa: np.ndarray
    height: np.ndarray
    obs_type: np.ndarray
    code: np.ndarray

    def take(self, idx: np.ndarray) -> ConvObs:
        return ConvObs(**{k: v[idx] for k, v in asdict(self).items()})

    @classmethod
    def concat(cls, parts: list[ConvObs]) -> ConvObs:
        return cls(**{k: np.concatenate([asdict(p)[k] for p in parts]) for k in cls.__dataclass_fields__})


def _from_packed(path: str | os.PathLike) -> ConvObs:
    p = read_packed(path)
    o = p.obs
    keep = o["sensor_id"] == vocab.CONV_PLEVEL
    code = channel_table().raw[np.maximum(o["global_channel"][keep], 0)]
    obs = ConvObs(o["value_raw"][keep], o["lon"][keep], o["lat"][keep], o["time"][keep], o["pressure_hpa"][keep],
                  o["height"][keep], o["obs_type"][keep], code)
    # an observation sits in every analysis whose frames cover it: fit it once
    key = np.stack([obs.time_ns.astype(np.float64), obs.lon, obs.lat, obs.pressure_hpa, obs.code, obs.value], 1)
    _, first = np.unique(np.nan_to_num(key, nan=-1.0), axis=0, return_index=True)
    return obs.take(np.sort(first))


def _from_raw(path: str | os.PathLike) -> ConvObs:
    raw, _ = read_obs_file(path)
    qc = run_qc(raw, QCOptions(conv_uv_in_situ_only=False))
    keep = (qc.reason == 0) & (raw.sensor == vocab.CONV)
    r = raw.take(keep)
    return ConvObs(r.value, r.lon, r.lat, r.time_ns, r.pressure_hpa, r.height, r.obs_type, r.channel)


def load_conv_obs(paths: list[str | os.PathLike]) -> ConvObs:
    """Conventional observations of raw files (after QC, height derivation) and packed files, fitted variables only."""
    parts = []
    for path in paths:
        with open_nc(path) as ds:
            packed = "cu_seqlens" in ds.variables
        parts.append(_from_packed(path) if packed else _from_raw(path))
    obs = ConvObs.concat(parts)
    return obs.take(np.isin(obs.code, list(FIT_VARS)) & (obs.time_ns != NAT))


class Fields:
    """An analysis-layout NetCDF (HEALPix NEST, ``time``, ``level``, ``cell``): fields at one time on demand."""

    NEEDED = ("t", "q", "u", "v", "t2m", "u10m", "v10m", "msl")

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.ds = open_nc(path)
        for name in ("time", "level", *self.NEEDED):
            if name not in self.ds.variables:
                self.ds.close()
                raise input_error(path, name, "required variable missing (expected a healda analysis or nature file)")
        self.times = np.asarray(self.ds["time"][:], np.int64)
        self.levels = np.asarray(self.ds["level"][:], np.float64)
        self.level = grid.level_of_npix(self.ds.dimensions["cell"].size)
        self.framed = "frame" in self.ds["t"].dimensions
        self._cache: tuple[int, dict] | None = None

    def at(self, i: int) -> dict[str, np.ndarray]:
        """{name: (13, npix) or (npix,)} float64 at time index ``i`` (the analysis frame of framed files)."""
        if self._cache is None or self._cache[0] != i:
            idx = (i, -1) if self.framed else (i,)
            self._cache = (i, {n: np.asarray(self.ds[n][idx], np.float64) for n in self.NEEDED})
        return self._cache[1]

    def match(self, time_ns: np.ndarray, window_s: int, any_time: bool = False) -> np.ndarray:
        """Index of the nearest time with ``t − w ≤ obs < t + w``, -1 for none; with ``any_time`` a single-time
        file (a climatology) matches every observation."""
        if any_time and self.times.size == 1:
            return np.zeros(time_ns.shape, np.int64)
        if self.times.size == 1:
            dt = time_ns // 1_000_000_000 - self.times[0]
            return np.where((dt >= -window_s) & (dt < window_s), 0, -1)
        t = time_ns // 1_000_000_000
        hi = np.clip(np.searchsorted(self.times, t, side="right"), 1, self.times.size - 1)
        lo = hi - 1
        pick = np.where(t - self.times[lo] >= self.times[hi] - t, hi, lo)  # ties go to the later time
        pick = np.where(t - self.times[lo] < 0, lo, pick)
        dt = t - self.times[pick]
        return np.where((dt >= -window_s) & (dt < window_s), pick, -1)

    def close(self) -> None:
        self.ds.close()


def _vertical(profile: np.ndarray, levels: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Linear interpolation in ln p of (L, m) profiles at pressures (m,); NaN outside the levels."""
    order = np.argsort(levels)  # ascending pressure
    lnl, prof = np.log(levels[order]), profile[order]
    lnp = np.log(np.where(p > 0, p, np.nan))
    k = np.clip(np.searchsorted(lnl, lnp) - 1, 0, lnl.size - 2)
    cols = np.arange(p.size)
    w = (lnp - lnl[k]) / (lnl[k + 1] - lnl[k])
    out = prof[k, cols] * (1 - w) + prof[k + 1, cols] * w
    return np.where((lnp >= lnl[0]) & (lnp <= lnl[-1]), out, np.nan)


def model_equivalent(f: dict[str, np.ndarray], level: int, levels: np.ndarray, obs: ConvObs) -> Float[np.ndarray, " n"]:
    """H(x): the fields ``f`` (one time) at every observation of ``obs``, in the observation's units; NaN if none."""
    pix, w = grid.interp_weights(obs.lon, obs.lat, level)
    hx = np.full(obs.value.shape, np.nan)
    surface = vocab.report_family(obs.obs_type, obs.code) == _SURFACE
    for code, (name, _, _) in FIT_VARS.items():
        rows = obs.code == code
        if name == "ps":
            t2m, msl = ((f[n][pix[:, rows]] * w[:, rows]).sum(0) for n in ("t2m", "msl"))
            hx[rows] = msl / 100.0 * np.exp(-G * obs.height[rows] / (R_DRY * t2m))
            continue
        up = rows & ~surface
        prof = (f[name][:, pix[:, up]] * w[None, :, up]).sum(1)
        hx[up] = _vertical(prof, levels, obs.pressure_hpa[up].astype(np.float64))
        sfc = rows & surface
        if name != "q":
            hx[sfc] = (f[f"{name}{'2m' if name == 't' else '10m'}"][pix[:, sfc]] * w[:, sfc]).sum(0)
    return hx


def _equivalents(fields: Fields, obs: ConvObs, window_s: int, any_time: bool = False) -> np.ndarray:
    match = fields.match(obs.time_ns, window_s, any_time)
    hx = np.full(obs.value.shape, np.nan)
    for i in np.unique(match[match >= 0]):
        rows = np.flatnonzero(match == i)
        hx[rows] = model_equivalent(fields.at(int(i)), fields.level, fields.levels, obs.take(rows))
    return hx


@dataclass
class FitRow:
    """Statistics of one (platform, variable): O − A and, with a background, O − B (display units)."""

    platform: str
    variable: str
    units: str
    count: int
    oma_bias: float
    oma_rmse: float
    omb_bias: float | None = None
    omb_rmse: float | None = None


@dataclass
class FitSummary:
    """What :func:`fit_obs` did; ``to_dict`` is the ``--json`` output."""

    output: str
    analysis: str
    background: str | None
    observations: list[str]
    window: str
    n_read: int
    n_fitted: int
    not_fitted: dict[str, int]
    rows: list[FitRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _stats(obs: ConvObs, oma: np.ndarray, omb: np.ndarray | None) -> list[FitRow]:
    fam = vocab.report_family(obs.obs_type, obs.code)
    rows = []
    for f in np.unique(fam):
        for code, (name, _, units) in FIT_VARS.items():
            sel = (fam == f) & (obs.code == code)
            if not sel.any():
                continue
            d = oma[sel]
            row = FitRow(vocab.FAMILY_NAMES[f], name, units, int(sel.sum()), float(d.mean()),
                         float(np.sqrt((d ** 2).mean())))
            if omb is not None and np.isfinite(omb[sel]).any():
                b = omb[sel][np.isfinite(omb[sel])]
                row.omb_bias, row.omb_rmse = float(b.mean()), float(np.sqrt((b ** 2).mean()))
            rows.append(row)
    return rows


def _write(path: Path, obs: ConvObs, hx: np.ndarray, omb: np.ndarray | None, attrs: dict) -> None:
    n = obs.value.size
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        ds.setncatts(attrs)
        ds.createDimension("Location", n)

        def var(group, name, dtype, data, **atts):
            fill = FLOAT_FILL if np.dtype(dtype).kind == "f" else None
            v = group.createVariable(name, dtype, ("Location",), zlib=True, complevel=1, fill_value=fill)
            v.setncatts(atts)
            v[:] = np.where(np.isnan(data), FLOAT_FILL, data) if fill is not None else data

        md = ds.createGroup("MetaData")
        var(md, "latitude", "f4", obs.lat, units="degrees_north")
        var(md, "longitude", "f4", obs.lon, units="degrees_east")
        var(md, "dateTime", "i8", obs.time_ns // 1_000_000_000, units="seconds since 1970-01-01T00:00:00Z")
        var(md, "pressure", "f4", obs.pressure_hpa.astype(np.float64) * 100.0, units="Pa")
        var(md, "height", "f4", obs.height, units="m")
        var(md, "prepbufrReportType", "i4", obs.obs_type.astype(np.int32))
        var(md, "reportFamily", "i1", vocab.report_family(obs.obs_type, obs.code).astype(np.int8),
            flag_values=np.arange(len(vocab.FAMILY_NAMES), dtype=np.int8), flag_meanings=" ".join(vocab.FAMILY_NAMES))
        groups = {"ObsValue": obs.value, "hofx": hx, "oman": obs.value - hx}
        if omb is not None:
            groups["ombg"] = omb
        for gname, data in groups.items():
            g = ds.createGroup(gname)
            for code, (name, ioda, units) in FIT_VARS.items():
                sel = obs.code == code
                if not sel.any():
                    continue
                scale = 100.0 if name == "ps" else 1.0  # IODA stationPressure is Pa
                col = np.where(sel, data.astype(np.float64) * scale, np.nan)
                var(g, ioda, "f4", col, units="Pa" if name == "ps" else units)


def fit_obs(analysis: str | os.PathLike, observations: list[str | os.PathLike], output: str | os.PathLike, *,
            background: str | os.PathLike | None = None, window_s: int = 3 * 3600,
            overwrite: bool = False) -> FitSummary:
    """Fit ``analysis`` (and ``background``) to conventional ``observations``; write ``output``; return the table.

    Args:
        analysis, background: analysis-layout NetCDF files (healda analyses, nature runs, climatologies; a
            background with one time matches every observation). observations: raw or packed observation files.
        window_s: half-width of the time window around each analysis time.
    """
    out = Path(output)
    check_writable(out, overwrite)
    obs = load_conv_obs(list(observations))
    fields = Fields(analysis)
    bg = Fields(background) if background is not None else None
    try:
        hx = _equivalents(fields, obs, window_s)
        hb = _equivalents(bg, obs, window_s, any_time=True) if bg is not None else None
    finally:
        fields.close()
        if bg is not None:
            bg.close()
    matched = np.isfinite(hx)
    no_time = fields.match(obs.time_ns, window_s) < 0
    not_fitted = {"outside_time_window": int(no_time.sum()), "no_model_equivalent": int((~matched & ~no_time).sum())}
    fitted = obs.take(matched)
    hx = hx[matched]
    omb = None if hb is None else fitted.value - hb[matched]
    attrs = {"Conventions": CF_VERSION, "title": "HealDA observation-space fit (O - A)", "source": "healda fit",
             "analysis_file": str(analysis), "background_file": str(background or ""),
             "observation_files": " ".join(str(p) for p in observations), "time_window_seconds": np.int64(window_s),
             "comment": "IODA groups: ObsValue, hofx = H(analysis), oman = O - A, ombg = O - B"}
    with atomic_output(out, overwrite) as tmp:
        _write(tmp, fitted, hx, omb, attrs)
    return FitSummary(str(out), str(analysis), None if background is None else str(background),
                      [str(p) for p in observations], f"±{window_s // 3600}h" if window_s % 3600 == 0
                      else f"±{window_s}s", int(obs.value.size), int(fitted.value.size), not_fitted,
                      _stats(fitted, fitted.value - hx, omb))
