"""Distributed training: launch detection, DP × CP process groups, context parallelism, activation checkpointing."""

from healda_core.distributed.context_parallel import enable_context_parallel, local_frames, shard_t, shard_x
from healda_core.distributed.env import DistEnv, ParallelState, detect, init_distributed, shutdown

__all__ = ["DistEnv", "ParallelState", "detect", "enable_context_parallel", "init_distributed", "local_frames",
           "shard_t", "shard_x", "shutdown"]
