"""prepare_obs_context / build_pixel_group_map on the CPU path: the spec's example, the group map layout, bad keys."""

from __future__ import annotations

import pytest
import torch

from healda_core.obs.context import build_pixel_group_map, counts_to_cu_seqlens, prepare_obs_context


def _ctx(flat, total=4):
    n = len(flat)
    obs = torch.arange(1, n + 1, dtype=torch.float32)
    meta = torch.stack([obs * 10, obs * 100], 1)
    ids = torch.arange(n)
    return prepare_obs_context(obs, meta, ids, ids + 5, ids + 7, torch.tensor(flat), total)


def test_spec_example():
    ctx = _ctx([2, 0, 2])
    assert ctx.obs.tolist() == [2.0, 1.0, 3.0]
    assert ctx.float_metadata[:, 0].tolist() == [20.0, 10.0, 30.0]
    assert ctx.obs_type.tolist() == [1, 0, 2] and ctx.channel.tolist() == [6, 5, 7] and ctx.platform.tolist() == [8, 7, 9]
    assert ctx.cu_seqlens_k.tolist() == [0, 1, 1, 3, 3] and ctx.cu_seqlens_k.dtype == torch.int32
    assert ctx.max_seqlen_k == 2 and ctx.group_map is not None


def test_group_map_large_pixels_first_then_small_pairs():
    counts = torch.tensor([5, 0, 1, 1, 9, 1, 0, 1])  # lower median of the non-zero counts is 1: threshold 2
    gm = build_pixel_group_map(counts_to_cu_seqlens(counts))
    assert gm.program_pixels.tolist() == [0, 4, 2, 3, 5, 7]
    assert gm.program_ptr.tolist() == [0, 1, 2, 4, 6]
    odd = build_pixel_group_map(counts_to_cu_seqlens(torch.tensor([4, 1, 1, 1])))
    assert odd.program_pixels.tolist() == [0, 1, 2, 3] and odd.program_ptr.tolist() == [0, 1, 3, 4]
    empty = build_pixel_group_map(counts_to_cu_seqlens(torch.zeros(3, dtype=torch.int64)))
    assert empty.program_ptr.tolist() == [0] and empty.program_pixels.numel() == 0


@pytest.mark.parametrize("flat", [[0, 4], [-1, 1]])
def test_keys_outside_the_grid_are_refused(flat):
    with pytest.raises(ValueError, match=r"flat_idx must lie in \[0, 4\)"):
        _ctx(flat)


def test_no_observations():
    ctx = _ctx([])
    assert ctx.obs.numel() == 0 and ctx.cu_seqlens_k.tolist() == [0, 0, 0, 0, 0] and ctx.max_seqlen_k == 0
