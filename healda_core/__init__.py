"""healda_core: the HealDA v2 model, its kernels, the HEALPix grid and observation handling.

Public API (imported lazily so ``import healda_core`` stays cheap)::

    HealDA, VideoDiT, PixelCrossAttention, ObsTokenizerFiLM   # model (PhysicsNeMo VideoHealDA compatible)
    ObsContext, prepare_obs_context                           # packed observations
    load_model                                                # checkpoints (any supported format)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "HealDA": "healda_core.model.healda",
    "VideoDiT": "healda_core.model.dit",
    "PixelCrossAttention": "healda_core.model.cross_attention",
    "ObsTokenizerFiLM": "healda_core.model.film",
    "ObsContext": "healda_core.obs.context",
    "PixelGroupMap": "healda_core.obs.context",
    "prepare_obs_context": "healda_core.obs.context",
    "load_model": "healda_core.checkpoint",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'healda_core' has no attribute {name!r}")
