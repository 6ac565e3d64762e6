"""One analysis step of ``healda assimilate``: a read packed batch in, physical NEST fields out.

:func:`host_alloc` gives the packed reader pinned host buffers on CUDA, so the copies to the device are
asynchronous; :func:`apply_precision` sets the model's GEMM precision (``bf16`` or the approximate ``fp8``);
:class:`AnalysisStep` runs the model on a batch and times the copy and the forward.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch

from healda_core import grid
from healda_core.analysis_io import era5_stats
from healda_core.errors import UsageError
from healda_core.fileio import HDF5_LOCK
from healda_core.model.fp8 import to_fp8
from healda_core.obs.frames import calendar

PRECISIONS = ("bf16", "fp8")


def host_alloc(dev: torch.device) -> Callable[[int, np.dtype], object] | None:
    """Where the reader decodes columns: pinned CPU tensors for CUDA (16-bit ids as int16: same bits, < 1024)."""
    if dev.type != "cuda":
        return None
    to_torch = {np.dtype(np.uint16): torch.int16, np.dtype(np.uint8): torch.uint8}

    def alloc(n: int, dtype: np.dtype) -> torch.Tensor:
        tdt = to_torch.get(np.dtype(dtype)) or torch.from_numpy(np.empty(0, dtype)).dtype
        return torch.empty(n, dtype=tdt, pin_memory=True)
    return alloc


def apply_precision(model: torch.nn.Module, precision: str, dev: torch.device) -> str:
    """Set the forward's precision on ``model`` (on ``dev``) before its first forward; returns it in words.

    ``bf16``: bf16 autocast on CUDA (float32 on the CPU). ``fp8``: in addition, the transformer blocks'
    attention projections and MLPs run as FP8 (e4m3) GEMMs with rowwise scales (:mod:`healda_core.model.fp8`):
    faster and approximate; CUDA, compute capability >= 8.9 only (AcceleratorError elsewhere).
    """
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    base = "bf16 autocast" if dev.type == "cuda" else "float32"
    if precision == "bf16":
        return base
    to_fp8(model)
    return f"{base}; FP8 e4m3 GEMMs (rowwise scales) in the blocks' attention projections and MLPs"


class AnalysisStep:
    """One forward of a read batch: its device copies and features, the static input broadcast over the frames,
    the model, de-normalisation with the ERA5 statistics and PAD_XY → NEST; the loop's fixed inputs are set once."""

    def __init__(self, model, cfg: dict, static: str | os.PathLike, dev: torch.device, n_frames: int):
        from healda_core.static import load_static

        self.model, self.dev, self.n_t, self.n_frames = model, dev, int(cfg["time_length"]), n_frames
        with HDF5_LOCK:  # the reader thread may be reading a packed file
            fields = load_static(static, int(cfg["level_in"]))
        self.static_in = torch.as_tensor(fields, device=dev)
        self.mean, self.std = (torch.as_tensor(a, dtype=torch.float32, device=dev)[:, None, None]
                               for a in era5_stats())
        self.perm = torch.as_tensor(np.array(grid.nest_to_padxy(int(cfg["level_in"]))), device=dev)

    def _sync(self) -> float:
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)
        return time.perf_counter()

    def __call__(self, p) -> tuple[np.ndarray, int, float, float]:
        """Fields (b, frames, 74, npix) NEST, physical, of the read batch ``p``; obs count; h2d and forward s."""
        from healda_core.obs.context import to_obs_context

        t0 = self._sync()
        ctx = to_obs_context(p, self.dev)
        ft = p.frame_times()
        sod, doy = (torch.as_tensor(c.astype(np.float32), device=self.dev) for c in calendar(ft))
        b = len(p.analysis_s)
        x = self.static_in[None, :, None, :].expand(b, -1, self.n_t, -1)
        tt = torch.zeros(b, device=self.dev)
        t1 = self._sync()
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.dev.type == "cuda" else nullcontext()
        with torch.inference_mode(), amp:
            y = self.model(x, tt, sod, doy, ctx)
        t2 = self._sync()
        y = y[:, :, self.n_t - self.n_frames:, :].float() * self.std + self.mean  # (b, 74, f, X) PAD_XY
        y = y.index_select(-1, self.perm).permute(0, 2, 1, 3).contiguous()  # NEST, (b, f, 74, X)
        return y.cpu().numpy(), int(ctx.obs.shape[0]), t1 - t0, t2 - t1
