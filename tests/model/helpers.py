"""Helpers shared by the model tests."""

from __future__ import annotations

import torch

from healda_core import HealDA, prepare_obs_context


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


def random_batch(model: HealDA, b: int = 2, n_obs: int = 300, seed: int = 0):
    """Random inputs and observations for ``model`` (B=b)."""
    g = torch.Generator().manual_seed(seed)
    t_len, xin, xm = model.time_length, model.npix_in, model.npix_model
    meta = model.obs_tokenizer.meta_dim
    x = torch.randn(b, model.in_channels, t_len, xin, generator=g)
    t = torch.zeros(b)
    sod = torch.randint(0, 86400, (b, t_len), generator=g).float()
    doy = torch.rand(b, t_len, generator=g) * 365
    bi = torch.randint(0, b, (n_obs,), generator=g)
    ti = torch.randint(0, t_len, (n_obs,), generator=g)
    pix = torch.randint(0, xm, (n_obs,), generator=g)
    raw = dict(obs=torch.randn(n_obs, generator=g), float_metadata=torch.randn(n_obs, meta, generator=g),
               obs_type=torch.randint(0, 1024, (n_obs,), generator=g),
               channel=torch.randint(0, 1024, (n_obs,), generator=g),
               platform=torch.randint(0, 1024, (n_obs,), generator=g),
               flat_idx=(bi * t_len + ti) * xm + pix, t_idx=ti)
    return x, t, sod, doy, raw


def context_of(model: HealDA, raw: dict, b: int):
    return prepare_obs_context(raw["obs"], raw["float_metadata"], raw["obs_type"], raw["channel"], raw["platform"],
                               raw["flat_idx"], b * model.time_length * model.npix_model)
