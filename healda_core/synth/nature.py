"""A synthetic but physically coherent *nature run* on the HEALPix grid (the OSSE truth).

* Streamfunction ψ(λ, φ, p, t) = Σ_lm a_lm(t) Y_lm · S(p): a red spectrum (amplitude ∝ l^(-1.5), 2 ≤ l ≤ 12)
  over a zonal mean of solid-body westerlies and a baroclinic jet (warm equator, cold poles)
  with a barotropic part growing with height and a baroclinic part changing sign at 500 hPa, each advanced
  by Rossby-Haurwitz dispersion on a super-rotating background, a_lm(t) = a_lm(0)·exp(-i ω_lm t),
  ω_lm = m·[ω0 − 2(Ω + ω0)/(l(l+1))].
* Winds are non-divergent: u = −(1/a)∂ψ/∂φ, v = (1/(a cos φ))∂ψ/∂λ (spectral derivatives, healpy).
* Geopotential is in linear balance with a constant f0: Φ = Φ_std(p) + f0 ψ; temperature is hydrostatic:
  T = −(1/R) ∂Φ/∂ln p, evaluated analytically in the vertical (T_std from the ICAO standard atmosphere).
* Humidity: q = RH·q_sat(T, p), with RH a smooth field in [0.15, 0.95] decreasing with height, blended
  into a dry stratosphere (about 2.7e-6 kg/kg) between 300 and 150 hPa.
* Surface fields and statics (orography, land fraction) are derived from the same fields.

Everything is computed in NEST order at ``level``; :func:`nature_fields` returns the 74 channels of DATA §4.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from collections.abc import Iterator

import healpy
import numpy as np
from jaxtyping import Float

from healda_core import grid

PLEVELS = np.array([1000, 925, 850, 700, 600, 500, 400, 300, 250, 200, 150, 100, 50], dtype=np.float64)
A_EARTH, OMEGA, G, R_DRY, F0 = 6.371e6, 7.292e-5, 9.80665, 287.05, 1.0e-4
OMEGA0 = 12.0 / A_EARTH  # super-rotation: 12 m/s at the equator
LMIN, LMAX = 2, 12
Q_STRAT = 2.7e-6  # stratospheric specific humidity (kg/kg), as ERA5's 50–100 hPa mean


@contextlib.contextmanager
def single_threaded_transforms() -> Iterator[None]:
    """Within the block, healpy's spherical-harmonic transforms run on one thread.

    At the nature run's sizes (nside ≤ 16, lmax 12) a transform takes about 40 µs on one thread, while an
    OpenMP team costs milliseconds per call and 15–100 ms on a busy machine: synthesis was 100× slower.
    healpy calls whichever OpenMP runtime is loaded first (torch's, once torch is imported; else the one its
    wheel bundles), so the default thread count of both is set to 1 and restored afterwards (torch's
    intra-op thread count included).
    """
    libs = [ctypes.CDLL(None)] + [ctypes.CDLL(p) for p in glob.glob(
        os.path.join(os.path.dirname(healpy.__file__) + ".libs", "libgomp*"))]
    saved = []
    for lib in libs:
        try:
            saved.append((lib, lib.omp_get_max_threads()))
            lib.omp_set_num_threads(1)
        except AttributeError:  # no OpenMP runtime behind this handle
            continue
    try:
        yield
    finally:
        for lib, n in saved:
            lib.omp_set_num_threads(n)


def std_temperature(p_hpa: np.ndarray) -> np.ndarray:
    """ICAO standard-atmosphere temperature (K) at pressure (hPa), troposphere + lower stratosphere."""
    t_trop = 288.15 * (p_hpa / 1013.25) ** (R_DRY * 0.0065 / G)
    return np.maximum(t_trop, 216.65)


def std_geopotential(p_hpa: np.ndarray) -> np.ndarray:
    """Φ_std(p) = ∫ R T_std d(−ln p) from 1013.25 hPa (m² s⁻²), by fine quadrature."""
    lnp = np.linspace(np.log(1013.25), np.log(p_hpa.min()) - 0.01, 4001)
    t = std_temperature(np.exp(lnp))
    phi = np.concatenate([[0.0], np.cumsum(-0.5 * (t[1:] + t[:-1]) * np.diff(lnp))]) * R_DRY
    return np.interp(-np.log(p_hpa), -lnp, phi)


def _structure(p_hpa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertical structures S_bt, S_bc and their ln p derivatives."""
    x = np.log(1000.0 / p_hpa)  # 0 at 1000 hPa, 3 at 50 hPa
    s_bt, ds_bt = 0.3 + 0.5 * x, -0.5 * np.ones_like(x)  # d/dln p = -d/dx
    s_bc, ds_bc = np.tanh(x - np.log(2.0)) + 0.6, -(1 - np.tanh(x - np.log(2.0)) ** 2)  # 0 at 1000 hPa
    return s_bt, ds_bt, s_bc, ds_bc


class NatureRun:
    """Spectral state of the nature run; evaluate fields at any time with :meth:`fields`.

    Args:
        level: HEALPix level of the output fields. seed: random seed of the spectrum (and of the statics when
            ``planet_seed`` is None). amplitude: ψ scale (m² s⁻¹). planet_seed: random seed of the orography
            and land fraction (realisations sharing it have the same planet and independent weather).
    """

    def __init__(self, level: int, seed: int = 0, amplitude: float = 3.0e7, planet_seed: int | None = None):
        self.level, self.nside = level, grid.level_to_nside(level)
        self.lmax = min(LMAX, 3 * self.nside - 1)
        rng = np.random.default_rng(seed)
        l_idx, m_idx = healpy.Alm.getlm(self.lmax)
        self.l, self.m = l_idx, m_idx
        spec = np.where(l_idx >= LMIN, np.maximum(l_idx, 1) ** -1.5, 0.0)
        noise = lambda: (rng.standard_normal(l_idx.size) + 1j * rng.standard_normal(l_idx.size)) * spec
        self.a_bt, self.a_bc = amplitude * noise(), 0.6 * amplitude * noise()
        self.a_rh = noise() / np.sqrt((np.abs(noise()) ** 2).sum() + 1e-12)
        self.a_bt[m_idx == 0] = self.a_bt[m_idx == 0].real  # real fields need real m=0 coefficients
        # zonal mean: 8 m/s solid-body westerlies (Y10) and a baroclinic Y20 giving a warm equator and a jet
        self.a_bt[healpy.Alm.getidx(self.lmax, 1, 0)] = -A_EARTH * 8.0 / np.sqrt(3 / (4 * np.pi))
        self.a_bc[healpy.Alm.getidx(self.lmax, 2, 0)] = -1.4e8
        self.a_bc[m_idx == 0] = self.a_bc[m_idx == 0].real
        self.a_rh[m_idx == 0] = self.a_rh[m_idx == 0].real
        ll1 = np.maximum(l_idx * (l_idx + 1), 1)
        self.omega = m_idx * (OMEGA0 - 2 * (OMEGA + OMEGA0) / ll1)
        self.lon, self.lat = grid.pixel_centers(level, "nest")
        self.statics = self._statics(rng if planet_seed is None else np.random.default_rng(planet_seed))

    def _evaluate(self, alm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ψ, ∂ψ/∂θ, (1/sinθ)∂ψ/∂φ) in NEST order."""
        maps = healpy.alm2map_der1(alm, self.nside, lmax=self.lmax)
        return tuple(grid.reorder(m, self.level, "ring", "nest") for m in maps)

    def _statics(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        spec = np.where(self.l >= 1, np.maximum(self.l, 1) ** -1.0, 0.0)
        a = (rng.standard_normal(self.l.size) + 1j * rng.standard_normal(self.l.size)) * spec
        a[self.m == 0] = a[self.m == 0].real
        h = self._evaluate(a)[0]
        h = (h - h.mean()) / h.std()
        land = 1.0 / (1.0 + np.exp(-(h - 0.45) / 0.15))  # about 30% land, smooth coasts
        orog = np.clip(1500.0 * (h - 0.45), 0.0, None) * (land > 0.5)
        return {"orography": orog.astype(np.float32), "land_fraction": land.astype(np.float32)}

    def fields(self, t_seconds: float) -> dict[str, Float[np.ndarray, "... npix"]]:
        """All variables at time ``t_seconds`` (since the run start), NEST order.

        Returns dict with ``u, v, t, z, q`` of shape (13, npix) and 2-D ``tcwv, t2m, u10m, v10m, u100m,
        v100m, msl, sst, sic`` of shape (npix,), units as DATA §4.
        """
        phase = np.exp(-1j * self.omega * t_seconds)
        bt, bc = self._evaluate(self.a_bt * phase), self._evaluate(self.a_bc * phase)
        s_bt, ds_bt, s_bc, ds_bc = _structure(PLEVELS)
        col = lambda s: s[:, None]
        psi = col(s_bt) * bt[0] + col(s_bc) * bc[0]
        dpsi_dlnp = col(ds_bt) * bt[0] + col(ds_bc) * bc[0]
        u = (col(s_bt) * bt[1] + col(s_bc) * bc[1]) / A_EARTH  # −(1/a)∂ψ/∂lat = (1/a)∂ψ/∂θ
        v = (col(s_bt) * bt[2] + col(s_bc) * bc[2]) / A_EARTH
        z = std_geopotential(PLEVELS)[:, None] + F0 * psi
        t = std_temperature(PLEVELS)[:, None] - (F0 / R_DRY) * dpsi_dlnp
        rh_h = self._evaluate(self.a_rh * phase)[0]
        q = specific_humidity(np.clip(0.55 + 0.35 * np.tanh(rh_h / (rh_h.std() + 1e-12)), 0.15, 0.95), t)
        return {"u": u, "v": v, "t": t, "z": z, "q": q, **self._surface(u, v, t, z, q)}

    def _surface(self, u, v, t, z, q) -> dict[str, np.ndarray]:
        land = self.statics["land_fraction"]
        dp = np.diff(PLEVELS * 100.0)  # negative (pressure decreases upward)
        tcwv = -(0.5 * (q[1:] + q[:-1]) * dp[:, None]).sum(0) / G
        t2m = t[0] + 1.5
        msl = 100000.0 + 1.2 * z[0]  # p_msl ≈ 1000 hPa + ρ·Φ(1000 hPa), ρ = 1.2 kg m⁻³ (hydrostatic)
        sst = np.where(land > 0.5, 290.0, np.maximum(t2m + 1.0, 271.0))
        sic = np.where(land > 0.5, 0.0, np.clip((272.0 - sst) / 3.0, 0.0, 1.0))
        return {"tcwv": tcwv, "t2m": t2m, "u10m": 0.7 * u[0], "v10m": 0.7 * v[0], "u100m": 0.8 * u[0],
                "v100m": 0.8 * v[0], "msl": msl, "sst": sst, "sic": sic}


def specific_humidity(rh_low: Float[np.ndarray, " npix"], t: Float[np.ndarray, "13 npix"]) -> Float[np.ndarray, "13 npix"]:
    """q (kg/kg) on the 13 levels from the lower-tropospheric relative humidity ``rh_low`` and temperature.

    RH decreases with height (× 1.1 − 0.2·ln(1000/p), within [0.3, 1]) and q blends into a dry stratosphere
    (about :data:`Q_STRAT`) between 300 and 150 hPa.
    """
    rh = rh_low[None, :] * np.clip(1.1 - 0.6 * np.log(1000.0 / PLEVELS) / 3.0, 0.3, 1.0)[:, None]
    q_trop = rh * saturation_q(t, PLEVELS[:, None])
    w = np.clip((PLEVELS - 150.0) / 150.0, 0.0, 1.0)[:, None]
    return w * q_trop + (1 - w) * Q_STRAT * (0.8 + 0.4 * rh)


def reference_humidity() -> Float[np.ndarray, " levels"]:
    """q (kg/kg) of the reference column: standard-atmosphere temperature and the mean RH (0.55)."""
    return specific_humidity(np.array([0.55]), std_temperature(PLEVELS)[:, None])[:, 0]


def saturation_q(t_k: np.ndarray, p_hpa: np.ndarray) -> np.ndarray:
    """Saturation specific humidity (kg/kg) from Tetens' formula over water."""
    es = 6.112 * np.exp(17.67 * (t_k - 273.15) / (t_k - 29.65))
    es = np.minimum(es, 0.5 * p_hpa)
    return 0.622 * es / (p_hpa - 0.378 * es)
