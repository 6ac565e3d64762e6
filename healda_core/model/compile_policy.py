"""When the model compiles parts of itself with ``torch.compile`` (CUDA only; see README "GPU switches").

``HEALDA_COMPILE`` always wins (``1``/``0``; ``tuned`` = on, with Inductor's coordinate-descent tuning of the
fused kernels, which costs more compilation once; ``assimilate`` then
compiles whole blocks, see :func:`whole_blocks_wanted`). Without it, training (autograd on) compiles, and inference
follows the innermost :func:`inference_compile` (default: compile). ``assimilate`` turns compilation off
when too few forwards follow to repay it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

_INFERENCE: list[bool] = []  # innermost inference_compile() setting last


@contextlib.contextmanager
def inference_compile(enabled: bool) -> Iterator[None]:
    """Within the block, inference compiles (or not), unless ``HEALDA_COMPILE`` is set."""
    _INFERENCE.append(bool(enabled))
    try:
        yield
    finally:
        _INFERENCE.pop()


OFF = ("0", "off", "false", "no")  # HEALDA_COMPILE values that turn compilation off


def compile_env() -> str | None:
    """``HEALDA_COMPILE``, stripped and lower-cased; None when unset."""
    env = os.environ.get("HEALDA_COMPILE")
    return None if env is None else env.strip().lower()


def compile_wanted() -> bool:
    """``HEALDA_COMPILE`` if set; else True with autograd on; else the innermost :func:`inference_compile`
    (True outside any)."""
    env = compile_env()
    if env is not None:
        return env not in OFF
    if torch.is_grad_enabled():
        return True
    return _INFERENCE[-1] if _INFERENCE else True


def compile_options() -> dict | None:
    """Inductor options for the model's ``torch.compile`` calls: coordinate-descent tuning under
    ``HEALDA_COMPILE=tuned`` (results are cached by Inductor on disk, so later processes skip the tuning)."""
    return {"coordinate_descent_tuning": True} if compile_env() == "tuned" else None


def whole_blocks_wanted() -> bool:
    """``HEALDA_COMPILE=tuned``: inference compiles whole blocks (:meth:`VideoDiT.compile_blocks`, one graph for
    every observation count) instead of each block's two dense regions: faster and 1.1 GiB less memory per 1.5 B
    forward (docs/benchmarks.md, docs/design.md)."""
    return compile_env() == "tuned"
