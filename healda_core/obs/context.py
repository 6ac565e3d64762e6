"""The model's packed observation input: :class:`ObsContext`, the 50 ``features_v2`` and the packing utilities.

Observations reach the model sorted by their *flat pixel id* ``(b*T + t)*X' + pix`` (``pix`` at
``level_model`` in PAD_XY order), with ``cu_seqlens_k`` delimiting each pixel's slice: pixel ``i``
owns rows ``[cu_seqlens_k[i], cu_seqlens_k[i+1])``. Compatible with the reference ``ObsContext`` /
``prepare_obs_context`` keyword arguments. :func:`prepare_obs_context` sorts unsorted observations;
:func:`to_obs_context` takes the already sorted arrays of a packed file
(:class:`~healda_core.obs.packed_schema.PackedObs`).

The 50 ``features_v2`` metadata features of each observation (DATA §1.5), vectorised torch:

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
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

if TYPE_CHECKING:
    from healda_core.obs.packed_schema import PackedObs


@dataclass
class PixelGroupMap:
    """CSR map of pixels to kernel programs: program ``j`` owns
    ``program_pixels[program_ptr[j]:program_ptr[j+1]]``. Used only by GPU kernels to amortise weight loads.

    Attributes:
        program_ptr: (num_programs + 1,) int32.
        program_pixels: (num_grouped,) int32.
    """

    program_ptr: Int[Tensor, " programs_plus_1"]
    program_pixels: Int[Tensor, " grouped"]

    def to(self, device: torch.device | str | None = None) -> PixelGroupMap:
        return PixelGroupMap(self.program_ptr.to(device), self.program_pixels.to(device))


@dataclass
class ObsContext:
    """Observations sorted by flat pixel id, ready for the model.

    Attributes:
        obs: (N,) normalised observation values.
        float_metadata: (N, M) metadata features (M = ``obs_meta_dim``, 50 for features_v2).
        obs_type: (N,) integer report type ids (< 1024).
        channel: (N,) integer global channel ids (< 1024).
        platform: (N,) integer global platform ids (< 1024).
        cu_seqlens_k: (P + 1,) int32 prefix sums of per-pixel counts, leading 0; P = B*T*X'.
        max_seqlen_k: largest per-pixel count (0 when N == 0).
        group_map: optional :class:`PixelGroupMap` for the GPU kernels.
    """

    obs: Float[Tensor, " obs"]
    float_metadata: Float[Tensor, "obs meta"]
    obs_type: Int[Tensor, " obs"]
    channel: Int[Tensor, " obs"]
    platform: Int[Tensor, " obs"]
    cu_seqlens_k: Int[Tensor, " pixels_plus_1"]
    max_seqlen_k: int
    group_map: PixelGroupMap | None = None

    def __post_init__(self) -> None:
        if self.cu_seqlens_k.ndim != 1:
            raise ValueError(f"cu_seqlens_k must be 1-D, got shape {tuple(self.cu_seqlens_k.shape)}")

    @property
    def num_obs(self) -> int:
        """Number of observations N."""
        return int(self.obs.shape[0])

    @property
    def num_pixels(self) -> int:
        """Number of ragged pixels P = len(cu_seqlens_k) - 1."""
        return int(self.cu_seqlens_k.shape[0]) - 1

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> ObsContext:
        """Move every tensor to ``device``; cast only floating tensors to ``dtype``."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                v = v.to(device=device, dtype=dtype if (dtype is not None and v.is_floating_point()) else None)
            elif isinstance(v, PixelGroupMap):
                v = v.to(device)
            out[f.name] = v
        return replace(self, **out)


def counts_to_cu_seqlens(counts: Int[Tensor, " pixels"]) -> Int[Tensor, " pixels_plus_1"]:
    """int32 ``[0, cumsum(counts)...]`` of length P + 1."""
    cu = torch.zeros(counts.shape[0] + 1, dtype=torch.int32, device=counts.device)
    if counts.numel():
        cu[1:] = torch.cumsum(counts, 0).to(torch.int32)
    return cu


def sort_and_pack(
    flat_idx: Int[Tensor, " obs"], total_pixels: int
) -> tuple[Int[Tensor, " obs"], Int[Tensor, " pixels"]]:
    """Sort observations by flat pixel id.

    On CUDA (kernels enabled) this is the GPU counting sort of ``healda_core.kernels.packing``: O(N),
    but the order *within* a pixel follows atomic timing (harmless: attention over a pixel is
    permutation invariant); with ``torch.use_deterministic_algorithms(True)`` it is stable again.
    Elsewhere it is a stable sort.

    Returns:
        sorted_order: (N,) int32 permutation; ``flat_idx[sorted_order]`` is non-decreasing.
        counts: (P,) int64 observations per pixel.
    """
    from healda_core.kernels import kernels_enabled

    if flat_idx.is_cuda and kernels_enabled(flat_idx.device):
        from healda_core.kernels.packing import counting_sort

        return counting_sort(flat_idx, total_pixels)
    flat = flat_idx.long()
    if flat.numel():
        lo, hi = torch.aminmax(flat)
        if int(lo) < 0 or int(hi) >= total_pixels:
            raise ValueError(f"flat_idx must lie in [0, {total_pixels})")
    counts = torch.bincount(flat, minlength=total_pixels)
    order = torch.sort(flat, stable=True).indices
    return order.to(torch.int32), counts


def build_pixel_group_map(cu_seqlens_k: Int[Tensor, " pixels_plus_1"], thresh_mult: float = 2.0) -> PixelGroupMap:
    """Pair small non-empty pixels into shared kernel programs (reference ``build_pixel_group_map``).

    Large pixels (count >= ``median(nonzero counts) * thresh_mult``, lower median) get one program each,
    in ascending id; then small pixels go two per program in ascending id; an odd one is alone.
    """
    counts = (cu_seqlens_k[1:] - cu_seqlens_k[:-1]).long()
    nz = torch.nonzero(counts > 0).flatten()  # host sync 1 (its length)
    dev = cu_seqlens_k.device
    if nz.numel() == 0:
        return PixelGroupMap(torch.zeros(1, dtype=torch.int32, device=dev), torch.zeros(0, dtype=torch.int32, device=dev))
    c = counts[nz]
    threshold = torch.median(c.float()) * thresh_mult
    small = c.float() < threshold
    # large pixels first, then small ones, each in ascending id: a stable sort on the flag (no sync)
    pixels = nz[torch.sort(small.to(torch.uint8), stable=True).indices]
    n_large = nz.numel() - int(small.sum())  # host sync 2 (the program count)
    n_small = nz.numel() - n_large
    sizes = torch.cat([
        torch.ones(n_large, dtype=torch.int64, device=dev),
        torch.full((n_small // 2,), 2, dtype=torch.int64, device=dev),
        torch.ones(n_small % 2, dtype=torch.int64, device=dev),
    ])
    ptr = torch.zeros(sizes.numel() + 1, dtype=torch.int32, device=dev)
    ptr[1:] = torch.cumsum(sizes, 0).to(torch.int32)
    return PixelGroupMap(ptr, pixels.to(torch.int32))


def prepare_obs_context(
    obs: Float[Tensor, " obs"],
    float_metadata: Float[Tensor, "obs meta"],
    obs_type: Int[Tensor, " obs"],
    channel: Int[Tensor, " obs"],
    platform: Int[Tensor, " obs"],
    flat_idx: Int[Tensor, " obs"],
    total_pixels: int,
    *,
    build_group_map: bool = True,
    group_thresh_mult: float = 2.0,
) -> ObsContext:
    """Sort raw observations by flat pixel id and build ``cu_seqlens_k`` / ``max_seqlen_k``.

    Args:
        obs: (N,) normalised values. float_metadata: (N, M). obs_type, channel, platform: (N,) ids.
        flat_idx: (N,) ``(b*T + t)*X' + pix`` with ``pix`` at level_model in PAD_XY order.
        total_pixels: P = B*T*X'.

    Returns:
        An :class:`ObsContext` with every per-obs array gathered in sorted order.
        ``max_seqlen_k`` costs one host sync.
    """
    n = obs.shape[0]
    if obs.ndim != 1:
        raise ValueError(f"obs must be 1-D, got shape {tuple(obs.shape)}")
    if float_metadata.ndim != 2 or float_metadata.shape[0] != n:
        raise ValueError(f"float_metadata must be (N={n}, M), got {tuple(float_metadata.shape)}")
    for name, t in (("obs_type", obs_type), ("channel", channel), ("platform", platform), ("flat_idx", flat_idx)):
        if t.shape != (n,):
            raise ValueError(f"{name} must be ({n},), got {tuple(t.shape)}")
    # sort_and_pack validates the keys (ValueError outside [0, P)) with one host sync
    order, counts = sort_and_pack(flat_idx, total_pixels)
    cu = counts_to_cu_seqlens(counts)
    group_map = build_pixel_group_map(cu, group_thresh_mult) if build_group_map else None

    def take(t: Tensor) -> Tensor:  # int32 index, no int64 copy of the order
        return t.index_select(0, order)

    return ObsContext(
        obs=take(obs),
        float_metadata=take(float_metadata),
        obs_type=take(obs_type),
        channel=take(channel),
        platform=take(platform),
        cu_seqlens_k=cu,
        max_seqlen_k=int(counts.max()) if n else 0,
        group_map=group_map,
    )


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


def _on(a, device: torch.device | str) -> Tensor:
    """A packed column (NumPy array or CPU tensor, possibly pinned) on ``device``; the copy is asynchronous
    from pinned memory, and a no-copy view on the CPU."""
    t = a if isinstance(a, Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device, non_blocking=True)


def packed_features(p: PackedObs, device: torch.device | str = "cpu") -> Float[Tensor, "N 50"]:
    """The 50 features_v2 of every packed observation, each relative to its own frame time."""
    counts = torch.as_tensor(p.counts, device=device)
    bucket = torch.repeat_interleave(torch.arange(counts.numel(), device=device), counts)
    ft = torch.as_tensor(p.frame_times().reshape(-1), device=device)
    tk = ft[torch.div(bucket, p.n_cell, rounding_mode="floor")]
    col = {k: _on(p.obs[k], device) for k in ("time", "lon", "lat", "height", "pressure_hpa", "scan_angle",
                                               "sat_zenith", "solar_zenith")}
    return features_v2(tk, col["time"], col["lon"], col["lat"], col["height"], col["pressure_hpa"],
                       col["scan_angle"], col["sat_zenith"], col["solar_zenith"])


def to_obs_context(p: PackedObs, device: torch.device | str = "cpu", build_group_map: bool = True) -> ObsContext:
    """Build the :class:`ObsContext` directly from the stored (already sorted) arrays; no re-sort.

    ``p.obs`` needs the :data:`~healda_core.obs.packed_schema.MODEL_COLUMNS`, as NumPy arrays or CPU tensors (ids
    may be stored as 16-bit integers of either sign; they are widened to int64 on ``device``).
    """
    cu = counts_to_cu_seqlens(torch.as_tensor(p.counts, device=device))
    as_long = lambda k: _on(p.obs[k].astype(np.int32) if isinstance(p.obs[k], np.ndarray)
                            and p.obs[k].dtype == np.uint16 else p.obs[k], device).long()
    return ObsContext(
        obs=_on(p.obs["value_norm"], device),
        float_metadata=packed_features(p, device),
        obs_type=as_long("obs_type"), channel=as_long("global_channel"), platform=as_long("global_platform"),
        cu_seqlens_k=cu, max_seqlen_k=int(p.counts.max()) if p.counts.size and p.n_obs else 0,
        group_map=build_pixel_group_map(cu) if build_group_map else None,
    )
