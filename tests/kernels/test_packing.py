"""GPU counting sort (``healda_core.kernels.packing``) and its dispatch from ``sort_and_pack``."""

from __future__ import annotations

import pytest
import torch

from healda_core.kernels.packing import counting_sort
from healda_core.obs.context import prepare_obs_context, sort_and_pack
from tests.kernels.conftest import DEVICE, gpu


@pytest.mark.parametrize("n, p", [(0, 5), (1, 1), (3000, 37), (5000, 4000)])
def test_counting_sort(n, p):
    keys = torch.randint(0, p, (n,), dtype=torch.int32, device=DEVICE)
    order, counts = counting_sort(keys, p)
    assert order.dtype == torch.int32 and counts.dtype == torch.int64
    assert torch.equal(counts.cpu(), torch.bincount(keys.long().cpu(), minlength=p))
    assert torch.equal(torch.sort(order.long()).values.cpu(), torch.arange(n))
    assert bool((keys[order.long()].diff() >= 0).all())


def test_out_of_range_keys_raise():
    keys = torch.tensor([0, 3, 7], dtype=torch.int64, device=DEVICE)
    with pytest.raises(ValueError, match="flat_idx"):
        counting_sort(keys, 5)


def test_deterministic_mode_is_the_stable_sort():
    keys = torch.randint(0, 17, (500,), device=DEVICE)
    torch.use_deterministic_algorithms(True)
    try:
        order, counts = counting_sort(keys, 17)
    finally:
        torch.use_deterministic_algorithms(False)
    assert torch.equal(order.long(), torch.sort(keys, stable=True).indices)


@gpu
def test_sort_and_pack_uses_the_kernel_on_cuda_and_packs_like_the_cpu():
    keys = torch.randint(0, 1000, (100_000,), device="cuda")
    order, counts = sort_and_pack(keys, 1000)
    assert torch.equal(counts.cpu(), torch.bincount(keys.cpu(), minlength=1000))
    assert bool((keys[order.long()].diff() >= 0).all())
    obs = torch.randn(100_000, device="cuda")
    meta = torch.randn(100_000, 3, device="cuda")
    ids = torch.randint(0, 9, (100_000,), device="cuda")
    ctx = prepare_obs_context(obs, meta, ids, ids, ids, keys, 1000)
    ref = prepare_obs_context(obs.cpu(), meta.cpu(), ids.cpu(), ids.cpu(), ids.cpu(), keys.cpu(), 1000)
    assert torch.equal(ctx.cu_seqlens_k.cpu(), ref.cu_seqlens_k)
    # same multiset of rows inside every pixel (order within a pixel is free)
    a = torch.sort(ctx.obs.cpu() + 1000 * torch.repeat_interleave(torch.arange(1000), ref.cu_seqlens_k.diff()))
    b = torch.sort(ref.obs + 1000 * torch.repeat_interleave(torch.arange(1000), ref.cu_seqlens_k.diff()))
    assert torch.equal(a.values, b.values)
