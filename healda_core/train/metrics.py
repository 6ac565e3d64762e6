"""Metrics: the JSONL log (rank 0) and per-channel RMSE in physical units."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


class JsonlLog:
    """Append-only ``metrics.jsonl`` written by rank 0 (one JSON object per line, flushed)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = Path(path), enabled

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step`` (a resumed run re-logs them) and a line torn by a kill."""
        from healda_core.fileio import atomic_write_text

        if not self.enabled or not self.path.exists():
            return
        keep = [ln for ln in self.path.read_text().splitlines() if (rec := _record(ln)) is not None
                and rec.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(ln + "\n" for ln in keep))

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a") as fh:
                fh.write(json.dumps(record, default=float) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file."""
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


class RmseAccumulator:
    """Sums of squared errors per channel (physical units), all frames and the analysis (last) frame."""

    def __init__(self, std: Tensor, analysis_frame_local: int | None):
        self.std = std.double()
        self.analysis_frame = analysis_frame_local
        c = std.shape[0]
        self.sums = torch.zeros(4, c, dtype=torch.float64, device=std.device)  # sse, n, sse_last, n_last

    @torch.no_grad()
    def add(self, pred: Tensor, target: Tensor) -> None:
        err2 = ((pred.double() - target.double()) * self.std.view(1, -1, 1, 1)) ** 2  # (B, C, T, X)
        self.sums[0] += err2.sum(dim=(0, 2, 3))
        self.sums[1] += err2[:, 0].numel()
        if self.analysis_frame is not None:
            last = err2[:, :, self.analysis_frame]
            self.sums[2] += last.sum(dim=(0, 2))
            self.sums[3] += last[:, 0].numel()

    def result(self, names: list[str]) -> dict[str, Any]:
        """All-reduces (sum) over the world, then ``{"rmse": {ch: v}, "rmse_analysis": {...}, ...}``."""
        s = self.sums.clone()
        if dist.is_initialized():
            dist.all_reduce(s)
        rmse = (s[0] / s[1].clamp(min=1)).sqrt()
        last = (s[2] / s[3].clamp(min=1)).sqrt()
        norm = rmse / self.std
        return {"rmse": dict(zip(names, rmse.tolist())), "rmse_analysis": dict(zip(names, last.tolist())),
                "rmse_normalised_mean": float(norm.mean()), "n_values": int(s[1, 0])}


def _record(line: str) -> dict | None:
    """One ``metrics.jsonl`` line as a dict; None for a blank or torn line."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None
