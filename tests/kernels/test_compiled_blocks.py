"""``VideoDiT.compile_blocks`` with selective checkpointing and the kernel ops: one graph for every
observation count, no graph break, outputs and gradients equal to the eager model.

On the CPU this runs the Triton kernels in the interpreter (slow: tiny model, two batches)."""

from __future__ import annotations

import copy

import torch
from torch._dynamo.utils import counters

from healda_core import HealDA
from healda_core.distributed.activation_checkpoint import apply_activation_checkpointing
from tests.distributed.workers import randomize_zero_params
from tests.kernels.conftest import DEVICE
from tests.model.helpers import context_of, random_batch, tiny_config


def _eager_reference(monkeypatch, seed: int) -> HealDA:
    """A tiny model with every parameter random, on DEVICE, that compiles nothing itself; compile counters reset."""
    monkeypatch.setenv("HEALDA_COMPILE", "0")
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(seed)
    ref = HealDA(**tiny_config())
    randomize_zero_params(ref)
    return ref.to(DEVICE)


def test_compiled_checkpointed_blocks_one_graph_and_eager_results(monkeypatch):
    # the eager reference must not compile anything itself: on CUDA its temporal attention would otherwise run
    # through torch.compile (a second graph in the counters, as seen on an H200). The blocks of
    # `model` are compiled by compile_blocks() whatever HEALDA_COMPILE says.
    ref = _eager_reference(monkeypatch, seed=0).train()
    model = apply_activation_checkpointing(copy.deepcopy(ref), "selective")
    model.dit.compile_blocks()
    assert list(model.state_dict()) == list(ref.state_dict())
    for seed, n_obs in ((0, 200), (1, 150)):
        x, t, sod, doy, raw = random_batch(ref, b=2, n_obs=n_obs, seed=seed)
        x, t, sod, doy = (v.to(DEVICE) for v in (x, t, sod, doy))
        raw = {k: v.to(DEVICE) for k, v in raw.items()}
        outs = []
        for m in (ref, model):
            m.zero_grad()
            out = m(x, t, sod, doy, context_of(m, raw, 2))
            out.square().mean().backward()
            outs.append(out.detach())
        assert torch.allclose(outs[0], outs[1], atol=1e-5, rtol=1e-4)
        for (name, a), b in zip(ref.named_parameters(), model.parameters()):
            assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), name
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 1  # both observation counts ran the same compiled graph


def test_compiled_blocks_inference_matches_eager_with_one_graph(monkeypatch):
    """What ``HEALDA_COMPILE=tuned`` makes ``assimilate`` run: whole blocks compiled, no autograd, the kernel op
    inside the graph. Outputs equal the eager model's for two observation counts, traced once."""
    ref = _eager_reference(monkeypatch, seed=1).eval()
    model = copy.deepcopy(ref)
    model.dit.compile_blocks()
    for seed, n_obs in ((2, 180), (3, 95)):
        x, t, sod, doy, raw = random_batch(ref, b=1, n_obs=n_obs, seed=seed)
        x, t, sod, doy = (v.to(DEVICE) for v in (x, t, sod, doy))
        ctx = context_of(ref, {k: v.to(DEVICE) for k, v in raw.items()}, 1)
        with torch.inference_mode():
            want, got = ref(x, t, sod, doy, ctx), model(x, t, sod, doy, ctx)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] == 1
