"""Forward input validation raises ValueError with the reference's conditions."""

from __future__ import annotations

import pytest
import torch

from healda_core import HealDA, ObsContext

from .helpers import context_of, random_batch, tiny_config


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = HealDA(**tiny_config()).eval()
    x, t, sod, doy, raw = random_batch(model, b=2, n_obs=50)
    return model, x, t, sod, doy, context_of(model, raw, 2)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: {**a, "x": a["x"][0]}, "4-D"),
        (lambda a: {**a, "x": a["x"][:, :1]}, "channels"),
        (lambda a: {**a, "x": a["x"][:, :, :2]}, "frames"),
        (lambda a: {**a, "x": a["x"][..., :-12]}, "pixels"),
        (lambda a: {**a, "t": a["t"][:1]}, "t must have shape"),
        (lambda a: {**a, "second_of_day": a["second_of_day"][:, :1]}, "second_of_day"),
        (lambda a: {**a, "day_of_year": a["day_of_year"][:1]}, "day_of_year"),
        (lambda a: {**a, "class_labels": torch.zeros(2, 3)}, "class_labels"),
    ],
)
def test_bad_inputs_raise(setup, mutate, message):
    model, x, t, sod, doy, ctx = setup
    args = mutate({"x": x, "t": t, "second_of_day": sod, "day_of_year": doy, "class_labels": None})
    with pytest.raises(ValueError, match=message):
        model(args["x"], args["t"], args["second_of_day"], args["day_of_year"], ctx, args["class_labels"])


def test_wrong_cu_seqlens_length_raises(setup):
    model, x, t, sod, doy, ctx = setup
    bad = ObsContext(ctx.obs, ctx.float_metadata, ctx.obs_type, ctx.channel, ctx.platform,
                     ctx.cu_seqlens_k[:-1], ctx.max_seqlen_k)
    with pytest.raises(ValueError, match="cu_seqlens_k"):
        model(x, t, sod, doy, bad)


def test_class_labels_required_when_condition_dim_set():
    model = HealDA(**tiny_config(condition_dim=3)).eval()
    x, t, sod, doy, raw = random_batch(model, b=1, n_obs=10)
    ctx = context_of(model, raw, 1)
    with pytest.raises(ValueError, match="class_labels"):
        model(x, t, sod, doy, ctx)
    out = model(x, t, sod, doy, ctx, torch.randn(1, 3))
    assert out.shape == (1, 3, 4, 192)


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_size=30), "divisible"),
    (dict(pixel_attn_n_q_heads=6, pixel_attn_n_kv_heads=4), "divisible"),
    (dict(temporal_causal_window=2, is_causal=False), "causal"),
])
def test_bad_constructor_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HealDA(**tiny_config(**kwargs))
