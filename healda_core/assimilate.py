"""Run HealDA over packed observation files and write CF analyses (``healda assimilate``).

Steps per batch of analysis times: read the packed observations (features computed on the device), broadcast
the static inputs over the frames, run the model (bf16 autocast on CUDA, float32 on CPU), keep the last
frame(s), de-normalise with the ERA5 statistics, reorder PAD_XY → NEST and append to the output file.

Under ``torchrun`` (or ``srun``) the analysis times are split across ranks (round-robin over the time-sorted
list). Each rank writes a part file; rank 0 merges them into the output in time order (or, with
``per_rank=True``, every rank keeps its own ``<stem>.rankNNN.nc``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import torch

from healda_core import grid
from healda_core.analysis_io import N_CHANNELS, AnalysisWriter, LatLonInterpolator, era5_stats
from healda_core.distributed.env import DistEnv, detect
from healda_core.errors import AcceleratorError, CheckpointError, InputError, UsageError
from healda_core.fileio import atomic_output, check_writable, history_entry, open_netcdf
from healda_core.model.attention import spatial_attention_backend
from healda_core.model.compile_policy import OFF, compile_env, inference_compile, whole_blocks_wanted


@dataclass
class AssimilateResult:
    """What :func:`assimilate` did."""

    outputs: list[str]
    analyses: int
    frames: int
    device: str
    wall_s: float
    forward_ms: list[float] = field(default_factory=list)
    peak_memory_gib: float | None = None
    n_obs: int = 0


# Compiling the block regions costs ~8 s once per process on an H200 and saves ~0.5 s per 1.5 B forward
# (docs/benchmarks.md), so assimilate compiles only when at least this many forwards follow (HEALDA_COMPILE wins).
COMPILE_MIN_FORWARDS = 16


def _compile_mode(dev: torch.device) -> str:
    """How the forward will be compiled, in words (``HEALDA_COMPILE``; regions only with ≥ 16 forwards)."""
    env = compile_env()
    if dev.type != "cuda" or env in OFF:
        return "none"
    if whole_blocks_wanted():
        return "whole blocks, coordinate-descent tuned"
    return "block regions" if env is not None else f"block regions when >= {COMPILE_MIN_FORWARDS} forwards follow"


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def packed_header(path: str | os.PathLike) -> dict[str, Any]:
    """Global attributes and analysis times of a packed file (no observation is read)."""
    from healda_core.obs.packed import OBS_VARS
    from healda_core.obs.packed_check import check_analysis_times, packed_layout, reading

    ds = open_netcdf(path)
    ds.set_auto_maskandscale(False)  # fill values are handled explicitly (a damaged attribute cannot mask data)
    with ds, reading(path, None):
        lay = packed_layout(ds, path, OBS_VARS)
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
        with reading(path, "analysis_time"):
            attrs["_analysis_time"] = np.asarray(ds.variables["analysis_time"][:]).astype(np.int64)
        check_analysis_times(attrs["_analysis_time"], path)
        attrs["_n_obs"] = lay.n_obs
    return attrs


def check_conventions(conv: dict[str, Any], config: dict[str, Any], attrs: dict[str, Any], path: object) -> None:
    """Refuse a packed file whose conventions differ from the checkpoint's, naming every difference."""
    problems = []

    def cmp(what: str, packed: Any, ckpt: Any) -> None:
        if packed is None:
            problems.append(f"{what}: not recorded in the packed file")
        elif str(packed) != str(ckpt):
            problems.append(f"{what}: packed {packed} vs checkpoint {ckpt}")

    cmp("HEALPix level (hpx_level vs level_model)", attrs.get("hpx_level"), config["level_model"])
    cmp("frames (n_frame vs time_length)", attrs.get("n_frame"), config["time_length"])
    cmp("metadata features", attrs.get("metadata_features"), conv.get("metadata_features"))
    cmp("metadata feature count (vs obs_meta_dim)", attrs.get("n_metadata_features"), config["obs_meta_dim"])
    cmp("channel vocabulary", attrs.get("channel_vocabulary"), conv.get("channel_vocabulary"))
    cmp("pixel order", attrs.get("pixel_order"), conv.get("pixel_order"))
    cmp("frame step", attrs.get("frame_step"), conv.get("frame_step"))
    cmp("normalisation stats (sha256)", attrs.get("normalisation_stats_sha256"), conv.get("obs_stats_sha256"))
    fixes = [f"--level {config['level_model']}" if str(attrs.get("hpx_level")) != str(config["level_model"]) else "",
             f"--frames {config['time_length']}" if str(attrs.get("n_frame")) != str(config["time_length"]) else ""]
    fixes = [f for f in fixes if f]
    if problems:
        hint = f" (re-pack with `healda pack-obs ... {' '.join(fixes)}`)" if fixes else ""
        raise InputError(f"{path}: packed observations do not match the checkpoint's conventions: "
                         + "; ".join(problems) + hint)


def resolve_device(device: str, dist: DistEnv) -> torch.device:
    """``auto`` → the rank's CUDA device if present, else CPU; an explicit ``cuda`` without one → exit 4."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise AcceleratorError("--device cuda requested but no CUDA device is available")
        if dev.index is None:
            dev = torch.device("cuda", dist.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    return dev


def _batches(items: list[tuple[int, str, int]], batch_size: int) -> list[list[tuple[int, str, int]]]:
    """Consecutive items of the same file, at most ``batch_size`` each."""
    out: list[list[tuple[int, str, int]]] = []
    for it in items:
        if out and len(out[-1]) < batch_size and out[-1][-1][1] == it[1]:
            out[-1].append(it)
        else:
            out.append([it])
    return out


def _rank_path(out: Path, rank: int) -> Path:
    return out.with_name(f"{out.stem}.rank{rank:03d}{out.suffix}")


def _latlon_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.latlon{out.suffix}")


def _read_back(ds: netCDF4.Dataset, i: int, framed: bool) -> np.ndarray:
    """Fields (frames, 74, ...) of time index ``i`` of an analysis file (for merging rank parts)."""
    from healda_core.analysis_io import ATMOS_VARS, SURFACE_VARS

    parts = []
    for v in ATMOS_VARS:
        a = np.asarray(ds.variables[v.name][i])
        parts.append(a if framed else a[None])
    for v in SURFACE_VARS:
        a = np.asarray(ds.variables[v.name][i])
        parts.append((a if framed else a[None])[:, None])
    return np.concatenate(parts, axis=1)


def assimilate(packed: Sequence[str | os.PathLike], ckpt: str | os.PathLike, static: str | os.PathLike,
               output: str | os.PathLike, *, device: str = "auto", batch_size: int = 1, frames: int | None = 1,
               lat_lon: float | None = None, overwrite: bool = False, per_rank: bool = False,
               complevel: int = 4, verify: bool = True, argv: list[str] | None = None,
               progress: Callable[[int, int], None] | None = None,
               log: Callable[[str], None] | None = None) -> AssimilateResult:
    """Assimilate every analysis time of the ``packed`` files with checkpoint ``ckpt``.

    Args:
        frames: number of last frames to write (1 = the analysis; ``None`` = all ``time_length`` frames).
        lat_lon: also write ``<stem>.latlon.nc`` on a regular grid of this spacing (degrees).
        verify: check the checkpoint's weights against its ``weights_sha256`` (False accepts a header without one).
        progress: called with (done, total) analyses after each batch. log: message sink (stderr).

    Raises:
        CheckpointError, InputError (exit 3), UsageError (2), AcceleratorError (4).
    """
    from healda_core import __version__
    from healda_core.checkpoint import build_model, read_checkpoint
    from healda_core.obs.packed import load_batch
    from healda_core.static import load_static

    t_start = time.perf_counter()
    log = log or (lambda m: None)
    dist = detect()
    out = Path(output)
    if batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1, got {batch_size}")
    final_outputs = [_rank_path(out, dist.rank) if per_rank and dist.world_size > 1 else out]
    if lat_lon:
        final_outputs.append(_latlon_path(final_outputs[0]))
    if dist.rank == 0 or per_rank:
        for p in final_outputs:
            check_writable(p, overwrite)
    dev = resolve_device(device, dist)

    # ---- checkpoint, conventions, static input
    ck = read_checkpoint(ckpt, verify=verify)
    cfg, conv = ck.config, ck.conventions
    if cfg["out_channels"] != N_CHANNELS or conv.get("output_variables") != "era5_13_levels_74":
        raise CheckpointError(f"{ckpt}: assimilate needs the 74 ERA5 output channels; the checkpoint has "
                              f"out_channels={cfg['out_channels']} ({conv.get('output_variables')})")
    if cfg["in_channels"] != 2:
        raise CheckpointError(f"{ckpt}: assimilate provides 2 static inputs (orog, lfrac); the checkpoint has "
                              f"in_channels={cfg['in_channels']}")
    headers = {}
    for p in packed:
        h = packed_header(p)
        check_conventions(conv, cfg, h, p)
        headers[str(p)] = h
    n_t = int(cfg["time_length"])
    n_frames = n_t if frames is None else int(frames)
    if not 1 <= n_frames <= n_t:
        raise UsageError(f"--frames must be in 1..{n_t} (time_length), got {n_frames}")
    step_s = int(next(iter(headers.values())).get("frame_step_seconds", 21600))
    offsets = [-(n_frames - 1 - i) * step_s for i in range(n_frames)]
    static_in = torch.as_tensor(load_static(static, int(cfg["level_in"])), device=dev)
    mean, std = (torch.as_tensor(a, dtype=torch.float32, device=dev)[:, None, None] for a in era5_stats())
    perm = torch.as_tensor(np.array(grid.nest_to_padxy(int(cfg["level_in"]))), device=dev)

    # ---- the work list: every analysis, time-sorted, split across ranks
    items = sorted((int(t), str(p), i) for p, h in headers.items() for i, t in enumerate(h["_analysis_time"]))
    times = [t for t, _, _ in items]
    if len(set(times)) != len(times):
        dup = sorted({t for t in times if times.count(t) > 1})
        raise InputError(f"analysis times repeat across the packed files: {[str(np.datetime64(t, 's')) for t in dup]}")
    if not items:
        raise InputError("the packed files hold no analysis time")
    mine = items[dist.rank::dist.world_size]
    model = build_model(ck, device=dev)
    del ck
    if dev.type == "cuda" and whole_blocks_wanted():
        model.dit.compile_blocks()
    log(f"spatial attention: {spatial_attention_backend(dev)}; compilation: {_compile_mode(dev)}")
    log(f"checkpoint {Path(ckpt).name}: {sum(p.numel() for p in model.parameters()):,} parameters on {dev}; "
        f"{len(items)} analyses" + (f", rank {dist.rank}/{dist.world_size}: {len(mine)}" if dist.world_size > 1 else ""))

    # ---- provenance
    info = model.checkpoint_info
    preset = info.get("preset", "")
    attrs = {
        "Conventions": "CF-1.13", "title": "HealDA analysis", "institution": "healda",
        "source": f"healda {__version__}; model={preset or 'HealDA v2 (VideoHealDA)'}; "
                  f"checkpoint weights sha256={info['weights_sha256']}",
        "references": "HealDA: arXiv 2601.17636", "history": history_entry(argv),
        "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "healda_version": __version__, "healda_checkpoint": Path(ckpt).name,
        "healda_checkpoint_weights_sha256": info["weights_sha256"],
        "healda_checkpoint_format": info.get("format", ""), "healda_config": json.dumps(cfg, sort_keys=True),
        "healda_packed_files": json.dumps([Path(p).name for p in packed]),
        "healda_packed_sha256": json.dumps([_sha256(p) for p in packed]),
        "healda_static_file": Path(static).name, "healda_static_sha256": _sha256(static),
        "healda_device": str(dev), "healda_precision": "bf16 autocast" if dev.type == "cuda" else "float32",
        "healda_pixel_order": "nest (reordered from the model's earth2grid PAD_XY)",
        "time_coverage_start": str(np.datetime64(items[0][0] - step_s * (n_t - 1) - step_s // 2, "s")) + "Z",
        "time_coverage_end": str(np.datetime64(items[-1][0] + step_s // 2, "s")) + "Z",
        "assimilation_window": f"PT{step_s * n_t // 3600}H ({n_t} frames of PT{step_s // 3600}H)",
        "healda_frames_written": np.int32(n_frames),
    }
    interp = LatLonInterpolator(int(cfg["level_in"]), lat_lon) if lat_lon else None
    if interp is not None:
        attrs_ll = {**attrs, "healda_regridding": f"bilinear on the sphere (healpy get_interp_weights) from HEALPix "
                                                  f"level {cfg['level_in']} to {lat_lon}°"}

    # ---- run
    result = AssimilateResult(outputs=[], analyses=len(mine), frames=n_frames, device=str(dev), wall_s=0.0)
    gather = dist.world_size > 1 and not per_rank
    targets = [Path(p) for p in final_outputs]
    if gather:  # each rank writes a hidden part next to the output
        targets = [p.with_name(f".{p.name}.part{dist.rank:03d}") for p in final_outputs]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    done = 0
    with ExitStack() as stack:
        if gather:  # hidden part files, removed whatever happens; rank 0 merges them atomically
            tmp_paths = targets
            stack.callback(lambda: [t.unlink(missing_ok=True) for t in targets])
        else:
            tmp_paths = [stack.enter_context(atomic_output(p, overwrite)) for p in targets]
        writers = [stack.enter_context(AnalysisWriter(str(tmp_paths[0]), int(cfg["level_in"]), offsets, attrs,
                                                      complevel=complevel))]
        if interp is not None:
            writers.append(stack.enter_context(AnalysisWriter(str(tmp_paths[1]), int(cfg["level_in"]), offsets,
                                                              attrs_ll, interp, complevel)))
        batches = _batches(mine, batch_size)
        stack.enter_context(inference_compile(len(batches) >= COMPILE_MIN_FORWARDS))
        for batch in batches:
            path = batch[0][1]
            pb = load_batch(path, [i for _, _, i in batch], device=dev)
            b = len(batch)
            result.n_obs += int(pb.context.obs.shape[0])
            x = static_in[None, :, None, :].expand(b, -1, n_t, -1)
            tt = torch.zeros(b, device=dev)
            amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else nullcontext()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            with torch.inference_mode(), amp:
                y = model(x, tt, pb.second_of_day.float(), pb.day_of_year.float(), pb.context)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            result.forward_ms.append((time.perf_counter() - t0) * 1e3)
            y = y[:, :, n_t - n_frames:, :].float() * std + mean  # (b, 74, f, X) physical, PAD_XY
            y = y.index_select(-1, perm).permute(0, 2, 1, 3).contiguous()  # NEST, (b, f, 74, X)
            fields = y.cpu().numpy()
            tb = np.asarray([t for t, _, _ in batch], np.int64)
            for w in writers:
                w.write(tb, fields)
            done += b
            if progress:
                progress(done, len(mine))
        for w in writers:
            w.close()
        if gather:
            _merge(final_outputs, targets, dist, overwrite, int(cfg["level_in"]), offsets, attrs,
                   attrs_ll if interp is not None else None, interp, complevel)
    if dev.type == "cuda":
        result.peak_memory_gib = torch.cuda.max_memory_allocated(dev) / 2**30
    result.outputs = [str(p) for p in final_outputs] if (dist.rank == 0 or per_rank) else []
    result.wall_s = time.perf_counter() - t_start
    return result


def _merge(finals: list[Path], targets: list[Path], dist: DistEnv, overwrite: bool,
           level: int, offsets: list[int], attrs: dict, attrs_ll: dict | None, interp: LatLonInterpolator | None,
           complevel: int) -> None:
    """Gather the ranks' part files into the final files on rank 0 (time order); parts are removed by the caller."""
    import torch.distributed as tdist

    own = not tdist.is_initialized()
    if own:
        tdist.init_process_group("gloo")
    try:
        tdist.barrier()
        if dist.rank == 0:
            for k, final in enumerate(finals):
                parts = [final.with_name(f".{final.name}.part{r:03d}") for r in range(dist.world_size)]
                dss = [netCDF4.Dataset(p) for p in parts]
                try:
                    index = sorted((int(t), r, i) for r, ds in enumerate(dss)
                                   for i, t in enumerate(np.asarray(ds.variables["time"][:], np.int64)))
                    with atomic_output(final, overwrite) as tmp:
                        a = attrs if k == 0 else attrs_ll
                        with AnalysisWriter(str(tmp), level, offsets, a, None if k == 0 else interp, complevel) as w:
                            w.latlon = None  # parts are already on the target grid
                            for t, r, i in index:
                                w.write(np.asarray([t]), _read_back(dss[r], i, len(offsets) > 1)[None])
                finally:
                    for ds in dss:
                        ds.close()
        tdist.barrier()
    finally:
        if own:
            tdist.destroy_process_group()
