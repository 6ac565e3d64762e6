"""``healda assimilate`` end to end over a batch of analyses: where the time goes, per analysis.

Inputs (built first, not timed as part of the result): a random-weight checkpoint of ``--preset``
(``init_checkpoint``, what ``healda init-ckpt`` writes; or an existing ``--ckpt``), ``--analyses`` packed
files of ``--n-obs`` synthetic observations each (AMSU-A + conventional t/u/v, packed once at the preset's
``level_model`` and written once per analysis time, a day apart), and a static file at ``level_in``.

Measured: ``python -m healda_cli assimilate FILES... --json`` as a user runs it, in a fresh process, ``--runs``
times (the first with cold Triton/Inductor caches on a fresh machine, the next with warm ones). Per run: the
process wall time; the call's own wall time; checkpoint read + model build; the first analysis written
(checkpoint included); and per analysis: packed read + decode (background thread), the loop's wait for it,
host→device copy + features, forward, write (background thread: NEST + lat-lon NetCDF), and when it was
written. The steady state is the median interval between successive analyses being written.

Usage:
    python benchmarks/assimilate.py --out /tmp/assim.json                    # 1.5 B, 18 analyses, 10 M obs each
    python benchmarks/assimilate.py --smoke --out /tmp/assim.json            # tiny model on the CPU
    python benchmarks/assimilate.py --compile off --analyses 4 --runs 1      # eager throughout
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def make_checkpoint(work: Path, preset: str, dtype: str) -> Path:
    """The preset's random-weight checkpoint (``init_checkpoint``; with CUDA the initialisation runs on the GPU,
    which takes seconds instead of minutes for the 1.5 B model: same distributions, other random numbers)."""
    import torch

    from healda_core.checkpoint import write_safetensors
    from healda_core.checkpoint.convert import DTYPES, LoadedCheckpoint, cast_state_dict
    from healda_core.checkpoint.format import default_conventions
    from healda_core.model.healda import HealDA
    from healda_core.presets import init_checkpoint, preset_config

    path = work / f"{preset}-{dtype}.safetensors"
    if path.exists():
        return path
    if not torch.cuda.is_available():
        write_safetensors(init_checkpoint(preset, seed=0, dtype=dtype), path)
        return path
    cfg = preset_config(preset)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = HealDA(**cfg)
    sd = cast_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()}, DTYPES[dtype])
    del model
    write_safetensors(LoadedCheckpoint(sd, cfg, default_conventions(cfg), "healda-init", f"preset:{preset}",
                                       {"preset": preset, "seed": "0", "source": "benchmarks/assimilate.py"}), path)
    return path


def make_packed(work: Path, n_obs: int, n_analyses: int, level: int, first: str = "2024-01-02T00:00") -> list[Path]:
    """``n_analyses`` packed files, each one analysis time (a day apart) of the same ``n_obs`` observations."""
    from healda_core.obs.pack import pack_arrays
    from healda_core.obs.packed_write import write_packed
    from tests.cli.synthetic import synthetic_raw

    raw = synthetic_raw(first, n_sat=int(n_obs * 0.9), n_conv=n_obs - int(n_obs * 0.9), hours=45, seed=1)
    t0 = int(np.datetime64(first, "s").astype(np.int64))
    p = pack_arrays(raw, [t0], level=level, consume=True).packed
    del raw
    paths = []
    for k in range(n_analyses):
        shifted = dataclasses.replace(p, analysis_s=p.analysis_s + k * 86400,
                                      obs={**p.obs, "time": p.obs["time"] + k * 86400 * 10**9})
        paths.append(work / f"obs{k:03d}.nc")
        write_packed(paths[-1], shifted, {})
    return paths


def make_static(work: Path, level: int) -> Path:
    from healda_core.static import make_static as build
    from healda_core.static import write_static
    from tests.cli.synthetic import write_latlon_invariants

    path = work / f"static-l{level}.nc"
    if not path.exists():
        fields, attrs = build(write_latlon_invariants(work / "inv.nc", deg=0.5), level)
        write_static(path, fields, level, attrs, "benchmark")
    return path


def run_once(files: list[Path], ckpt: Path, static: Path, out: Path, args) -> dict:
    cmd = [sys.executable, "-m", "healda_cli", "assimilate", *map(str, files), "--ckpt", str(ckpt), "--static",
           str(static), "-o", str(out), "-O", "--json", "--device", args.device]
    if args.lat_lon:
        cmd += ["--lat-lon", str(args.lat_lon)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if args.compile != "auto":
        env["HEALDA_COMPILE"] = {"on": "1", "off": "0"}.get(args.compile, args.compile)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - t0
    row: dict = {"process_wall_s": round(wall, 2), "rc": proc.returncode}
    if proc.returncode != 0:
        row["stderr_tail"] = proc.stderr[-3000:]
        return row
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    written = [t["written"] for t in res["timings"]]
    gaps = np.diff(written).tolist()
    row.update(call_wall_s=res["wall_s"], checkpoint_s=res["checkpoint_s"], first_analysis_s=res["first_analysis_s"],
               steady_s_per_analysis=round(statistics.median(gaps), 3) if gaps else None,
               mean_s_after_first=round((written[-1] - written[0]) / len(gaps), 3) if gaps else None,
               peak_memory_gib=res["peak_memory_gib"], n_obs=res["n_obs"], timings=res["timings"],
               output_mb=round(out.stat().st_size / 1e6, 1))
    return row


def print_run(i: int, row: dict) -> None:
    if row["rc"] != 0:
        print(f"run {i}: failed rc={row['rc']}\n{row.get('stderr_tail', '')}", flush=True)
        return
    print(f"run {i}: process {row['process_wall_s']:.1f} s, call {row['call_wall_s']:.1f} s, checkpoint "
          f"{row['checkpoint_s']:.2f} s, first analysis {row['first_analysis_s']:.2f} s, steady "
          f"{row['steady_s_per_analysis']} s/analysis (mean after the first {row['mean_s_after_first']}), peak "
          f"{row['peak_memory_gib']} GiB", flush=True)
    print("  #   read    wait    h2d     forward write   written", flush=True)
    for k, t in enumerate(row["timings"]):
        print(f"  {k:<3d} {t['read']:7.3f} {t['wait']:7.3f} {t['h2d']:7.3f} {t['forward']:7.3f} {t['write']:7.3f} "
              f"{t['written']:7.2f}", flush=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="healda-v2", help="model preset of the random-weight checkpoint")
    ap.add_argument("--ckpt", default=None, help="an existing checkpoint instead of --preset")
    ap.add_argument("--ckpt-dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--analyses", type=int, default=18,
                    help="packed files, one analysis time each (>= 17: assimilate compiles from the second forward)")
    ap.add_argument("--n-obs", type=int, default=10_000_000, help="observations per analysis")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", default="auto", choices=["auto", "on", "off", "tuned"],
                    help="HEALDA_COMPILE for the run (auto: assimilate's own policy)")
    ap.add_argument("--lat-lon", type=float, default=1.0, help="also write a lat-lon product (0: none)")
    ap.add_argument("--runs", type=int, default=2, help="fresh processes, one after the other")
    ap.add_argument("--work", default="/tmp/healda-bench-assimilate")
    ap.add_argument("--out", default=None, help="JSON result file")
    ap.add_argument("--smoke", action="store_true", help="healda-tiny, 3 analyses of 20,000 obs, CPU")
    args = ap.parse_args(argv)
    if args.smoke:
        args.preset, args.analyses, args.n_obs, args.device, args.runs = "healda-tiny", 3, 20_000, "cpu", 1
        args.lat_lon = args.lat_lon and 10.0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    from healda_core.bench.env import env_info
    from healda_core.checkpoint import read_header
    from healda_core.presets import preset_config

    # h5py + isal: the packed reader's parallel decode
    result: dict = {"env": env_info(("h5py", "isal", "netCDF4")), "args": vars(args)}
    print(json.dumps(result["env"]), flush=True)
    if not (result["env"]["h5py"] and result["env"]["isal"]):
        print("warning: without h5py and isal the packed files are written and read on one core (carry their "
              "wheels: benchmarks/README.md)", flush=True)
    t0 = time.perf_counter()
    ckpt = Path(args.ckpt) if args.ckpt else make_checkpoint(work, args.preset, args.ckpt_dtype)
    cfg = read_header(ckpt).config if args.ckpt else preset_config(args.preset)
    result["setup_checkpoint_s"] = round(time.perf_counter() - t0, 1)
    result["checkpoint_gb"] = round(ckpt.stat().st_size / 1e9, 2)
    t0 = time.perf_counter()
    files = make_packed(work, args.n_obs, args.analyses, int(cfg["level_model"]))
    static = make_static(work, int(cfg["level_in"]))
    result["setup_inputs_s"] = round(time.perf_counter() - t0, 1)
    result["packed_mb_each"] = round(files[0].stat().st_size / 1e6, 1)
    print(f"inputs: checkpoint {result['checkpoint_gb']} GB ({result['setup_checkpoint_s']} s), {len(files)} packed "
          f"files of {result['packed_mb_each']} MB ({result['setup_inputs_s']} s)", flush=True)
    result["runs"] = []
    for i in range(args.runs):
        row = run_once(files, ckpt, static, work / "analysis.nc", args)
        result["runs"].append(row)
        print_run(i, row)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    sys.exit(0 if all(r["rc"] == 0 for r in main()["runs"]) else 1)
