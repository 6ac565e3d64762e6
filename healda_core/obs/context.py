"""The model's packed observation input: :class:`ObsContext` and the packing utilities.

Observations reach the model sorted by their *flat pixel id* ``(b*T + t)*X' + pix`` (``pix`` at
``level_model`` in PAD_XY order), with ``cu_seqlens_k`` delimiting each pixel's slice: pixel ``i``
owns rows ``[cu_seqlens_k[i], cu_seqlens_k[i+1])``. Compatible with the reference ``ObsContext`` /
``prepare_obs_context`` keyword arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from jaxtyping import Float, Int
from torch import Tensor


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
