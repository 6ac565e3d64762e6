"""Context parallelism: one sample's frames split over the ranks of a process group (ARCHITECTURE §7).

Layouts of a block activation with ``N = cp_size`` ranks, ``T`` frames and ``X'`` tokens per frame:

* **time-sharded** (between blocks, and around spatial attention, cross-attention and the MLP):
  rank ``r`` holds ``h[:, r·T/N:(r+1)·T/N]`` — (B, T/N, X', D), all pixels of its frames.
* **space-sharded** (temporal attention only): rank ``r`` holds ``h[:, :, r·X'/N:(r+1)·X'/N]`` —
  (B, T, X'/N, D), all frames of its pixels, frames in global order.

:func:`shard_x` / :func:`shard_t` convert with one autograd-aware ``all_to_all`` each. The model's RoPE
tables are built for the global frame count (``VideoDiT.cp_size``), so temporal attention rotates by the
global frame index — the reference builds them from the local count and crashes or skips the rotation.
Each rank's :class:`~healda_core.obs.ObsContext` must describe only its local B·(T/N)·X' pixels
(:func:`healda_core.train.data.slice_frames` does that).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from jaxtyping import Float
from torch import Tensor, nn


def _all_to_all(x: Tensor, group: dist.ProcessGroup) -> Tensor:
    """Autograd-aware ``all_to_all_single`` along dim 0 with equal splits (chunk j goes to rank j)."""
    try:
        from torch.distributed import _functional_collectives as funcol

        out = funcol.all_to_all_single_autograd(x, None, None, group)
        return funcol.wait_tensor(out)
    except (ImportError, AttributeError):  # older torch
        from torch.distributed.nn.functional import all_to_all_single

        return all_to_all_single(torch.empty_like(x), x, group=group)


def shard_x(h: Float[Tensor, "b t_loc x d"], group: dist.ProcessGroup) -> Float[Tensor, "b t x_loc d"]:
    """Time-sharded → space-sharded. ``X'`` must be divisible by the group size."""
    n = dist.get_world_size(group)
    b, t_loc, x, d = h.shape
    if x % n:
        raise ValueError(f"context parallelism: {x} tokens per frame are not divisible by {n} ranks")
    send = h.reshape(b, t_loc, n, x // n, d).permute(2, 0, 1, 3, 4).contiguous()  # chunk j → rank j
    recv = _all_to_all(send, group)  # (n, b, t_loc, x_loc, d): chunk s holds rank s's frames
    return recv.permute(1, 0, 2, 3, 4).reshape(b, n * t_loc, x // n, d)


def shard_t(h: Float[Tensor, "b t x_loc d"], group: dist.ProcessGroup) -> Float[Tensor, "b t_loc x d"]:
    """Space-sharded → time-sharded (the inverse of :func:`shard_x`)."""
    n = dist.get_world_size(group)
    b, t, x_loc, d = h.shape
    if t % n:
        raise ValueError(f"context parallelism: {t} frames are not divisible by {n} ranks")
    send = h.reshape(b, n, t // n, x_loc, d).permute(1, 0, 2, 3, 4).contiguous()  # frames of rank j → rank j
    recv = _all_to_all(send, group)  # (n, b, t_loc, x_loc, d): chunk s holds rank s's pixels
    return recv.permute(1, 2, 0, 3, 4).reshape(b, t // n, n * x_loc, d)


class ContextParallel:
    """The hook a ``VideoDiTBlock`` calls around its temporal sub-layer."""

    def __init__(self, group: dist.ProcessGroup):
        self.group = group
        self.size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)

    def to_space_sharded(self, h: Tensor) -> Tensor:
        return shard_x(h, self.group)

    def to_time_sharded(self, h: Tensor) -> Tensor:
        return shard_t(h, self.group)


def enable_context_parallel(model: nn.Module, group: dist.ProcessGroup | None) -> nn.Module:
    """Make ``model`` (a ``HealDA``) run on time-sharded inputs over ``group``; ``None`` disables.

    With N ranks, each rank's forward takes x (B, C, T/N, X), second_of_day/day_of_year (B, T/N) and an
    ObsContext of its B·(T/N)·X' pixels, and returns its frames of the output (B, C_out, T/N, X).
    Gradients of replicated parameters are partial per rank: sum (or average, as DDP does) them over
    the group.
    """
    dit = model.dit
    if group is None:
        dit.cp_size, dit.cp_rank = 1, 0
        for block in dit.blocks:
            block.context_parallel = None
        return model
    cp = ContextParallel(group)
    if model.time_length % cp.size:
        raise ValueError(f"context parallel size {cp.size} does not divide time_length {model.time_length}")
    if model.npix_model % cp.size:
        raise ValueError(f"context parallel size {cp.size} does not divide the {model.npix_model} model tokens")
    dit.cp_size, dit.cp_rank = cp.size, cp.rank
    for block in dit.blocks:
        block.context_parallel = cp if block.temporal_attention is not None else None
    return model


def local_frames(time_length: int, cp_size: int, cp_rank: int) -> tuple[int, int]:
    """``(start, stop)`` of the frames context-parallel rank ``cp_rank`` holds."""
    if time_length % cp_size:
        raise ValueError(f"context parallel size {cp_size} does not divide time_length {time_length}")
    n = time_length // cp_size
    return cp_rank * n, (cp_rank + 1) * n
