"""Run HealDA over packed observation files and write CF analyses (``healda assimilate``).

The model is loaded once for every analysis time of every packed file. Steps per batch of analysis times:
read and decode the packed observations (a background thread, one batch ahead, into pinned memory on CUDA),
copy them to the device (asynchronous) and compute the features there, broadcast the static inputs over the
frames, run the model (bf16 autocast on CUDA, float32 on CPU), keep the last frame(s), de-normalise with the
ERA5 statistics, reorder PAD_XY → NEST, and hand the fields to a background writer thread that appends them
to the output (and regrids the lat-lon product). Outputs are temporary files renamed when everything,
including the checkpoint's weight hash (checked in the background while the model runs), has succeeded.

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
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from healda_core import inference
from healda_core.analysis_io import N_CHANNELS, AnalysisWriter, LatLonInterpolator, merge_analyses
from healda_core.distributed.env import DistEnv, detect
from healda_core.errors import AcceleratorError, CheckpointError, InputError, UsageError
from healda_core.fileio import atomic_output, check_writable, history_entry
from healda_core.model.attention import spatial_attention_backend
from healda_core.model.compile_policy import OFF, compile_env, inference_compile, whole_blocks_wanted
from healda_core.pipeline import BackgroundWriter, Prefetcher

Item = tuple[int, str, int]  # (analysis time s, packed file, index in the file)


@dataclass
class AssimilateResult:
    """What :func:`assimilate` did. ``timings``: one dict per batch, seconds: ``read`` (decode, background),
    ``wait`` (the loop waiting for it), ``h2d`` (copy + features), ``forward``, ``write`` (background),
    ``written`` (since the call, when the batch was written)."""

    outputs: list[str]
    analyses: int
    frames: int
    device: str
    wall_s: float
    forward_ms: list[float] = field(default_factory=list)
    peak_memory_gib: float | None = None
    n_obs: int = 0
    checkpoint_s: float = 0.0  # checkpoint read, model build (the hash check runs in the background)
    first_analysis_s: float = 0.0  # from the call to the first analysis written
    timings: list[dict[str, float]] = field(default_factory=list)


# Compiling the block regions costs ~8 s once per process on an H200 and saves ~0.5 s per 1.5 B forward
# (docs/benchmarks.md), so assimilate compiles from the second forward on when at least this many follow
# (the first stays eager so that the first analysis comes quickly; HEALDA_COMPILE wins).
COMPILE_MIN_FORWARDS = 16


def _compile_now(index: int, n_batches: int) -> bool:
    """Whether forward ``index`` (0-based) of ``n_batches`` compiles: every one after the first, when at least
    :data:`COMPILE_MIN_FORWARDS` follow the first."""
    return index > 0 and n_batches - 1 >= COMPILE_MIN_FORWARDS


def _compile_mode(dev: torch.device) -> str:
    """How the forward will be compiled, in words (``HEALDA_COMPILE``; regions only with ≥ 16 forwards)."""
    env = compile_env()
    if dev.type != "cuda" or env in OFF:
        return "none"
    if whole_blocks_wanted():
        return "whole blocks, coordinate-descent tuned"
    if env is not None:
        return "block regions"
    return f"block regions from the second forward when >= {COMPILE_MIN_FORWARDS} follow"


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


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


def _batches(items: list[Item], batch_size: int) -> list[list[Item]]:
    """Consecutive items of the same file, at most ``batch_size`` each."""
    out: list[list[Item]] = []
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


def _check_model_io(ck, path: object) -> None:
    cfg, conv = ck.config, ck.conventions
    if cfg["out_channels"] != N_CHANNELS or conv.get("output_variables") != "era5_13_levels_74":
        raise CheckpointError(f"{path}: assimilate needs the 74 ERA5 output channels; the checkpoint has "
                              f"out_channels={cfg['out_channels']} ({conv.get('output_variables')})")
    if cfg["in_channels"] != 2:
        raise CheckpointError(f"{path}: assimilate provides 2 static inputs (orog, lfrac); the checkpoint has "
                              f"in_channels={cfg['in_channels']}")


def _work_list(packed: Sequence[str | os.PathLike], ck) -> tuple[dict[str, dict], list[Item]]:
    """Headers of the packed files (conventions checked against the checkpoint's) and every analysis, by time."""
    from healda_core.obs.packed import packed_header

    headers = {}
    for p in packed:
        h = packed_header(p)
        check_conventions(ck.conventions, ck.config, h, p)
        headers[str(p)] = h
    items = sorted((int(t), str(p), i) for p, h in headers.items() for i, t in enumerate(h["_analysis_time"]))
    times = [t for t, _, _ in items]
    if len(set(times)) != len(times):
        dup = sorted({t for t in times if times.count(t) > 1})
        raise InputError(f"analysis times repeat across the packed files: {[str(np.datetime64(t, 's')) for t in dup]}")
    if not items:
        raise InputError("the packed files hold no analysis time")
    return headers, items


def _provenance(ck, model, ckpt, packed, static, argv, dev, items, step_s: int, n_t: int, n_frames: int,
                precision: str) -> dict:
    """Global attributes of the analysis file (the packed files' hashes are added when they are read)."""
    from healda_core import __version__

    info, cfg = model.checkpoint_info, ck.config
    preset = info.get("preset", "")
    return {
        "Conventions": "CF-1.13", "title": "HealDA analysis", "institution": "healda",
        "source": f"healda {__version__}; model={preset or 'HealDA v2 (VideoHealDA)'}; "
                  f"checkpoint weights sha256={info['weights_sha256']}",
        "references": "HealDA: arXiv 2601.17636", "history": history_entry(argv),
        "date_created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "healda_version": __version__, "healda_checkpoint": Path(ckpt).name,
        "healda_checkpoint_weights_sha256": info["weights_sha256"],
        "healda_checkpoint_format": info.get("format", ""), "healda_config": json.dumps(cfg, sort_keys=True),
        "healda_packed_files": json.dumps([Path(p).name for p in packed]),
        "healda_static_file": Path(static).name, "healda_static_sha256": _sha256(static),
        "healda_device": str(dev), "healda_precision": precision,
        "healda_pixel_order": "nest (reordered from the model's earth2grid PAD_XY)",
        "time_coverage_start": str(np.datetime64(items[0][0] - step_s * (n_t - 1) - step_s // 2, "s")) + "Z",
        "time_coverage_end": str(np.datetime64(items[-1][0] + step_s // 2, "s")) + "Z",
        "assimilation_window": f"PT{step_s * n_t // 3600}H ({n_t} frames of PT{step_s // 3600}H)",
        "healda_frames_written": np.int32(n_frames),
    }


def assimilate(packed: Sequence[str | os.PathLike], ckpt: str | os.PathLike, static: str | os.PathLike,
               output: str | os.PathLike, *, device: str = "auto", batch_size: int = 1, frames: int | None = 1,
               lat_lon: float | None = None, overwrite: bool = False, per_rank: bool = False,
               complevel: int = 4, verify: bool = True, precision: str = "bf16", argv: list[str] | None = None,
               progress: Callable[[int, int], None] | None = None,
               log: Callable[[str], None] | None = None) -> AssimilateResult:
    """Assimilate every analysis time of the ``packed`` files with checkpoint ``ckpt``.

    Args:
        frames: number of last frames to write (1 = the analysis; ``None`` = all ``time_length`` frames).
        lat_lon: also write ``<stem>.latlon.nc`` on a regular grid of this spacing (degrees).
        verify: check the checkpoint's weights against its ``weights_sha256`` (False accepts a header without one).
        precision: ``bf16`` (bf16 autocast on CUDA, float32 on the CPU) or ``fp8`` (FP8 GEMMs in the transformer
            blocks, CUDA compute capability >= 8.9; approximate: :func:`healda_core.inference.apply_precision`).
        progress: called with (done, total) analyses after each batch is written. log: message sink (stderr).

    Raises:
        CheckpointError, InputError (exit 3), UsageError (2), AcceleratorError (4).
    """
    from healda_core.kernels.tuning import no_timing_unless_asked

    t_start = time.perf_counter()
    log = log or (lambda m: None)
    dist = detect()
    out = Path(output)
    if batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1, got {batch_size}")
    if precision not in inference.PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(inference.PRECISIONS)}, got {precision!r}")
    final_outputs = [_rank_path(out, dist.rank) if per_rank and dist.world_size > 1 else out]
    if lat_lon:
        final_outputs.append(_latlon_path(final_outputs[0]))
    if dist.rank == 0 or per_rank:
        for p in final_outputs:
            check_writable(p, overwrite)
    dev = resolve_device(device, dist)
    with no_timing_unless_asked():
        return _run(packed, ckpt, static, final_outputs, dev, dist, t_start, batch_size=batch_size, frames=frames,
                    lat_lon=lat_lon, overwrite=overwrite, per_rank=per_rank, complevel=complevel, verify=verify,
                    precision=precision, argv=argv, progress=progress, log=log)


def _read_checkpoint(ckpt: str | os.PathLike, dev: torch.device, verify: bool):
    """The checkpoint, its tensors read straight to ``dev``; the weight hash is checked in the background."""
    from healda_core.checkpoint import read_checkpoint

    ck = read_checkpoint(ckpt, verify="background" if verify else False, device=dev)
    _check_model_io(ck, ckpt)
    return ck


def _reader(batches: list[list[Item]], dev: torch.device) -> Prefetcher:
    """Reads and decodes the packed batches one ahead of the loop (into pinned memory for CUDA)."""
    from healda_core.obs.packed import MODEL_COLUMNS, read_packed

    alloc = inference.host_alloc(dev)

    def read(batch: list[Item]):
        if dev.type == "cuda":
            torch.cuda.set_device(dev)  # per thread: pinned buffers belong to this rank's device
        return read_packed(batch[0][1], [i for _, _, i in batch], columns=MODEL_COLUMNS, alloc=alloc)
    return Prefetcher(read, batches, depth=1)


def _run(packed, ckpt, static, final_outputs: list[Path], dev: torch.device, dist: DistEnv, t_start: float, *,
         batch_size: int, frames: int | None, lat_lon: float | None, overwrite: bool, per_rank: bool,
         complevel: int, verify: bool, precision: str, argv: list[str] | None, progress, log) -> AssimilateResult:
    from healda_core.checkpoint import build_model

    ck = _read_checkpoint(ckpt, dev, verify)
    cfg = ck.config
    headers, items = _work_list(packed, ck)
    n_t, level = int(cfg["time_length"]), int(cfg["level_in"])
    n_frames = n_t if frames is None else int(frames)
    if not 1 <= n_frames <= n_t:
        raise UsageError(f"--frames must be in 1..{n_t} (time_length), got {n_frames}")
    step_s = int(next(iter(headers.values())).get("frame_step_seconds", 21600))
    offsets = [-(n_frames - 1 - i) * step_s for i in range(n_frames)]
    mine = items[dist.rank::dist.world_size]
    batches = _batches(mine, batch_size)
    gather = dist.world_size > 1 and not per_rank
    targets = [Path(p) for p in final_outputs]
    if gather:  # each rank writes a hidden part next to the output
        targets = [p.with_name(f".{p.name}.part{dist.rank:03d}") for p in final_outputs]
    result = AssimilateResult(outputs=[], analyses=len(mine), frames=n_frames, device=str(dev), wall_s=0.0)
    with ExitStack() as stack:
        reader = stack.enter_context(_reader(batches, dev))  # the first batch is read while the model is built
        hashes = ThreadPoolExecutor(1, thread_name_prefix="healda-hash")
        stack.callback(hashes.shutdown, wait=True, cancel_futures=True)
        packed_sha = [hashes.submit(_sha256, p) for p in packed]
        model = build_model(ck, device=dev)
        ck.state_dict = {}  # the model holds the weights now; the read copy would double their device memory
        precision_desc = inference.apply_precision(model, precision, dev)
        if dev.type == "cuda" and whole_blocks_wanted():
            model.dit.compile_blocks()
        result.checkpoint_s = time.perf_counter() - t_start
        log(f"spatial attention: {spatial_attention_backend(dev)}; compilation: {_compile_mode(dev)}; "
            f"precision: {precision_desc}")
        log(f"checkpoint {Path(ckpt).name}: {sum(p.numel() for p in model.parameters()):,} parameters on {dev}; "
            f"{len(items)} analyses" + (f", rank {dist.rank}/{dist.world_size}: {len(mine)}"
                                        if dist.world_size > 1 else ""))
        attrs = _provenance(ck, model, ckpt, packed, static, argv, dev, items, step_s, n_t, n_frames, precision_desc)
        interp = LatLonInterpolator(level, lat_lon) if lat_lon else None
        attrs_ll = None if interp is None else {
            **attrs, "healda_regridding": f"bilinear on the sphere (healpy get_interp_weights) from HEALPix level "
                                          f"{level} to {lat_lon}°"}
        runner = inference.AnalysisStep(model, cfg, static, dev, n_frames)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        if gather:  # hidden part files, removed whatever happens; rank 0 merges them atomically
            tmp_paths = targets
            stack.callback(lambda: [t.unlink(missing_ok=True) for t in targets])
        else:
            tmp_paths = [stack.enter_context(atomic_output(p, overwrite)) for p in targets]
        writers = [stack.enter_context(AnalysisWriter(str(tmp_paths[0]), level, offsets, attrs, complevel=complevel))]
        if interp is not None:
            writers.append(stack.enter_context(AnalysisWriter(str(tmp_paths[1]), level, offsets, attrs_ll, interp,
                                                              complevel)))
        _loop(runner, reader, len(batches), writers, stack, result, t_start, progress)
        ck.wait_verified()  # a corrupt checkpoint leaves no output
        sha = json.dumps([f.result() for f in packed_sha])
        for w in writers:
            w.set_attrs({"healda_packed_sha256": sha})
            w.close()
        if gather:
            for a in (attrs, attrs_ll):
                if a is not None:
                    a["healda_packed_sha256"] = sha
            _gather(final_outputs, dist, overwrite, level, offsets, attrs, attrs_ll, interp, complevel)
    if dev.type == "cuda":
        result.peak_memory_gib = torch.cuda.max_memory_allocated(dev) / 2**30
    result.outputs = [str(p) for p in final_outputs] if (dist.rank == 0 or per_rank) else []
    result.wall_s = time.perf_counter() - t_start
    return result


def _loop(runner: inference.AnalysisStep, reader: Prefetcher, n_batches: int, writers: list[AnalysisWriter], stack: ExitStack,
          result: AssimilateResult, t_start: float, progress) -> None:
    """Run each batch as the reader hands it over and write behind; the writer thread is stopped and joined
    when this raises (the caller's ``stack`` does the same for the reader)."""
    total = result.analyses
    done = [0]
    written_at: list[float] = []

    def write(times: np.ndarray, fields: np.ndarray) -> None:
        for w in writers:
            w.write(times, fields)
        written_at.append(time.perf_counter())
        done[0] += len(times)
        if progress:
            progress(done[0], total)

    writer = stack.enter_context(BackgroundWriter(write, depth=2))
    it = iter(reader)
    for k in range(n_batches):
        t0 = time.perf_counter()
        batch, p, read_s = next(it)
        wait_s = time.perf_counter() - t0
        with inference_compile(_compile_now(k, n_batches)):
            fields, n_obs, h2d_s, fwd_s = runner(p)
        del p
        result.n_obs += n_obs
        result.forward_ms.append(fwd_s * 1e3)
        result.timings.append({"analyses": len(batch), "n_obs": n_obs, "read": read_s, "wait": wait_s,
                               "h2d": h2d_s, "forward": fwd_s})
        writer.put(np.asarray([t for t, _, _ in batch], np.int64), fields)
        if k == 0 and _compile_now(1, n_batches):
            writer.drain()  # the first analysis is out before compiling starts (tracing would starve the writer)
    writer.finish()
    for row, s, at in zip(result.timings, writer.seconds, written_at):
        row["write"], row["written"] = s, at - t_start
    result.first_analysis_s = written_at[0] - t_start if written_at else 0.0


def _gather(finals: list[Path], dist: DistEnv, overwrite: bool, level: int, offsets: list[int], attrs: dict,
            attrs_ll: dict | None, interp: LatLonInterpolator | None, complevel: int) -> None:
    """Gather the ranks' part files into the final files on rank 0 (time order); parts are removed by the caller."""
    import torch.distributed as tdist

    own = not tdist.is_initialized()
    if own:
        tdist.init_process_group("gloo")
    try:
        tdist.barrier()
        if dist.rank == 0:
            for k, final in enumerate(finals):
                parts = [str(final.with_name(f".{final.name}.part{r:03d}")) for r in range(dist.world_size)]
                with atomic_output(final, overwrite) as tmp:
                    merge_analyses(parts, str(tmp), level, offsets, attrs if k == 0 else attrs_ll,
                                   None if k == 0 else interp, complevel)
        tdist.barrier()
    finally:
        if own:
            tdist.destroy_process_group()
