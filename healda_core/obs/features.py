"""The 50 ``features_v2`` metadata features of each observation (DATA §1.5), vectorised torch.

``F_K(a) = [sin(1a), ..., sin(Ka), cos(1a), ..., cos(Ka)]`` (all sines first). With
``sod = (time_ns // 1e9) mod 86400``, ``LST = (sod/3600 + lon/15) mod 24`` hours and
``dt = (time_ns - t_k*1e9) * 1e-9 / 86400`` days:

| slots | content | rows |
|---|---|---|
| 0–3 | ``F_2(2π·LST/24)`` | all |
| 4, 5 | ``dt``, ``dt²`` | all |
| 6, 7 | ``sin(dt)``, ``cos(dt)`` | all |
| 8, 9 | ``sin(lat)``, ``cos(lat)`` (lat in radians) | all |
| 10–15 | ``F_3(2π·scan/50)`` | satellite (height NaN); 0 for conv |
| 16–23 | ``F_4(2π·satzen/90)`` | satellite |
| 24–29 | ``F_3(2π·solzen/180)`` | satellite |
| 30–39 | ``F_5(2π·clip(height/60000, 0, 1))`` | conv (height finite); 0 for sat |
| 40–49 | ``F_5(2π·clip(pressure/1100, 0, 1))`` | conv |

The only conv/sat switch is ``isnan(height)``; the satellite branch does not NaN-guard its angles.
Integer time arithmetic is int64; everything else is float32 on the inputs' device.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor

N_FEATURES = 50
TWO_PI = 2.0 * math.pi


def fourier(a: Float[Tensor, " n"], k: int, out: Float[Tensor, "twok n"] | None = None) -> Float[Tensor, "twok n"]:
    """``F_K(a)``: ``[sin(1a) .. sin(Ka), cos(1a) .. cos(Ka)]``, feature-major: shape (2K, N).

    Written into ``out`` (2K, N) when given; feature-major rows keep every write contiguous.
    """
    out = torch.empty((2 * k, a.shape[0]), dtype=a.dtype, device=a.device) if out is None else out
    for j in range(1, k + 1):
        m = a * j
        torch.sin(m, out=out[j - 1])
        torch.cos(m, out=out[k + j - 1])
    return out


def features_v2(
    target_time_s: Int[Tensor, " n"],
    time_ns: Int[Tensor, " n"],
    lon: Float[Tensor, " n"],
    lat: Float[Tensor, " n"],
    height: Float[Tensor, " n"],
    pressure_hpa: Float[Tensor, " n"],
    scan_angle: Float[Tensor, " n"],
    sat_zenith: Float[Tensor, " n"],
    solar_zenith: Float[Tensor, " n"],
) -> Float[Tensor, "n 50"]:
    """The (N, 50) float32 ``features_v2`` matrix; ``target_time_s`` is each obs's frame time ``t_k``."""
    f32 = torch.float32
    out = torch.empty((N_FEATURES, time_ns.shape[0]), dtype=f32, device=time_ns.device)
    lon, lat = lon.to(f32), lat.to(f32)
    sod = torch.remainder(torch.div(time_ns, 1_000_000_000, rounding_mode="floor"), 86400).to(f32)
    lst = torch.remainder(sod / 3600.0 + lon / 15.0, 24.0)
    fourier(TWO_PI * lst / 24.0, 2, out[0:4])
    dt = (time_ns - target_time_s * 1_000_000_000).to(f32) * 1e-9 / 86400.0
    out[4], out[5], out[6], out[7] = dt, dt * dt, torch.sin(dt), torch.cos(dt)
    lat_r = torch.deg2rad(lat)
    out[8], out[9] = torch.sin(lat_r), torch.cos(lat_r)
    fourier(TWO_PI * scan_angle.to(f32) / 50.0, 3, out[10:16])
    fourier(TWO_PI * sat_zenith.to(f32) / 90.0, 4, out[16:24])
    fourier(TWO_PI * solar_zenith.to(f32) / 180.0, 3, out[24:30])
    height = height.to(f32)
    fourier(TWO_PI * torch.clamp(torch.nan_to_num(height) / 60000.0, 0.0, 1.0), 5, out[30:40])
    fourier(TWO_PI * torch.clamp(pressure_hpa.to(f32) / 1100.0, 0.0, 1.0), 5, out[40:50])
    is_conv = ~torch.isnan(height)[None, :]
    out[10:30].masked_fill_(is_conv, 0.0)
    out[30:50].masked_fill_(~is_conv, 0.0)
    return out.T.contiguous()
