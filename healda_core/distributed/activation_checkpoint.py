"""Activation checkpointing of the DiT blocks, applied to a finished model (state_dict keys unchanged).

Modes:

* ``"none"``: keep every activation.
* ``"full"``: each block keeps only its input; its forward is recomputed in the backward pass.
* ``"selective"``: as full, but the outputs of the attention kernels (SDPA / flash / cuDNN / efficient, and the
  ragged pixel cross-attention kernel ``healda::ragged_pixel_attn_fwd``) are saved, so the backward recomputes only the cheap matmuls and
  element-wise ops, never the O(X'²) spatial attention. At the 1.5 B default (B=1, T=8, X'=12288, D=1536) a
  saved attention output is 0.3 GB per block in bf16.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

MODES = ("none", "full", "selective")


def _saved_ops() -> set:
    ops = set()
    for name in ("_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
                 "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu"):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            ops.add(op.default)
    import contextlib

    with contextlib.suppress(Exception):  # registers healda::ragged_pixel_attn_fwd (needs triton; absent on CPU installs)
        import healda_core.kernels.pixel_attn_op  # noqa: F401
    for name in ("ragged_pixel_attn_fwd",):
        try:
            ops.add(getattr(torch.ops.healda, name).default)
        except (AttributeError, RuntimeError):
            pass
    return ops


@functools.lru_cache(maxsize=1)
def _saved_ops_cached() -> frozenset:
    return frozenset(_saved_ops())


def _policy_context():
    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    saved = _saved_ops_cached()

    def policy(ctx, op, *args, **kwargs):
        return CheckpointPolicy.MUST_SAVE if op in saved else CheckpointPolicy.PREFER_RECOMPUTE

    return create_selective_checkpoint_contexts(policy)


def checkpoint_full(fn, *args):
    """Recompute all of ``fn(*args)`` in the backward pass."""
    return checkpoint(fn, *args, use_reentrant=False)


def checkpoint_selective(fn, *args):
    """Recompute ``fn(*args)`` in the backward pass except the attention kernels' outputs."""
    return checkpoint(fn, *args, use_reentrant=False, context_fn=_policy_context)


def apply_activation_checkpointing(model: nn.Module, mode: str = "selective", every: int = 1) -> nn.Module:
    """Checkpoint every ``every``-th block of ``model.dit.blocks`` (``HealDA``) in ``mode``; returns ``model``.

    Sets ``block.checkpointing`` (module-level functions, the same objects on every block, so blocks compiled
    with :meth:`VideoDiT.compile_blocks` share one graph); inference (no autograd) never checkpoints."""
    if mode not in MODES:
        raise ValueError(f"activation checkpointing mode must be one of {MODES}, got {mode!r}")
    fn = {"none": None, "full": checkpoint_full, "selective": checkpoint_selective}[mode]
    for i, block in enumerate(model.dit.blocks):
        block.checkpointing = fn if i % max(1, every) == 0 else None
    return model
