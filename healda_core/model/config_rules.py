"""What a ``HealDA`` configuration may hold: types, ranges, divisibility, agreement with a checkpoint's tensors.

Configurations come from files (checkpoint headers, ``args.json``, training TOML), so they are checked in
plain Python before any module is built: a hostile value (``num_heads=0``, ``hidden_size=-64``,
``num_layers=1e6``) is refused in microseconds instead of dividing by zero or allocating without bound.
The ranges are generous (the 1.5 B reference default sits well inside them) but finite, so that the largest
accepted model is still buildable on the ``meta`` device in a bounded time.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: integer keywords and their inclusive ranges
INT_RANGES: dict[str, tuple[int, int]] = {
    "in_channels": (1, 256), "out_channels": (1, 1024), "hidden_size": (2, 8192), "num_layers": (1, 128),
    "num_heads": (1, 128), "level_in": (0, 8), "level_model": (0, 8), "time_length": (1, 64),
    "condition_embed_dim": (1, 8192), "noise_channels": (2, 8192), "condition_dim": (0, 8192),
    "max_seq_len": (1, 4096), "drop_path_zero_first_n_blocks": (0, 4096),
    "obs_token_dim": (1, 1024), "obs_meta_dim": (1, 1024), "obs_type_embed_dim": (1, 256),
    "channel_embed_dim": (1, 256), "platform_embed_dim": (1, 256), "obs_film_hidden_dim": (1, 4096),
    "pixel_attn_n_q_heads": (1, 1024), "pixel_attn_n_kv_heads": (1, 1024), "pixel_attn_head_dim": (1, 1024),
}
#: floating keywords: (low, high, low inclusive)
FLOAT_RANGES: dict[str, tuple[float, float, bool]] = {"mlp_ratio": (0.0, 16.0, False), "drop_path": (0.0, 1.0, True),
                                                       "rope_base": (0.0, 1e9, False)}
BOOL_KEYS = ("temporal_attention", "is_causal", "linear_attention", "use_rope", "qk_norm_affine",
             "use_fused_obs_mlp", "pixel_attn_use_proj_bias")
CHOICES: dict[str, tuple[Any, ...]] = {"qk_norm_type": ("RMSNorm", "LayerNorm", None),
                                       "attention_backend": ("timm", "sdpa"), "layernorm_backend": ("torch",)}


def config_problems(cfg: dict[str, Any]) -> list[str]:
    """Every rule ``cfg`` (a full configuration: every ``HealDA`` keyword) breaks, as short phrases."""
    problems = []
    for key, (lo, hi) in INT_RANGES.items():
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int):
            problems.append(f"{key}={v!r} must be an integer")
        elif not lo <= v <= hi:
            problems.append(f"{key}={v} is outside {lo}..{hi}")
    for key, (lo, hi, lo_incl) in FLOAT_RANGES.items():
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            problems.append(f"{key}={v!r} must be a finite number")
        elif not ((lo <= v) if lo_incl else (lo < v)) or not v <= hi:
            problems.append(f"{key}={v} is outside {'[' if lo_incl else '('}{lo}, {hi}]")
    problems += [f"{k}={cfg.get(k)!r} must be true or false" for k in BOOL_KEYS if not isinstance(cfg.get(k), bool)]
    for key, allowed in CHOICES.items():
        if cfg.get(key) not in allowed:
            problems.append(f"{key}={cfg.get(key)!r} must be one of {', '.join(map(repr, allowed))}")
    window = cfg.get("temporal_causal_window")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 4096):
        problems.append(f"temporal_causal_window={window!r} must be null or an integer in 1..4096")
    if problems:
        return problems  # the relations below assume the types are right
    return _relations(cfg)


def _relations(cfg: dict[str, Any]) -> list[str]:
    problems = []
    h, nh = cfg["hidden_size"], cfg["num_heads"]
    if h % nh or (h // nh) % 2:
        problems.append(f"hidden_size={h} must be divisible by num_heads={nh} with an even quotient")
    if cfg["level_model"] > cfg["level_in"]:
        problems.append(f"level_model={cfg['level_model']} must not exceed level_in={cfg['level_in']}")
    if cfg["noise_channels"] % 2:
        problems.append(f"noise_channels={cfg['noise_channels']} must be even")
    q, kv = cfg["pixel_attn_n_q_heads"], cfg["pixel_attn_n_kv_heads"]
    if q % kv:
        problems.append(f"pixel_attn_n_q_heads={q} must be divisible by pixel_attn_n_kv_heads={kv}")
    if cfg["use_rope"] and cfg["max_seq_len"] < cfg["time_length"]:
        problems.append(f"max_seq_len={cfg['max_seq_len']} must be at least time_length={cfg['time_length']}")
    if cfg["temporal_causal_window"] is not None and not cfg["is_causal"]:
        problems.append("temporal_causal_window needs is_causal=true")
    if cfg["qk_norm_affine"] and cfg["qk_norm_type"] == "RMSNorm":
        problems.append("qk_norm_affine=true is not supported with qk_norm_type='RMSNorm'")
    return problems


_BLOCK = re.compile(r"^dit\.blocks\.(\d+)\.")


def tensor_problems(cfg: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Disagreements between a valid configuration ``cfg`` and the tensor shapes of a checkpoint.

    Compares the few tensors that pin a configuration down (block count, token grid and width, input and
    output channels, noise frequencies), so a header claiming another model is refused before it is built.
    """
    problems = []
    blocks = {int(m.group(1)) for k in shapes if (m := _BLOCK.match(k))}
    if blocks and len(blocks) != cfg["num_layers"]:
        problems.append(f"num_layers={cfg['num_layers']} but the tensors hold {len(blocks)} blocks")
    h = cfg["hidden_size"]
    anchors = {"dit.tokenizer.pos_embed": ((12 * 4 ** cfg["level_model"], h), "level_model, hidden_size"),
               "dit.tokenizer.conv.weight": ((h, cfg["in_channels"]), "hidden_size, in_channels"),
               "dit.detokenizer.conv_t.weight": ((h, cfg["out_channels"]), "hidden_size, out_channels"),
               "dit.conditioning_embedder.map_noise.freqs": ((cfg["noise_channels"] // 2,), "noise_channels")}
    for name, (want, keys) in anchors.items():
        got = shapes.get(name)
        if got is not None and tuple(got[:len(want)]) != want:
            problems.append(f"{name} has shape {tuple(got)}, the configuration ({keys}) implies {want}")
    return problems
