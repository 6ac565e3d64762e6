"""The HealDA v2 model (PyTorch), compatible with PhysicsNeMo 2.2.2 ``VideoHealDA``."""

from healda_core.model.cross_attention import PixelCrossAttention
from healda_core.model.dit import VideoDiT, VideoDiTBlock
from healda_core.model.film import ObsTokenizerFiLM
from healda_core.model.healda import HealDA, default_config

__all__ = ["HealDA", "ObsTokenizerFiLM", "PixelCrossAttention", "VideoDiT", "VideoDiTBlock", "default_config"]
