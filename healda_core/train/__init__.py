"""Training HealDA: configuration, data, the loop and checkpoints (``healda train``)."""

from healda_core.train.config import TrainConfig, load_config
from healda_core.train.loop import Trainer

__all__ = ["TrainConfig", "Trainer", "load_config"]
