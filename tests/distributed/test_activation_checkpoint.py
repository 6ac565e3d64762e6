"""Activation checkpointing keeps state_dict keys, outputs and gradients."""

from __future__ import annotations

import copy

import pytest
import torch

from healda_core import HealDA
from healda_core.distributed.activation_checkpoint import apply_activation_checkpointing
from tests.distributed.workers import randomize_zero_params
from tests.model.helpers import context_of, random_batch, tiny_config


@pytest.mark.parametrize("mode", ["full", "selective"])
def test_checkpointed_blocks_match(mode):
    torch.manual_seed(0)
    ref = HealDA(**tiny_config()).train()
    randomize_zero_params(ref)
    model = apply_activation_checkpointing(copy.deepcopy(ref), mode)
    assert list(model.state_dict()) == list(ref.state_dict())
    x, t, sod, doy, raw = random_batch(ref, b=2, n_obs=200)
    outs = []
    for m in (ref, model):
        out = m(x, t, sod, doy, context_of(m, raw, 2))
        out.square().mean().backward()
        outs.append(out.detach())
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    for (n, a), b in zip(ref.named_parameters(), model.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-5), n

