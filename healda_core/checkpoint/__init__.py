"""Checkpoints: the healda safetensors format, conversion from/to PhysicsNeMo and NVlabs files, loading.

``load_model(path, device=...)`` accepts every format :func:`read_checkpoint` reads and returns an
eval-mode :class:`~healda_core.model.healda.HealDA` with ``model.checkpoint_info`` (config, conventions,
weights hash, source).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from healda_core.checkpoint.convert import (
    LoadedCheckpoint,
    cast_state_dict,
    info_dict,
    read_checkpoint,
    write_mdlus,
    write_safetensors,
)
from healda_core.checkpoint.format import CheckpointHeader, default_conventions, read_header, weights_sha256

__all__ = [
    "CheckpointHeader",
    "LoadedCheckpoint",
    "build_model",
    "cast_state_dict",
    "default_conventions",
    "info_dict",
    "load_model",
    "read_checkpoint",
    "read_header",
    "weights_sha256",
    "write_mdlus",
    "write_safetensors",
]


def build_model(ckpt: LoadedCheckpoint, device: str | torch.device = "cpu",
                dtype: torch.dtype = torch.float32):
    """Instantiate ``HealDA`` from a read checkpoint and load its weights (strict)."""
    from healda_core.model.healda import HealDA

    device = torch.device(device)
    with torch.device(device):
        model = HealDA(**ckpt.config)
    model.to(device)
    model.load_state_dict(ckpt.state_dict, strict=True)
    if dtype != torch.float32:
        model.to(dtype)
        model.dit.conditioning_embedder.map_noise.freqs.data = model.dit.conditioning_embedder.map_noise.freqs.float()
    model.eval().requires_grad_(False)
    model.checkpoint_info = {"path": ckpt.path, "format": ckpt.source_format, "config": ckpt.config,
                             "conventions": ckpt.conventions, "weights_sha256": ckpt.sha256(),
                             **ckpt.extra}
    return model


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
               config: dict[str, Any] | None = None, verify: bool = True):
    """Load a HealDA model from any supported checkpoint file (no pickle); eval mode, no grad.

    Args:
        path: healda ``.safetensors``, PhysicsNeMo ``.mdlus``, NVlabs ``.checkpoint``, or a state_dict ``.pt``
            (the last needs ``config``).
        device: where to put the model. dtype: parameter dtype (float32 default; inference on GPU uses
            bf16 autocast over float32 weights).
        config: model configuration overriding the file's (``VideoHealDA`` keyword arguments).
        verify: check the weights against the header's ``weights_sha256`` (False also accepts a header without
            one; for recovering damaged files only).

    Raises:
        CheckpointError: unreadable, corrupt, pickle-bearing or mismatched checkpoint.
    """
    return build_model(read_checkpoint(path, config=config, verify=verify), device=device, dtype=dtype)
