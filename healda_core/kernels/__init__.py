"""GPU kernels (Triton). The only package of healda that imports triton.

Every kernel has a pure-PyTorch path elsewhere in ``healda_core``; the model uses a kernel only when
:func:`kernels_enabled` says so for the tensor's device. ``HEALDA_KERNELS=off`` forces the PyTorch paths.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator

try:  # triton is optional: absent on macOS/Windows and CPU-only installs
    import triton  # noqa: F401

    HAS_TRITON = True
except Exception:  # pragma: no cover - depends on the platform
    HAS_TRITON = False


def triton_version() -> str | None:
    """Installed triton version, or None."""
    if not HAS_TRITON:
        return None
    import triton

    return triton.__version__


_USE: list[bool] = []  # innermost use_kernels() setting last


@contextlib.contextmanager
def use_kernels(enabled: bool) -> Iterator[None]:
    """Within the block the kernels run where they can (``True``) or never (``False``), whatever
    ``HEALDA_KERNELS`` says: how a benchmark times both paths in one process."""
    _USE.append(bool(enabled))
    try:
        yield
    finally:
        _USE.pop()


def kernels_enabled(device) -> bool:
    """True when the Triton kernels should run for tensors on ``device``.

    Requires triton and a CUDA device, or ``TRITON_INTERPRET=1`` (CPU interpreter, tests only), and
    ``HEALDA_KERNELS`` not set to ``off``/``0`` (inside :func:`use_kernels`, its setting instead).
    """
    if _USE and not _USE[-1]:
        return False
    if not _USE and os.environ.get("HEALDA_KERNELS", "on").lower() in ("off", "0", "false", "no"):
        return False
    if not HAS_TRITON:
        return False
    if getattr(device, "type", str(device)) == "cuda":
        return True
    return os.environ.get("TRITON_INTERPRET", "0") == "1" and os.environ.get("HEALDA_KERNELS", "").lower() == "force"


_OPS: dict[str, object] = {}


def kernel_op(module: str, name: str):
    """``healda_core.kernels.<module>.<name>``, or None when it cannot be imported (no triton). Imported once
    and kept: ``torch.compile`` cannot trace an import, so compiled code must find it already resolved."""
    key = f"{module}.{name}"
    if key not in _OPS:
        try:
            _OPS[key] = getattr(importlib.import_module(f"healda_core.kernels.{module}"), name, None)
        except ImportError:
            _OPS[key] = None
    return _OPS[key]


def eager_call() -> bool:
    """True outside every tracing or transform (``torch.compile``, ``make_fx``/fake tensors, ``torch.func``):
    a kernel's implementation may then run directly, without its ``torch.library`` op. The op's dispatch
    (autograd wrapper, fake-tensor support) costs ~0.1 ms of host time per call."""
    import torch
    from torch.utils._python_dispatch import is_in_torch_dispatch_mode

    return not (torch.compiler.is_compiling() or is_in_torch_dispatch_mode()
                or torch._C._are_functorch_transforms_active())


def needs_grad(*args) -> bool:
    """True when autograd will record a call on ``args``: grad mode on and a tensor argument requiring grad."""
    import torch

    return torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)
