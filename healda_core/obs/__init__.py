"""Observation handling: packing into the model's :class:`ObsContext`."""

from healda_core.obs.context import (
    ObsContext,
    PixelGroupMap,
    build_pixel_group_map,
    counts_to_cu_seqlens,
    prepare_obs_context,
    sort_and_pack,
)

__all__ = [
    "ObsContext",
    "PixelGroupMap",
    "build_pixel_group_map",
    "counts_to_cu_seqlens",
    "prepare_obs_context",
    "sort_and_pack",
]
