"""GPU counting sort of observations by flat pixel id (``sort_and_pack`` on CUDA).

Two passes over the keys, O(N + P):
1. histogram: ``counts[key] += 1`` (int32 atomics);
2. scatter: ``pos = atomic_add(offsets[key], 1)``; ``order[pos] = i`` with ``offsets`` the exclusive prefix
   sum of the counts (one ``torch.cumsum``).

Keys outside [0, P) are not counted and raise ValueError afterwards (nothing is written out of bounds).
The order *within* a pixel depends on atomic timing, as in the reference; attention over a pixel is
permutation invariant. Under ``torch.use_deterministic_algorithms(True)`` a stable ``torch.sort``
(radix sort) is used instead, so the result equals the CPU path bit for bit.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK = 1024


@triton.jit
def _histogram_kernel(KEYS, COUNTS, N, P, BLOCK: tl.constexpr):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = i < N
    k = tl.load(KEYS + i, mask=m, other=0).to(tl.int64)
    ok = m & (k >= 0) & (k < P)
    tl.atomic_add(COUNTS + k, tl.full([BLOCK], 1, tl.int32), mask=ok, sem="relaxed")


@triton.jit
def _scatter_kernel(KEYS, OFFSETS, ORDER, N, P, BLOCK: tl.constexpr):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = i < N
    k = tl.load(KEYS + i, mask=m, other=0).to(tl.int64)
    ok = m & (k >= 0) & (k < P)
    pos = tl.atomic_add(OFFSETS + k, tl.full([BLOCK], 1, tl.int32), mask=ok, sem="relaxed")
    tl.store(ORDER + pos.to(tl.int64), i.to(tl.int32), mask=ok)


def counting_sort(flat_idx: Tensor, total_pixels: int) -> tuple[Tensor, Tensor]:
    """(order int32 (N,), counts int64 (P,)) of ``flat_idx`` on the GPU.

    Raises:
        ValueError: a key lies outside [0, total_pixels) (one host sync to check).
    """
    n = flat_idx.shape[0]
    dev = flat_idx.device
    if n >= 2**31 - 1:
        raise ValueError(f"at most 2**31 - 2 observations per call, got {n}")
    keys = flat_idx.contiguous()
    if torch.are_deterministic_algorithms_enabled():  # stable radix sort; counts by binary search
        vals, idx = torch.sort(keys, stable=True)
        if n and (int(vals[0]) < 0 or int(vals[-1]) >= total_pixels):
            raise ValueError(f"flat_idx must lie in [0, {total_pixels})")
        edges = torch.searchsorted(vals, torch.arange(total_pixels + 1, device=dev, dtype=vals.dtype))
        return idx.to(torch.int32), (edges[1:] - edges[:-1]).long()
    counts = torch.zeros(total_pixels, device=dev, dtype=torch.int32)
    order = torch.empty(n, device=dev, dtype=torch.int32)
    if n == 0:
        return order, counts.long()
    grid = (triton.cdiv(n, BLOCK),)
    _histogram_kernel[grid](keys, counts, n, total_pixels, BLOCK=BLOCK, num_warps=4)
    offsets = torch.cumsum(counts, 0, dtype=torch.int32) - counts
    _scatter_kernel[grid](keys, offsets, order, n, total_pixels, BLOCK=BLOCK, num_warps=4)
    counts = counts.long()
    if int(counts.sum()) != n:
        raise ValueError(f"flat_idx must lie in [0, {total_pixels})")
    return order, counts
