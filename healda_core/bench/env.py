"""What a benchmark result records about where it ran: library versions, the GPU and its driver, CPU count."""

from __future__ import annotations

import os
import subprocess
import sys


def env_info(modules: tuple[str, ...] = ()) -> dict:
    """torch, CUDA, Python and triton versions, the usable CPUs, each of ``modules``' version (None when it is
    not installed) and, with CUDA, the current GPU's name and the driver version (from ``nvidia-smi``)."""
    import torch

    from healda_core.kernels import triton_version

    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
            "cpus": len(os.sched_getaffinity(0)), "triton": triton_version()}
    for mod in modules:
        try:
            info[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            info[mod] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        try:
            q = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, check=False, timeout=20)
            info["driver"] = q.stdout.strip().splitlines()[0] if q.stdout.strip() else None
        except (OSError, subprocess.TimeoutExpired):
            info["driver"] = None
    return info
