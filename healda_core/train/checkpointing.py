"""Training checkpoints: model weights in the healda safetensors format plus the resumable state.

Layout of ``OUT/checkpoints/step_00001000/``:

| file | written by | content |
|---|---|---|
| ``model.safetensors`` | rank 0 | weights + config header (loadable by ``healda assimilate`` / ``load_model``) |
| ``ema.safetensors`` | rank 0 | EMA weights (when ``train.ema_decay > 0``) |
| ``train_state.pt`` | rank 0 | step, consumed batches, optimizer, scheduler, EMA shadow, world layout |
| ``rng_rank{r}.pt`` | every rank | torch CPU/CUDA, Python and NumPy generator states |

``.pt`` files hold only tensors and plain containers and are read with ``torch.load(weights_only=True)``.
A directory is complete once ``OUT/checkpoints/latest`` names it (written last, atomically).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from healda_core.errors import CheckpointError
from healda_core.fileio import atomic_write_text


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "python": random.getstate(),
            "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                      "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))


def _write_model(path: Path, state_dict: dict[str, torch.Tensor], config: dict, extra: dict[str, str]) -> None:
    from healda_core.checkpoint.convert import LoadedCheckpoint, write_safetensors
    from healda_core.checkpoint.format import default_conventions

    ckpt = LoadedCheckpoint(state_dict={k: v.detach().cpu() for k, v in state_dict.items()}, config=config,
                            conventions=default_conventions(config), source_format="healda-train",
                            path=str(path), extra=extra)
    write_safetensors(ckpt, path, overwrite=True)


def save(root: Path, step: int, *, model_state: dict, model_config: dict, train_state: dict,
         ema_state: dict | None, rank: int, extra: dict[str, str], keep: int = 0) -> Path:
    """Write checkpoint ``step`` under ``root`` (collective: every rank calls it) and return its directory."""
    final = root / f"step_{step:08d}"
    tmp = root / f".step_{step:08d}.tmp"
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".step_*.tmp"):  # this one, and any a killed run left behind
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
    _barrier()
    torch.save(rng_state(), tmp / f"rng_rank{rank}.pt")
    if rank == 0:
        meta = {**extra, "step": str(step)}
        _write_model(tmp / "model.safetensors", model_state, model_config, meta)
        if ema_state is not None:
            _write_model(tmp / "ema.safetensors", ema_state, model_config, {**meta, "weights": "ema"})
        torch.save(train_state, tmp / "train_state.pt")
    _barrier()
    if rank == 0:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        atomic_write_text(root / "latest", final.name + "\n")
        _prune(root, keep)
    _barrier()
    return final


def _prune(root: Path, keep: int) -> None:
    if keep <= 0:
        return
    dirs = sorted(p for p in root.glob("step_*") if p.is_dir())
    for p in dirs[:-keep]:
        shutil.rmtree(p, ignore_errors=True)


def find(path: Path) -> Path:
    """The checkpoint directory for ``--resume``: a ``step_*`` directory, or a run/``checkpoints`` directory
    whose ``latest`` file names one."""
    path = Path(path)
    for cand in (path, path / "checkpoints"):
        if (cand / "train_state.pt").is_file():
            return cand
        if (cand / "latest").is_file():
            d = cand / (cand / "latest").read_text().strip()
            if (d / "train_state.pt").is_file():
                return d
    raise CheckpointError(f"{path}: no training checkpoint to resume from (no checkpoints/latest)")


#: what ``train_state.pt`` and ``rng_rank{r}.pt`` hold: key → accepted types
TRAIN_STATE_KEYS = {"step": (int,), "consumed": (int,), "optimizer": (dict,), "scheduler": (dict,),
                    "ema": (dict, type(None)), "dp_size": (int,), "cp_size": (int,)}
RNG_KEYS = {"torch": (torch.Tensor,), "cuda": (list, tuple), "python": (list, tuple), "numpy": (dict,)}


def _read_pt(path: Path, schema: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a checkpoint ``.pt`` whose top level must match ``schema``."""
    from healda_core.checkpoint.torchfile import torch_load

    obj = torch_load(path, path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of training state, got {type(obj).__name__}")
    bad = [k for k, types in schema.items() if not isinstance(obj.get(k, _MISSING), types)]
    if bad:
        raise CheckpointError(f"{path}: missing or wrongly typed entries: {', '.join(bad)}")
    return obj


_MISSING = object()


def load(ckpt_dir: Path, rank: int) -> dict[str, Any]:
    """Read a checkpoint: ``model`` and optional ``ema`` state_dicts, ``train_state``, this rank's ``rng``.

    Nothing is unpickled; a file that is absent, unreadable, pickle-bearing or of the wrong structure raises
    :class:`CheckpointError` naming it.
    """
    from healda_core.checkpoint.format import load_safetensors

    model, header = load_safetensors(ckpt_dir / "model.safetensors")
    ema = load_safetensors(ckpt_dir / "ema.safetensors")[0] if (ckpt_dir / "ema.safetensors").is_file() else None
    state = _read_pt(ckpt_dir / "train_state.pt", TRAIN_STATE_KEYS)
    rng_file = ckpt_dir / f"rng_rank{rank}.pt"
    if not rng_file.is_file():
        raise CheckpointError(f"{ckpt_dir}: no RNG state for rank {rank}; resume with the same number of processes")
    rng = _read_pt(rng_file, RNG_KEYS)
    return {"model": model, "ema": ema, "train_state": state, "rng": rng, "config": header.config}
