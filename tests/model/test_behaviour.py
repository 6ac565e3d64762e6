"""Invariances, gradients without observations, and that the model can learn."""

from __future__ import annotations

import torch

from healda_core import HealDA

from .helpers import context_of, fixture_context, fixture_model, random_batch, run_fixture, tiny_config


def test_permuting_observations_within_pixels_leaves_output_unchanged(fixture_small):
    model = fixture_model(fixture_small)
    perm = torch.randperm(fixture_small["inputs"]["raw_obs"]["obs"].shape[0], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        base = run_fixture(model, fixture_small)
        ctx = fixture_context(fixture_small, perm)
        permuted = run_fixture(model, fixture_small, ctx)
    assert not torch.equal(ctx.obs, fixture_context(fixture_small).obs)  # the order really changed
    assert (base - permuted).abs().max().item() <= 1e-5


def _frame_perturbation(model, k, seed=0):
    x, t, sod, doy, raw = random_batch(model, b=2, n_obs=400, seed=seed)
    with torch.no_grad():
        base = model(x, t, sod, doy, context_of(model, raw, 2))
        x2 = x.clone()
        x2[:, :, k] += 1.0
        raw2 = dict(raw)
        sel = raw["t_idx"] == k
        raw2["obs"] = raw["obs"].clone()
        raw2["obs"][sel] += 3.0
        sod2 = sod.clone()
        sod2[:, k] += 3600
        out = model(x2, t, sod2, doy, context_of(model, raw2, 2))
    return base, out


def test_causal_frames_before_k_are_unchanged():
    torch.manual_seed(0)
    for cfg in (tiny_config(), tiny_config(linear_attention=False), tiny_config(temporal_causal_window=2)):
        model = HealDA(**cfg).eval()
        for p in model.parameters():  # non-zero gates, so no block is an identity
            torch.nn.init.normal_(p, std=0.3) if p.ndim < 2 else None
        k = 2
        base, out = _frame_perturbation(model, k)
        assert torch.equal(base[:, :, :k], out[:, :, :k])
        assert not torch.allclose(base[:, :, k:], out[:, :, k:])


def test_no_observations_gives_finite_gradients_for_every_parameter():
    torch.manual_seed(0)
    model = HealDA(**tiny_config()).train()
    x, t, sod, doy, raw = random_batch(model, b=2, n_obs=0)
    x.requires_grad_()
    out = model(x, torch.rand(2), sod, doy, context_of(model, raw, 2))
    out.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


def test_a_few_optimiser_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = HealDA(**tiny_config()).train()
    x, t, sod, doy, raw = random_batch(model, b=2, n_obs=300, seed=1)
    ctx = context_of(model, raw, 2)
    target = torch.randn(2, 3, 4, 192, generator=torch.Generator().manual_seed(2))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.huber_loss(model(x, t, sod, doy, ctx), target, delta=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_observations_reach_the_output():
    torch.manual_seed(0)
    model = HealDA(**tiny_config()).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3) if p.ndim < 2 else None
    x, t, sod, doy, raw = random_batch(model, b=1, n_obs=100)
    with torch.no_grad():
        a = model(x, t, sod, doy, context_of(model, raw, 1))
        raw["obs"] = raw["obs"] + 1
        b = model(x, t, sod, doy, context_of(model, raw, 1))
    assert not torch.allclose(a, b)


def test_bf16_autocast_forward_close_to_fp32(fixture_small):
    model = fixture_model(fixture_small)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = run_fixture(model, fixture_small)
    ref = fixture_small["output"]
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() <= 0.1 * ref.abs().max()


def test_inference_compile_policy(monkeypatch):
    """CUDA inference compiles unless told otherwise; HEALDA_COMPILE beats inference_compile(); never on the
    CPU or with autograd on."""
    from healda_core.model.attention import _compile_enabled
    from healda_core.model.compile_policy import inference_compile
    from healda_core.model.dit import use_compiled_regions

    class FakeCuda:
        is_cuda = True

    monkeypatch.delenv("HEALDA_COMPILE", raising=False)
    with torch.no_grad():
        assert use_compiled_regions(FakeCuda())
        with inference_compile(False):
            assert not use_compiled_regions(FakeCuda())
            assert not _compile_enabled()  # nor the temporal-attention core
            with inference_compile(True):
                assert use_compiled_regions(FakeCuda())
            monkeypatch.setenv("HEALDA_COMPILE", "1")
            assert use_compiled_regions(FakeCuda())
        monkeypatch.setenv("HEALDA_COMPILE", "0")
        assert not use_compiled_regions(FakeCuda())
        monkeypatch.delenv("HEALDA_COMPILE")
        assert not use_compiled_regions(torch.zeros(1))  # CPU
    assert not use_compiled_regions(FakeCuda())  # autograd on: training compiles whole blocks instead
