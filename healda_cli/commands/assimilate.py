"""``healda assimilate``: packed observations + checkpoint + static file → CF analysis NetCDF."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from healda_cli import console
from healda_cli.main import app


@app.command("assimilate")
def assimilate(
    packed: Annotated[list[Path], typer.Argument(help="Packed observation files (healda pack-obs).",
                                                 show_default=False)],
    ckpt: Annotated[Path, typer.Option("--ckpt", help="Checkpoint (.safetensors, .mdlus, .checkpoint).",
                                       show_default=False)],
    static: Annotated[Path, typer.Option("--static", help="Static file at the model's level_in (healda "
                                         "make-static).", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output analysis file.")] = Path("analysis.nc"),
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Analysis times per forward pass.")] = 1,
    all_frames: Annotated[bool, typer.Option("--all-frames", help="Write every frame of each window, not only "
                                             "the analysis (last frame).")] = False,
    frames: Annotated[int | None, typer.Option("--frames", help="Write the last N frames (default 1).")] = None,
    lat_lon: Annotated[float | None, typer.Option("--lat-lon", help="Also write OUTPUT's .latlon.nc on a "
                                                  "regular grid of this spacing (degrees), bilinear.")] = None,
    per_rank: Annotated[bool, typer.Option("--per-rank", help="Under torchrun: one file per rank "
                                           "(<stem>.rankNNN.nc) instead of gathering into OUTPUT.")] = False,
    complevel: Annotated[int, typer.Option("--complevel", help="zlib level 0-9 (shuffle on).")] = 4,
    skip_hash_check: Annotated[bool, typer.Option("--skip-hash-check", help="Do not verify the checkpoint's "
                                                  "weights against its weights_sha256 (needed for a header "
                                                  "without one).")] = False,
    fp8: Annotated[bool, typer.Option("--fp8", help="FP8 (e4m3, rowwise-scaled) GEMMs in the transformer "
                                      "blocks' attention projections and MLPs: a faster, approximate forward "
                                      "(CUDA, compute capability >= 8.9; measured error in docs/benchmarks.md)."
                                      )] = False,
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Replace existing outputs.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Run HealDA on packed observations and write CF-1.13 HEALPix (NEST) analyses.

    Variables u, v, t, z, q (time, level, cell) on 13 pressure levels and tcwv, t2m, u10m, v10m, u100m, v100m,
    msl, sst, sic (time, cell), in physical units. bf16 autocast on GPU (--fp8: FP8 GEMMs in the blocks,
    approximate), float32 on CPU. A checkpoint whose conventions (level, frames, features, vocabulary, stats)
    differ from the packed file's is refused.
    Under torchrun the analysis times are split across ranks and gathered into OUTPUT.

    Examples:
      healda assimilate obs.packed.nc --ckpt healda-v2.safetensors --static static.nc -o analysis.nc
      healda assimilate day*.nc --ckpt m.mdlus --static static.nc --batch-size 4 --lat-lon 1.0 -o an.nc
      torchrun --nproc-per-node 4 -m healda_cli assimilate obs.nc --ckpt m.safetensors --static s.nc -o an.nc
    """
    from healda_core.assimilate import assimilate as run
    from healda_core.errors import UsageError
    from healda_core.fileio import check_writable

    if all_frames and frames is not None:
        raise UsageError("--all-frames and --frames exclude each other")
    if lat_lon is not None and not 0.05 <= lat_lon <= 10:
        raise UsageError(f"--lat-lon must be between 0.05 and 10 degrees, got {lat_lon}")
    if not 0 <= complevel <= 9:
        raise UsageError(f"--complevel must be in 0..9, got {complevel}")
    for p in packed:
        if not p.is_file():
            raise UsageError(f"{p}: no such packed observation file")
    check_writable(output, overwrite)
    if skip_hash_check:
        console.warn(f"{ckpt}: --skip-hash-check: the weights are not verified against the header's hash")
    n_frames = None if all_frames else (frames or 1)
    # float32 matmuls stay exact on purpose (the reference's precision); Inductor's hint to enable TF32 is noise here
    warnings.filterwarnings("ignore", message="TensorFloat32 tensor cores", category=UserWarning)
    with console.progress() as bar:
        task = bar.add_task("assimilate", total=None)
        res = run(packed, ckpt, static, output, device=device, batch_size=batch_size, frames=n_frames,
                  lat_lon=lat_lon, overwrite=overwrite, per_rank=per_rank, complevel=complevel,
                  verify=not skip_hash_check, precision="fp8" if fp8 else "bf16",
                  progress=lambda done, total: bar.update(task, completed=done, total=total),
                  log=console.verbose)
    fwd = res.forward_ms
    console.info(f"{res.analyses} analyses ({res.n_obs:,} obs) on {res.device} in {res.wall_s:.1f} s"
                 + (f"; forward {sum(fwd) / len(fwd):.0f} ms/batch" if fwd else "")
                 + (f", peak {res.peak_memory_gib:.1f} GiB" if res.peak_memory_gib is not None else ""))
    from healda_core.distributed.env import detect

    if detect().rank != 0 and not per_rank:
        return  # rank 0 reports the gathered result
    if json_out:
        console.emit_json({"outputs": res.outputs, "analyses": res.analyses, "frames": res.frames,
                           "device": res.device, "n_obs": res.n_obs, "wall_s": round(res.wall_s, 3),
                           "checkpoint_s": round(res.checkpoint_s, 3),
                           "first_analysis_s": round(res.first_analysis_s, 3),
                           "forward_ms": [round(x, 2) for x in fwd], "peak_memory_gib": res.peak_memory_gib,
                           "timings": [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
                                       for row in res.timings]})
    else:
        for p in res.outputs:
            console.emit_path(p)
