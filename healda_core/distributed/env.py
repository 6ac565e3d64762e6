"""Launch detection and process-group setup: torchrun first, then SLURM ``srun``, else one process.

``detect()`` only reads the environment; ``init_distributed(env, cp=...)`` creates the default process group
and a ``(dp, cp)`` :class:`~torch.distributed.device_mesh.DeviceMesh` with the context-parallel dimension
innermost, so the ranks of one CP group are consecutive (on the same node when ``cp`` divides the GPUs per node).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field

import torch
import torch.distributed as dist

from healda_core.errors import UsageError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job.

    Attributes:
        rank, local_rank, world_size: global rank, rank on this node, number of processes.
        master_addr, master_port: rendezvous address (``None`` for a single process).
        launcher: ``"torchrun"``, ``"slurm"`` or ``"single"``.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    master_addr: str | None = None
    master_port: int | None = None
    launcher: str = "single"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def to_dict(self) -> dict:
        return asdict(self)


def _first_slurm_host(nodelist: str) -> str:
    """First host of a SLURM node list such as ``gpu[003-005,010],cpu1`` → ``gpu003``."""
    m = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist.strip())
    if not m:
        return nodelist
    prefix, ranges = m.group(1), m.group(3)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def detect(environ: dict[str, str] | None = None) -> DistEnv:
    """The launch topology from torchrun variables, else SLURM's, else a single process.

    SLURM is used only when it launched one task per process (``srun``), i.e. ``SLURM_NTASKS > 1`` and
    ``SLURM_PROCID`` is set; ``MASTER_ADDR``/``MASTER_PORT`` override the derived rendezvous
    (first node of ``SLURM_JOB_NODELIST``, port 29500 + job id mod 1000).
    """
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistEnv(rank=int(env["RANK"]), local_rank=int(env.get("LOCAL_RANK", 0)),
                       world_size=int(env["WORLD_SIZE"]), master_addr=env.get("MASTER_ADDR"),
                       master_port=int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else None, launcher="torchrun")
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        nodelist = env.get("SLURM_JOB_NODELIST", env.get("SLURM_NODELIST", "localhost"))
        port = env.get("MASTER_PORT") or str(29500 + int(env.get("SLURM_JOB_ID", "0")) % 1000)
        return DistEnv(rank=int(env["SLURM_PROCID"]), local_rank=int(env.get("SLURM_LOCALID", 0)),
                       world_size=int(env["SLURM_NTASKS"]), master_addr=env.get("MASTER_ADDR") or
                       _first_slurm_host(nodelist), master_port=int(port), launcher="slurm")
    return DistEnv()


@dataclass
class ParallelState:
    """The process groups of a DP × CP job (all ``None`` / 1 for a single process).

    Attributes:
        env: the :class:`DistEnv`. device: this rank's device.
        dp_size, dp_rank: data-parallel size and rank (ranks with equal ``dp_rank`` see the same samples).
        cp_size, cp_rank: context-parallel size and rank (frames ``[cp_rank·T/cp, (cp_rank+1)·T/cp)``).
        mesh: the ``(dp, cp)`` DeviceMesh. cp_group: this rank's CP process group.
    """

    env: DistEnv = field(default_factory=DistEnv)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dp_size: int = 1
    dp_rank: int = 0
    cp_size: int = 1
    cp_rank: int = 0
    mesh: object = None
    cp_group: object = None

    @property
    def is_main(self) -> bool:
        return self.env.rank == 0

    def describe(self) -> dict:
        return {**self.env.to_dict(), "device": str(self.device), "dp": self.dp_size, "cp": self.cp_size,
                "backend": dist.get_backend() if dist.is_initialized() else None}


def pick_device(env: DistEnv, device: str = "auto") -> torch.device:
    """``cuda:<local_rank>`` when CUDA is available (or asked for), else CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda requested but CUDA is not available")
        return torch.device("cuda", env.local_rank % torch.cuda.device_count())
    return torch.device(device)


def init_distributed(env: DistEnv | None = None, cp: int = 1, device: str = "auto",
                     init_method: str | None = None, timeout_s: float = 1800.0) -> ParallelState:
    """Initialise the default process group (NCCL on CUDA, gloo on CPU) and the ``(dp, cp)`` mesh.

    Calls ``torch.cuda.set_device(local_rank)`` before ``init_process_group``. Reuses an already
    initialised default group (tests). ``cp`` must divide the world size.
    """
    import datetime

    env = env or detect()
    dev = pick_device(env, device)
    if env.world_size % cp:
        raise UsageError(f"context parallel size {cp} does not divide the world size {env.world_size}")
    if not env.distributed and not dist.is_initialized():
        if cp != 1:
            raise UsageError(f"context parallel size {cp} needs {cp} processes (launch with torchrun or srun)")
        return ParallelState(env=env, device=dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        if init_method is None and env.master_addr is not None:
            os.environ.setdefault("MASTER_ADDR", env.master_addr)
            os.environ.setdefault("MASTER_PORT", str(env.master_port or 29500))
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method=init_method or "env://",
                                rank=env.rank, world_size=env.world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    from torch.distributed.device_mesh import init_device_mesh

    dp = env.world_size // cp
    mesh = init_device_mesh(dev.type, (dp, cp), mesh_dim_names=("dp", "cp"))
    return ParallelState(env=env, device=dev, dp_size=dp, dp_rank=mesh.get_local_rank("dp"), cp_size=cp,
                         cp_rank=mesh.get_local_rank("cp"), mesh=mesh,
                         cp_group=mesh["cp"].get_group() if cp > 1 else None)


def shutdown() -> None:
    """Destroy the default process group if this process created one."""
    if dist.is_initialized():
        dist.destroy_process_group()
