"""Batches, collation, the resumable distributed sampler and background loading.

A *sample* (what a dataset returns) is one analysis time on this rank's frames ``[f0, f1)`` (all of them
without context parallelism):

| key | shape | content |
|---|---|---|
| ``target`` | (C_out, T_loc, X) float32 | normalised target fields, PAD_XY |
| ``second_of_day``, ``day_of_year`` | (T_loc,) float32 | per-frame calendar |
| ``counts`` | (T_loc, X') int64 | observations per (frame, level_model pixel), in obs order |
| ``obs`` | dict of (N, ...) arrays | ``value`` (N,), ``obs_type``/``channel``/``platform`` (N,) int64, and either
  ``float_metadata`` (N, M) or the raw columns of :data:`RAW_META` (features computed on the device) |

Observations are sorted by (frame, pixel), so concatenating samples gives a batch sorted by the flat id
``(b·T_loc + t)·X' + pix``. :class:`Batch` carries the stacked tensors; :meth:`Batch.context` builds the
model's :class:`~healda_core.obs.ObsContext` on the device.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from healda_core.obs.context import ObsContext, build_pixel_group_map, counts_to_cu_seqlens

#: raw per-obs columns from which ``features_v2`` is computed on the device
RAW_META = ("target_time_s", "time", "lon", "lat", "height", "pressure_hpa", "scan_angle", "sat_zenith",
            "solar_zenith")


@dataclass
class Batch:
    """A collated batch (B samples, T_loc frames).

    Attributes:
        target: (B, C_out, T_loc, X). second_of_day, day_of_year: (B, T_loc). counts: (B, T_loc, X') int64.
        obs: per-obs tensors (see the module docstring). max_seqlen_k: largest per-pixel count.
        group_map: optional pixel group map (built on the CPU for the GPU kernels).
        index: (B,) dataset indices (for logging and tests).
    """

    target: Tensor
    second_of_day: Tensor
    day_of_year: Tensor
    counts: Tensor
    obs: dict[str, Tensor]
    max_seqlen_k: int
    index: Tensor
    group_map: object = None

    @property
    def batch_size(self) -> int:
        return int(self.target.shape[0])

    def pin_memory(self) -> Batch:
        return self._map(lambda t: t.pin_memory())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def _map(self, fn) -> Batch:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                v = fn(v)
            elif isinstance(v, dict):
                v = {k: fn(t) for k, t in v.items()}
            elif v is not None and hasattr(v, "program_ptr"):
                v = type(v)(fn(v.program_ptr), fn(v.program_pixels))
            out[f.name] = v
        return replace(self, **out)

    def context(self) -> ObsContext:
        """The model's :class:`ObsContext` (features_v2 computed here when raw columns are carried)."""
        o = self.obs
        if "float_metadata" in o:
            meta = o["float_metadata"]
        else:
            from healda_core.obs.context import features_v2

            meta = features_v2(*(o[k] for k in RAW_META))
        return ObsContext(obs=o["value"], float_metadata=meta, obs_type=o["obs_type"], channel=o["channel"],
                          platform=o["platform"], cu_seqlens_k=counts_to_cu_seqlens(self.counts.reshape(-1)),
                          max_seqlen_k=self.max_seqlen_k, group_map=self.group_map)


def collate(samples: list[dict], build_group_map: bool = False) -> Batch:
    """Stack samples into a :class:`Batch` (observations concatenated in sample order)."""
    def stack(key: str) -> Tensor:
        return torch.stack([torch.as_tensor(s[key]) for s in samples])

    counts = stack("counts").long()
    keys = samples[0]["obs"].keys()
    obs = {k: torch.cat([torch.as_tensor(s["obs"][k]) for s in samples]) for k in keys}
    mx = int(counts.max()) if counts.numel() and int(counts.sum()) else 0
    gm = build_pixel_group_map(counts_to_cu_seqlens(counts.reshape(-1))) if build_group_map else None
    return Batch(target=stack("target").float(), second_of_day=stack("second_of_day").float(),
                 day_of_year=stack("day_of_year").float(), counts=counts, obs=obs, max_seqlen_k=mx,
                 index=torch.as_tensor([int(s.get("index", -1)) for s in samples]), group_map=gm)


def slice_sample(sample: dict, f0: int, f1: int) -> dict:
    """The frames ``[f0, f1)`` of a sample (its observations included); used for context parallelism."""
    counts = np.asarray(sample["counts"])
    per_frame = counts.reshape(counts.shape[0], -1).sum(axis=1)
    edges = np.concatenate([[0], np.cumsum(per_frame)])
    lo, hi = int(edges[f0]), int(edges[f1])
    out = dict(sample)
    out["target"] = sample["target"][:, f0:f1]
    out["second_of_day"] = sample["second_of_day"][f0:f1]
    out["day_of_year"] = sample["day_of_year"][f0:f1]
    out["counts"] = counts[f0:f1]
    out["obs"] = {k: v[lo:hi] for k, v in sample["obs"].items()}
    return out


class ResumableBatchSampler:
    """Endless, deterministic, resumable batches of dataset indices for one data-parallel rank.

    Epoch ``e`` permutes ``range(n)`` with a generator seeded ``seed + e`` (identity without shuffle), drops
    the tail that does not fill a global batch, and cuts it into global batches of ``dp_size·batch_size``;
    rank ``r`` takes slice ``[r·batch_size, (r+1)·batch_size)`` of each. So dp ranks together see exactly
    what one process with batch ``dp_size·batch_size`` sees. Ranks of one context-parallel group share a
    ``dp_rank`` and so get the same indices. ``start`` (batches already consumed) makes it resume exactly.
    """

    def __init__(self, n: int, batch_size: int, dp_rank: int = 0, dp_size: int = 1, seed: int = 0,
                 shuffle: bool = True, start: int = 0):
        self.n, self.batch_size, self.dp_rank, self.dp_size = n, batch_size, dp_rank, dp_size
        self.seed, self.shuffle, self.start = seed, shuffle, start
        self.per_epoch = n // (dp_size * batch_size)
        if self.per_epoch == 0:
            raise ValueError(f"dataset of {n} samples is smaller than one global batch ({dp_size}×{batch_size})")

    def epoch_order(self, epoch: int) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))

    def batch(self, k: int) -> list[int]:
        """The indices of this rank's ``k``-th batch (counted from the start of training)."""
        epoch, j = divmod(k, self.per_epoch)
        g = self.dp_size * self.batch_size
        lo = j * g + self.dp_rank * self.batch_size
        return self.epoch_order(epoch)[lo:lo + self.batch_size].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start
        while True:
            yield self.batch(k)
            k += 1

    def state_dict(self) -> dict:
        return {"n": self.n, "batch_size": self.batch_size, "dp_size": self.dp_size, "seed": self.seed,
                "shuffle": self.shuffle, "start": self.start}


def eval_batches(n: int, batch_size: int, dp_rank: int, dp_size: int, limit: int | None = None) -> list[list[int]]:
    """Sequential validation batches of this dp rank (``range(n)[dp_rank::dp_size]``, no padding)."""
    idx = list(range(n))[dp_rank::dp_size]
    out = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    return out[:limit] if limit is not None else out


def make_loader(dataset, batch_sampler, num_workers: int = 0, pin_memory: bool = False,
                prefetch_factor: int = 2, build_group_map: bool = False, seed: int = 0):
    """A ``DataLoader`` over ``batch_sampler`` with :func:`collate`, worker processes and pinned memory."""
    import functools

    from torch.utils.data import DataLoader

    kw = {"prefetch_factor": prefetch_factor, "persistent_workers": False} if num_workers > 0 else {}
    return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=num_workers, pin_memory=pin_memory,
                      collate_fn=functools.partial(collate, build_group_map=build_group_map),
                      generator=torch.Generator().manual_seed(seed), **kw)


class DevicePrefetcher:
    """Iterate batches already copied to ``device``: the next batch's host→device copy runs on a side
    CUDA stream while the current step computes (a plain ``.to`` on CPU)."""

    def __init__(self, loader, device: torch.device):
        self.it, self.device = iter(loader), torch.device(device)
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self.next = self._load()

    def _load(self) -> Batch | None:
        try:
            b = next(self.it)
        except StopIteration:
            return None
        if self.stream is None:
            return b.to(self.device)
        with torch.cuda.stream(self.stream):
            return b.to(self.device, non_blocking=True)

    def __iter__(self) -> DevicePrefetcher:
        return self

    def __next__(self) -> Batch:
        if self.next is None:
            raise StopIteration
        if self.stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
        b, self.next = self.next, self._load()
        if self.stream is not None:  # tell the caching allocator the tensors are used on this stream
            b._map(lambda t: t.record_stream(torch.cuda.current_stream(self.device)))
        return b
