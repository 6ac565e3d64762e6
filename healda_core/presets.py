"""Named model configurations for ``healda init-ckpt --preset NAME``.

Every preset keeps the data conventions of the v2-UFS recipe (50 metadata features, 74 ERA5 outputs,
2 static inputs, 8 frames 6 h apart); they differ in width, depth and grid. The HEALPix levels matter for
the other files: the static file must be at ``level_in`` (``healda make-static --level``) and the packed
observations at ``level_model`` (``healda pack-obs --level``).

| preset | level_in / level_model | hidden × layers (heads) | parameters | use |
|---|---|---|---|---|
| ``healda-v2`` | 6 / 5 | 1536 × 32 (16) | 1,506,070,474 | the reference default (PhysicsNeMo ``VideoHealDA()``) |
| ``healda-base`` | 6 / 5 | 768 × 12 (8) | 175,405,514 | mid-size experiments |
| ``healda-small`` | 6 / 5 | 256 × 4 (4) | 9,360,010 | demos on the real grid, CPU-friendly |
| ``healda-demo`` | 3 / 3 | 96 × 3 (4) | 832,218 | the OSSE demo (``healda demo``), CPU minutes |
| ``healda-demo-gpu`` | 3 / 3 | 256 × 6 (8) | 9,383,626 | the OSSE demo at GPU scale (``--recipe gpu``) |
| ``healda-tiny`` | 2 / 1 | 64 × 2 (2) | 311,978 | tests and CI (192 input pixels) |
"""

from __future__ import annotations

from typing import Any

from healda_core.errors import UsageError

_SMALL_OBS = {"pixel_attn_n_q_heads": 16, "pixel_attn_n_kv_heads": 1, "pixel_attn_head_dim": 16,
              "obs_token_dim": 16, "obs_film_hidden_dim": 32}

PRESETS: dict[str, dict[str, Any]] = {
    "healda-v2": {},
    "healda-base": {"hidden_size": 768, "num_layers": 12, "num_heads": 8},
    "healda-small": {"hidden_size": 256, "num_layers": 4, "num_heads": 4, "condition_embed_dim": 64,
                     "noise_channels": 64, **_SMALL_OBS, "pixel_attn_n_q_heads": 32, "pixel_attn_n_kv_heads": 2},
    "healda-demo": {"hidden_size": 96, "num_layers": 3, "num_heads": 4, "level_in": 3, "level_model": 3,
                    "condition_embed_dim": 32, "noise_channels": 32, "drop_path": 0.0, **_SMALL_OBS},
    "healda-demo-gpu": {"hidden_size": 256, "num_layers": 6, "num_heads": 8, "level_in": 3, "level_model": 3,
                        "condition_embed_dim": 64, "noise_channels": 64, "drop_path": 0.0, **_SMALL_OBS,
                        "pixel_attn_n_q_heads": 32, "pixel_attn_n_kv_heads": 2},
    "healda-tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "level_in": 2, "level_model": 1,
                    "condition_embed_dim": 32, "noise_channels": 32, "drop_path": 0.0, **_SMALL_OBS},
}

DESCRIPTIONS: dict[str, str] = {
    "healda-v2": "reference default (PhysicsNeMo VideoHealDA defaults, v2-ufs-hpx64), 1.5 B parameters",
    "healda-base": "mid-size, level 6/5, 768 wide, 12 layers",
    "healda-small": "small, level 6/5, 256 wide, 4 layers: demos on the real grid",
    "healda-demo": "demo, level 3/3, 96 wide, 3 layers: the OSSE of `healda demo` on a CPU",
    "healda-demo-gpu": "demo, level 3/3, 256 wide, 6 layers: the OSSE of `healda demo --recipe gpu`",
    "healda-tiny": "tiny, level 2/1, 64 wide, 2 layers: tests and CI",
}


def preset_config(name: str) -> dict[str, Any]:
    """Full model configuration (every ``HealDA`` keyword) of preset ``name``."""
    from healda_core.model.healda import default_config

    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return {**default_config(), **PRESETS[name]}


def parameter_count(config: dict[str, Any]) -> int:
    """Number of parameters of the model ``config`` builds (on the meta device: no memory)."""
    import torch

    from healda_core.model.healda import HealDA

    with torch.device("meta"):
        model = HealDA(**config)
    return sum(p.numel() for p in model.parameters())


def init_checkpoint(name: str, seed: int = 0, dtype: str = "fp32"):
    """A randomly initialised checkpoint of preset ``name`` (reference initialisation, ``seed``).

    The 1.5 B default needs about 6 GB of host memory in float32 (plus 3 GB for a bf16 copy).
    """
    import torch

    from healda_core.checkpoint.convert import DTYPES, LoadedCheckpoint, cast_state_dict, validate_state_dict
    from healda_core.checkpoint.format import default_conventions, now_iso
    from healda_core.model.healda import HealDA

    config = preset_config(name)
    if dtype not in DTYPES:  # before the (for the default preset, minute-long) initialisation
        raise UsageError(f"--dtype must be one of fp32, bf16; got {dtype!r}")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = HealDA(**config)
    finally:
        torch.random.set_rng_state(gen_state)
    sd = validate_state_dict(model.state_dict(), config, f"preset {name}")
    del model
    sd = cast_state_dict(sd, DTYPES[dtype])
    return LoadedCheckpoint(state_dict=sd, config=config, conventions=default_conventions(config),
                            source_format="healda-init", path=f"preset:{name}",
                            extra={"preset": name, "seed": str(seed), "source": "healda init-ckpt",
                                   "created": now_iso()})
