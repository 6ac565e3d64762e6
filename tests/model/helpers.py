"""Helpers shared by the model tests."""

from __future__ import annotations

import torch

from healda_core import HealDA, prepare_obs_context
from healda_core.distributed.verify import context_of, random_batch

__all__ = ["context_of", "fixture_context", "fixture_model", "random_batch", "run_fixture", "tiny_config"]


def fixture_model(fx: dict) -> HealDA:
    model = HealDA(**fx["config"]).eval()
    model.load_state_dict(fx["state_dict"], strict=True)
    return model


def fixture_context(fx: dict, perm: torch.Tensor | None = None):
    r = fx["inputs"]["raw_obs"]
    idx = torch.arange(r["obs"].shape[0]) if perm is None else perm
    return prepare_obs_context(r["obs"][idx], r["float_metadata"][idx], r["obs_type"][idx], r["channel"][idx],
                               r["platform"][idx], r["flat_idx"][idx], r["total_pixels"])


def run_fixture(model: HealDA, fx: dict, ctx=None) -> torch.Tensor:
    inp = fx["inputs"]
    ctx = fixture_context(fx) if ctx is None else ctx
    return model(inp["x"], inp["t"], inp["second_of_day"], inp["day_of_year"], ctx)


def tiny_config(**over) -> dict:
    """A small config (level 2 → 1) that runs in milliseconds on a CPU."""
    cfg = dict(in_channels=2, out_channels=3, hidden_size=32, num_layers=2, num_heads=2, level_in=2, level_model=1,
               time_length=4, condition_embed_dim=16, noise_channels=16, obs_token_dim=8, obs_meta_dim=6,
               obs_film_hidden_dim=16, channel_embed_dim=4, platform_embed_dim=4, pixel_attn_n_q_heads=4,
               pixel_attn_n_kv_heads=2, pixel_attn_head_dim=8, drop_path=0.0)
    cfg.update(over)
    return cfg
