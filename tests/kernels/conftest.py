"""Kernel tests run on CUDA when it is there, else on the CPU through the Triton interpreter.

``TRITON_INTERPRET=1`` must be set before the kernel modules are imported (``@triton.jit`` reads it at
decoration), so it is set here, at collection, when there is no GPU. ``HEALDA_KERNELS=force`` (needed for
the CPU dispatch) is set per test only, so other test folders keep the PyTorch paths.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ["TRITON_INTERPRET"] = "1"

pytest.importorskip("triton", reason="triton is not installed (kernels need Linux x86-64)")

_mod = sys.modules.get("healda_core.kernels.pixel_attn")
if not HAS_CUDA and _mod is not None and type(_mod._pa_fwd_kernel).__name__ != "InterpretedFunction":  # pragma: no cover
    raise RuntimeError("healda_core.kernels.pixel_attn was imported before TRITON_INTERPRET=1 was set; "
                       "run tests/kernels in its own pytest process")

DEVICE = torch.device("cuda" if HAS_CUDA else "cpu")
gpu = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (these tests run on the device machine)")


@pytest.fixture(autouse=True)
def _kernels_on(monkeypatch):
    monkeypatch.setenv("HEALDA_KERNELS", "force")
    from healda_core.kernels import pixel_attn_op, tuning

    monkeypatch.setattr(pixel_attn_op, "SCHEDULE", "sorted")
    monkeypatch.setattr(tuning, "OVERRIDE", None)


def rel_err(a: torch.Tensor, b: torch.Tensor, floor: float = 1e-6) -> float:
    """Scale-relative max error max|a-b| / max(max|b|, floor) (the issue's criterion).

    ``floor`` matters only when the reference is (mathematically) zero, e.g. dQ of a pixel with one token.
    """
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(floor)) if b.numel() else 0.0
