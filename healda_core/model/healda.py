"""``HealDA``: the HealDA v2 model, keyword- and state_dict-compatible with PhysicsNeMo 2.2.2 ``VideoHealDA``."""

from __future__ import annotations

import functools
import inspect

import torch
from jaxtyping import Float
from torch import Tensor, nn

from healda_core import grid
from healda_core.model.cross_attention import PixelCrossAttention
from healda_core.model.dit import VideoDiT
from healda_core.model.film import ObsTokenizerFiLM
from healda_core.model.patch import HEALPixPatchDetokenizer, HEALPixPatchTokenizer
from healda_core.obs.context import ObsContext


class HealDA(nn.Module):
    """HealDA v2: observations + static fields over T frames → analysis fields on HEALPix.

    Constructor keyword arguments and defaults are exactly those of ``VideoHealDA`` (ARCHITECTURE §1.1);
    ``self.config`` records all of them (defaults filled in), as ``args.json`` of ``.mdlus`` files does.

    Forward:
        x: (B, in_channels, T, 12·4**level_in) static inputs, PAD_XY order.
        t: (B,) noise level (0 for analysis). second_of_day, day_of_year: (B, T) per frame.
        obs: :class:`ObsContext` with B·T·12·4**level_model + 1 ``cu_seqlens_k`` entries.
        class_labels: (B, condition_dim) iff condition_dim > 0.

    Returns:
        (B, out_channels, T, 12·4**level_in) normalised fields, PAD_XY order.
    """

    def __init__(self, in_channels: int = 2, out_channels: int = 74, hidden_size: int = 1536, num_layers: int = 32,
                 num_heads: int = 16, mlp_ratio: float = 4.0, level_in: int = 6, level_model: int = 5,
                 time_length: int = 8, condition_embed_dim: int = 128, noise_channels: int = 128,
                 condition_dim: int = 0, temporal_attention: bool = True, is_causal: bool = True,
                 linear_attention: bool = True, use_rope: bool = True, rope_base: int = 100, max_seq_len: int = 100,
                 temporal_causal_window: int | None = None, drop_path: float = 0.1,
                 drop_path_zero_first_n_blocks: int = 4, qk_norm_type: str | None = "RMSNorm",
                 qk_norm_affine: bool = False, attention_backend: str = "timm", layernorm_backend: str = "torch",
                 obs_token_dim: int = 32, obs_meta_dim: int = 50, obs_type_embed_dim: int = 4,
                 channel_embed_dim: int = 16, platform_embed_dim: int = 8, obs_film_hidden_dim: int = 64,
                 use_fused_obs_mlp: bool = True, pixel_attn_n_q_heads: int = 64, pixel_attn_n_kv_heads: int = 2,
                 pixel_attn_head_dim: int = 32, pixel_attn_use_proj_bias: bool = True):
        super().__init__()
        self.config = {k: v for k, v in locals().items() if k in _CONFIG_KEYS}
        if hidden_size % num_heads or (hidden_size // num_heads) % 2:
            raise ValueError(f"hidden_size {hidden_size} must be divisible by num_heads {num_heads} with an even quotient")
        if level_model > level_in:
            raise ValueError(f"level_model ({level_model}) must not exceed level_in ({level_in})")
        self.in_channels, self.out_channels, self.time_length = in_channels, out_channels, time_length
        self.level_in, self.level_model, self.condition_dim = level_in, level_model, condition_dim
        self.obs_tokenizer = ObsTokenizerFiLM(
            meta_dim=obs_meta_dim, out_dim=obs_token_dim, n_embed=1024, obs_type_embed_dim=obs_type_embed_dim,
            channel_embed_dim=channel_embed_dim, platform_embed_dim=platform_embed_dim,
            use_fused_mlp=use_fused_obs_mlp, hidden_dim=obs_film_hidden_dim)
        cross = functools.partial(PixelCrossAttention, hidden_size=hidden_size, token_dim=obs_token_dim,
                                  n_q_heads=pixel_attn_n_q_heads, n_kv_heads=pixel_attn_n_kv_heads,
                                  d_head=pixel_attn_head_dim, use_proj_bias=pixel_attn_use_proj_bias)
        n0 = min(drop_path_zero_first_n_blocks, num_layers)
        attn_kwargs = {"qk_norm_type": qk_norm_type, "qk_norm_affine": qk_norm_affine} if qk_norm_type else {
            "qk_norm_type": None}
        self.dit = VideoDiT(
            HEALPixPatchTokenizer(in_channels=in_channels, hidden_size=hidden_size, level_fine=level_in,
                                  level_coarse=level_model, separate_time_axis=True),
            HEALPixPatchDetokenizer(hidden_size=hidden_size, out_channels=out_channels, level_coarse=level_model,
                                    level_fine=level_in, time_length=time_length, condition_dim=condition_embed_dim),
            hidden_size, num_heads, num_layers, emb_channels=condition_embed_dim, noise_channels=noise_channels,
            condition_dim=condition_dim, temporal_attention=temporal_attention, use_rope=use_rope,
            rope_base=rope_base, max_seq_len=max_seq_len,
            temporal_kwargs={"linear_attention": linear_attention, "causal_window": temporal_causal_window},
            cross_attention=cross, is_causal=is_causal, attention_backend=attention_backend,
            layernorm_backend=layernorm_backend, mlp_ratio=mlp_ratio,
            drop_path_rates=[0.0] * n0 + [drop_path] * (num_layers - n0), attn_kwargs=attn_kwargs)

    @property
    def npix_in(self) -> int:
        return grid.npix(self.level_in)

    @property
    def npix_model(self) -> int:
        return grid.npix(self.level_model)

    def _validate(self, x: Tensor, t: Tensor, sod: Tensor, doy: Tensor, obs: ObsContext, labels: Tensor | None) -> None:
        if x.ndim != 4:
            raise ValueError(f"x must be 4-D (B, C, T, X), got shape {tuple(x.shape)}")
        b, c, frames, npix = x.shape
        if c != self.in_channels:
            raise ValueError(f"x has {c} channels, expected in_channels={self.in_channels}")
        if frames * self.dit.cp_size != self.time_length:
            raise ValueError(f"x has {frames} frames, expected time_length={self.time_length}")
        if npix != self.npix_in:
            raise ValueError(f"x has {npix} pixels, expected 12*4**{self.level_in} = {self.npix_in}")
        if t.shape != (b,):
            raise ValueError(f"t must have shape ({b},), got {tuple(t.shape)}")
        for name, v in (("second_of_day", sod), ("day_of_year", doy)):
            if v.shape != (b, frames):
                raise ValueError(f"{name} must have shape ({b}, {frames}), got {tuple(v.shape)}")
        expected = b * frames * self.npix_model + 1
        if obs.cu_seqlens_k.shape[0] != expected:
            raise ValueError(f"obs.cu_seqlens_k has {obs.cu_seqlens_k.shape[0]} entries, expected B*T*X'+1 = {expected}")
        if (labels is None) != (self.condition_dim == 0):
            raise ValueError(f"class_labels must be given iff condition_dim > 0 (condition_dim={self.condition_dim})")
        if labels is not None and labels.shape != (b, self.condition_dim):
            raise ValueError(f"class_labels must have shape ({b}, {self.condition_dim}), got {tuple(labels.shape)}")

    def forward(self, x: Float[Tensor, "b c t x"], t: Float[Tensor, " b"], second_of_day: Float[Tensor, "b t"],
                day_of_year: Float[Tensor, "b t"], obs: ObsContext,
                class_labels: Tensor | None = None) -> Float[Tensor, "b cout t x"]:
        if not torch.compiler.is_compiling():
            self._validate(x, t, second_of_day, day_of_year, obs, class_labels)
        tokens = self.obs_tokenizer(obs.obs, obs.float_metadata, obs.obs_type, obs.channel, obs.platform)
        if not torch.compiler.is_compiling():
            torch._dynamo.maybe_mark_dynamic(tokens, 0)  # compiled blocks: one graph for every observation count
        cross_kwargs = {"tokens": tokens, "cu_seqlens_k": obs.cu_seqlens_k, "max_seqlen_k": obs.max_seqlen_k,
                        "group_map": obs.group_map}
        return self.dit(x, t, condition=class_labels, cross_attn_kwargs=cross_kwargs,
                        tokenizer_kwargs={"second_of_day": second_of_day, "day_of_year": day_of_year})


_CONFIG_KEYS = tuple(p for p in inspect.signature(HealDA.__init__).parameters if p != "self")


def default_config() -> dict:
    """Every constructor keyword with its default (the reference default, 1,506,070,474 parameters)."""
    return {k: p.default for k, p in inspect.signature(HealDA.__init__).parameters.items() if k != "self"}
