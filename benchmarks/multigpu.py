"""Multi-GPU on one node (NCCL): DP × CP equal to one GPU, and weak scaling of the 1.5 B training step.

Launch with ``torchrun --nproc-per-node N benchmarks/multigpu.py --out multigpu_N.json`` (N = 1, 2, 4, 8; the
runner ``bash benchmarks/run.sh multigpu`` runs every count the node has and merges them with ``--summarize``).

Checks (N ≥ 2; every rank compares against the one-GPU run it computes itself, on its own GPU):

* context parallel, CP = 2, 4, 8 (those dividing N), T = 8, RoPE on (``verify.cp_equivalence``): the output
  frames and the group-summed parameter gradients against the whole model. fp32 (TF32 off): max |Δ| ≤ 1e-4 ×
  the largest value (only the summation order differs). bf16 autocast: max |Δ| ≤ 2 × the bf16 rounding of the
  one-GPU run itself (its max |Δ| against fp32): both bf16 runs lie within that rounding of the fp32 result.
* one Trainer step (tiny synthetic config, T = 8, global batch N) under DP = N and every DP × CP layout against
  the one-GPU step on the concatenated batch (``verify.trainer_step``): the relative error of the weight update
  and of the loss ≤ 2 × the one-GPU step's own bf16-vs-fp32 distance (at least 1e-4 for the update, 1e-5 for
  the loss: fp32 summation order).
* ``healda assimilate`` of many analysis times under ``torchrun --nproc-per-node N`` (gathered into one file)
  against one process: same variables, times and attributes (``history``, ``date_created`` aside); the values
  bitwise equal, or within 2⁻⁸ of each field's range (bf16 rounding) where the GPUs pick other kernels.

Scaling (1.5 B, preset ``healda-v2``, 10 M observations per sample, selective activation checkpointing, bf16,
fused AdamW, DDP with gradient bucket views): weak scaling, one sample per data-parallel rank (per CP group,
whose ranks hold T/CP frames and their observations). Per layout: median step time (slowest rank), peak
allocated memory per GPU, and from one profiled step the NCCL kernel time of the CP all-to-alls (forward,
recomputation, backward) and of the DDP all-reduces (overlapped with the backward). Layouts with CP run eager
(the Trainer compiles blocks only without CP); the DP-only layout also runs with compiled blocks.

``--backend gloo --smoke`` runs everything at a tiny size on the CPU (world size 2).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

NVLS_VARS = ("NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS")
BF16_FACTOR, FP32_REL = 2.0, 1e-4
_TORCHRUN_VARS = re.compile(r"^(RANK|LOCAL_RANK|WORLD_SIZE|LOCAL_WORLD_SIZE|GROUP_RANK|GROUP_WORLD_SIZE|ROLE_.*|"
                            r"MASTER_ADDR|MASTER_PORT|TORCHELASTIC_.*|TORCH_NCCL_ASYNC_ERROR_HANDLING)$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=("nccl", "gloo"), default="nccl")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (with --backend gloo)")
    p.add_argument("--out", type=Path, help="this launch's JSON")
    p.add_argument("--summarize", type=Path, nargs="+", help="merge launch JSONs into --out and print the table")
    p.add_argument("--skip-checks", action="store_true")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--check-preset", default="healda-small", help="model of the CP check")
    p.add_argument("--check-obs", type=int, default=20_000)
    p.add_argument("--analyses", type=int, default=8, help="analysis times of the assimilate check")
    p.add_argument("--preset", default="healda-v2", help="model of the scaling runs")
    p.add_argument("--n-obs", type=int, default=10_000_000, help="observations per sample")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-compile", action="store_true", help="skip the compiled DP-only layout")
    p.add_argument("--work", type=Path, default=Path("/tmp/healda-multigpu"))
    a = p.parse_args(argv)
    if a.smoke:
        a.check_preset, a.check_obs, a.analyses, a.preset, a.n_obs = "healda-tiny", 400, 4, "healda-tiny", 2000
        a.steps, a.warmup, a.no_compile = 1, 1, True
    return a


def _train_step_module():
    spec = importlib.util.spec_from_file_location("bench_train_step", ROOT / "benchmarks" / "train_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _log(msg: str) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ checks
def cp_sizes(world: int) -> list[int]:
    return [c for c in (2, 4, 8) if c <= world and world % c == 0]


def check_cp(a, env, dev) -> list[dict]:
    from healda_core.distributed import init_distributed
    from healda_core.distributed.verify import cp_equivalence
    from healda_core.presets import preset_config

    rows = []
    cfg = {**preset_config(a.check_preset), "time_length": 8, "use_rope": True, "drop_path": 0.0}
    for cp in cp_sizes(env.world_size):
        ps = init_distributed(env, cp=cp, device=dev.type)
        for bf16 in (False, True):
            r = cp_equivalence(cfg, ps.cp_group, b=1, n_obs=a.check_obs, device=dev, bf16=bf16)
            if bf16:
                tol_out, tol_grad = BF16_FACTOR * r["out_noise"], BF16_FACTOR * r["grad_noise"]
            else:
                tol_out, tol_grad = FP32_REL * r["out_scale"], FP32_REL * r["grad_scale"]
            ok = r["out_err"] <= tol_out and r["grad_err"] <= tol_grad and r["rope_effect"] > 0
            rows.append({"cp": cp, "dp": env.world_size // cp, "precision": "bf16" if bf16 else "fp32",
                         **r, "tol_out": tol_out, "tol_grad": tol_grad, "passed": ok})
            _log(f"cp={cp} {rows[-1]['precision']}: out {r['out_err']:.2e} (tol {tol_out:.2e}) "
                 f"grad {r['grad_err']:.2e} (tol {tol_grad:.2e}) rope {r['rope_effect']:.2e}")
    return rows


def trainer_layouts(world: int) -> list[tuple[int, int]]:
    return [(world, 1)] + [(world // c, c) for c in cp_sizes(world)]


def _trainer_cfg(world: int, dp: int, cp: int, bf16: bool):
    from healda_core.distributed.verify import tiny_trainer_overrides
    from healda_core.train import load_config

    return load_config(None, tiny_trainer_overrides(["model.time_length=8", f"parallel.cp={cp}",
                                                     f"data.batch_size={world // dp}", f"train.bf16={bf16}".lower(),
                                                     "parallel.compile=false"]))


def trainer_references(a, env, dev) -> dict:
    """The one-GPU steps on the concatenated batch (bf16 and fp32), before any process group exists."""
    from healda_core.distributed.env import ParallelState
    from healda_core.distributed.verify import trainer_step

    ps = ParallelState(device=dev)
    work = a.work / f"rank{env.rank}"
    return {bf16: trainer_step(_trainer_cfg(env.world_size, 1, 1, bf16), work / f"single_bf16_{bf16}", ps)
            for bf16 in (True, False)}


def check_trainer(a, env, dev, refs: dict) -> list[dict]:
    from healda_core.distributed import init_distributed
    from healda_core.distributed.verify import step_difference, trainer_step

    noise = step_difference(refs[True], refs[False]) if dev.type == "cuda" else {"loss_err": 0.0, "update_err": 0.0}
    tol_update = max(BF16_FACTOR * noise["update_err"], 1e-4)
    tol_loss = max(BF16_FACTOR * noise["loss_err"], 1e-5)
    rows = []
    for dp, cp in trainer_layouts(env.world_size):
        ps = init_distributed(env, cp=cp, device=dev.type)
        res = trainer_step(_trainer_cfg(env.world_size, dp, cp, True), a.work / f"trainer_dp{dp}_cp{cp}", ps)
        d = step_difference(res, refs[True])
        ok = d["update_err"] <= tol_update and d["loss_err"] <= tol_loss
        rows.append({"dp": dp, "cp": cp, **d, "noise": noise, "tol_update": tol_update, "tol_loss": tol_loss,
                     "passed": ok})
        _log(f"trainer dp={dp} cp={cp}: update {d['update_err']:.2e} (tol {tol_update:.2e}) "
             f"loss {d['loss_err']:.2e} (tol {tol_loss:.2e})")
    return rows


def _assimilate_inputs(a, work: Path) -> dict:
    from healda_core.checkpoint import write_safetensors
    from healda_core.obs.pack import pack_arrays
    from healda_core.obs.packed_write import write_packed
    from healda_core.presets import init_checkpoint, preset_config
    from healda_core.static import make_static, write_static
    from tests.cli.synthetic import synthetic_raw, write_latlon_invariants

    cfg = preset_config("healda-tiny")
    first = np.datetime64("2024-01-02T00:00", "s")
    times = [int((first + np.timedelta64(6 * i, "h")).astype(np.int64)) for i in range(a.analyses)]
    raw = synthetic_raw(str(np.datetime64(times[-1], "s")), n_sat=3000, n_conv=1000, hours=48 + 6 * (a.analyses - 1),
                        seed=1)
    write_packed(work / "obs.nc", pack_arrays(raw, times, level=cfg["level_model"], consume=True).packed, {})
    fields, attrs = make_static(write_latlon_invariants(work / "inv.nc"), cfg["level_in"])
    write_static(work / "static.nc", fields, cfg["level_in"], attrs, "benchmark")
    write_safetensors(init_checkpoint("healda-tiny"), work / "tiny.safetensors", overwrite=True)
    return {"packed": work / "obs.nc", "static": work / "static.nc", "ckpt": work / "tiny.safetensors"}


def _compare_nc(one: Path, many: Path) -> dict:
    import netCDF4

    with netCDF4.Dataset(one) as d1, netCDF4.Dataset(many) as dn:
        skip = {"history", "date_created"}
        attrs_equal = {k: d1.getncattr(k) for k in d1.ncattrs() if k not in skip} == \
                      {k: dn.getncattr(k) for k in dn.ncattrs() if k not in skip}
        same_vars = set(d1.variables) == set(dn.variables)
        bitwise, worst = True, 0.0
        for name in d1.variables if same_vars else []:
            x, y = np.asarray(d1[name][:]), np.asarray(dn[name][:])
            if x.shape != y.shape:
                return {"passed": False, "problem": f"{name}: shape {x.shape} vs {y.shape}"}
            if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
                bitwise = False
                if x.dtype.kind != "f":
                    return {"passed": False, "problem": f"{name} differs"}
                rng = float(np.nanmax(x) - np.nanmin(x)) or 1.0
                worst = max(worst, float(np.nanmax(np.abs(x - y))) / rng)
        n_times = len(d1["time"][:])
    ok = same_vars and attrs_equal and (bitwise or worst <= 2.0**-8)
    return {"passed": ok, "times": n_times, "bitwise": bitwise, "max_rel_diff": worst, "attrs_equal": attrs_equal,
            "same_variables": same_vars}


def check_assimilate(a, env) -> dict | None:
    """Rank 0: ``healda assimilate`` in one process and under torchrun with N processes; the others wait."""
    res = None
    if env.rank == 0:
        work = a.work / "assimilate"
        work.mkdir(parents=True, exist_ok=True)
        inp = _assimilate_inputs(a, work)
        clean = {k: v for k, v in os.environ.items() if not _TORCHRUN_VARS.match(k)}
        clean["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        cli = ["-m", "healda_cli", "assimilate", str(inp["packed"]), "--ckpt", str(inp["ckpt"]), "--static",
               str(inp["static"]), "-O", "--json"]
        runs = {"one": [sys.executable, *cli, "-o", str(work / "one.nc")],
                "many": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                         f"--nproc-per-node={env.world_size}", *cli, "-o", str(work / "many.nc")]}
        res = {"world": env.world_size}
        for name, cmd in runs.items():
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, env=clean, cwd=ROOT, check=False)
            res[f"{name}_wall_s"] = round(time.perf_counter() - t0, 2)
            if p.returncode:
                res.update(passed=False, problem=f"{name}: rc {p.returncode}: {p.stderr[-800:]}")
                break
        else:
            res.update(_compare_nc(work / "one.nc", work / "many.nc"))
        _log(f"assimilate: {res}")
    dist.barrier()
    return res


# ------------------------------------------------------------------------------------------------ scaling
_A2A = re.compile(r"sendrecv|alltoall|all_to_all", re.I)
_AR = re.compile(r"allreduce|all_reduce|reducescatter|reduce_scatter", re.I)


def _comm_ms(prof, pattern: re.Pattern, cuda: bool) -> float:
    """Time (ms) of the profiled events matching ``pattern``: NCCL kernels on CUDA, outermost CPU ops on gloo."""
    total = 0.0
    for ev in prof.events():
        if not pattern.search(ev.name):
            continue
        on_device = str(getattr(ev, "device_type", "")).endswith("CUDA")
        if cuda and not on_device:
            continue
        if not cuda and ev.cpu_parent is not None and pattern.search(ev.cpu_parent.name):
            continue
        total += ev.time_range.elapsed_us() / 1e3
    return total


def measure_layout(ts, model, opt, ps, a, compiled: bool, bf16: bool) -> dict:
    """Weak-scaling step of one DP × CP layout: one sample per CP group, T/CP frames and N/CP obs per rank."""
    from torch.profiler import ProfilerActivity, profile

    from healda_core.distributed import enable_context_parallel

    cuda = ps.device.type == "cuda"
    enable_context_parallel(model, ps.cp_group)
    fwd = model
    if dist.get_world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        with warnings.catch_warnings():  # torch 2.13 deprecates broadcast_buffers; the buffers are constants
            warnings.simplefilter("ignore", FutureWarning)
            fwd = DDP(model, device_ids=[ps.device.index] if cuda else None, broadcast_buffers=False,
                      gradient_as_bucket_view=True)
    ns = argparse.Namespace(batch=1, frames=model.time_length // ps.cp_size, n_obs=a.n_obs // ps.cp_size)
    batch = ts.make_batch(model, ns)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times = []
    for i in range(a.warmup + a.steps):
        if cuda and i == a.warmup:
            torch.cuda.reset_peak_memory_stats()
        dist.barrier()
        sync()
        t0 = time.perf_counter()
        ts.step(model, fwd, opt, batch, bf16)
        sync()
        dt = torch.tensor([time.perf_counter() - t0], dtype=torch.float64, device=ps.device)
        dist.all_reduce(dt, op=dist.ReduceOp.MAX)  # the step of the slowest rank
        if i >= a.warmup:
            times.append(float(dt))
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    dist.barrier()
    with profile(activities=acts) as prof:
        ts.step(model, fwd, opt, batch, bf16)
        sync()
    comm = torch.tensor([_comm_ms(prof, _A2A, cuda) if ps.cp_size > 1 else 0.0, _comm_ms(prof, _AR, cuda), peak],
                        dtype=torch.float64, device=ps.device)
    peaks = [torch.zeros(1, dtype=torch.float64, device=ps.device) for _ in range(dist.get_world_size())]
    dist.all_gather(peaks, comm[2:3].clone())
    dist.all_reduce(comm, op=dist.ReduceOp.MAX)
    del fwd, batch
    return {"gpus": dist.get_world_size(), "dp": ps.dp_size, "cp": ps.cp_size, "compiled": compiled,
            "obs_per_rank": ns.n_obs, "frames_per_rank": ns.frames, "step_time_s": statistics.median(times),
            "all_step_s": times, "peak_memory_gib": float(comm[2]), "peak_memory_gib_per_rank": [float(p) for p in peaks],
            "all_to_all_ms": float(comm[0]), "all_reduce_ms": float(comm[1])}


def scaling(a, env, dev, rows: list[dict], save=lambda: None) -> list[dict]:
    """Append one row per layout to ``rows`` (calling ``save`` after each)."""
    from healda_core.distributed import init_distributed

    ts = _train_step_module()
    cuda = dev.type == "cuda"
    model, _, opt, _ = ts.build(argparse.Namespace(preset=a.preset, frames=8, device=str(dev), ac="selective",
                                                   compile=False))
    layouts = [(env.world_size // c, c, False) for c in [1, *cp_sizes(env.world_size)]]
    if not a.no_compile:
        layouts.append((env.world_size, 1, True))  # last: compiling is in place
    for dp, cp, compiled in layouts:
        ps = init_distributed(env, cp=cp, device=dev.type)
        if compiled:
            model.dit.compile_blocks()
        try:
            rows.append(measure_layout(ts, model, opt, ps, a, compiled, bf16=cuda))
        except torch.cuda.OutOfMemoryError as exc:
            rows.append({"gpus": env.world_size, "dp": dp, "cp": cp, "compiled": compiled,
                         "error": f"out of memory: {str(exc)[:200]}"})
            opt.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
        _log(f"scaling: {rows[-1]}")
        save()
    return rows


# ------------------------------------------------------------------------------------------------ report
def summarize(files: list[Path]) -> dict:
    """Merge launch JSONs; weak-scaling efficiency = dp · t(1 GPU) / (GPUs · t), against the 1-GPU row run the
    same way (compiled or eager)."""
    launches = [json.loads(Path(f).read_text()) for f in files]
    rows = [r for la in launches for r in la.get("scaling", [])]
    base = {r["compiled"]: r["step_time_s"] for r in rows if r["gpus"] == 1 and "step_time_s" in r}
    for r in rows:
        t1 = base.get(r["compiled"])
        r["weak_scaling_efficiency"] = r["dp"] * t1 / (r["gpus"] * r["step_time_s"]) \
            if t1 and "step_time_s" in r else None
    checks = [c for la in launches for c in la.get("checks", {}).get("cp", []) + la.get("checks", {}).get("trainer", [])]
    assim = [la["checks"]["assimilate"] for la in launches if la.get("checks", {}).get("assimilate")]
    return {"launches": launches, "scaling": rows,
            "checks_passed": all(c["passed"] for c in checks + assim) if checks or assim else None,
            "env": launches[0].get("env") if launches else None}


def table(summary: dict) -> str:
    lines = ["gpus  dp×cp  compiled  step s  weak eff  peak GiB/GPU  all-to-all ms  all-reduce ms"]
    for r in summary["scaling"]:
        if "error" in r:
            lines.append(f"{r['gpus']:>4}  {r['dp']}×{r['cp']:<3}  {r['compiled']!s:<8}  {r['error'][:60]}")
            continue
        eff = "" if r["weak_scaling_efficiency"] is None else f"{100 * r['weak_scaling_efficiency']:.1f} %"
        lines.append(f"{r['gpus']:>4}  {r['dp']}×{r['cp']:<3}  {r['compiled']!s:<8}  {r['step_time_s']:6.3f}  "
                     f"{eff:>8}  {r['peak_memory_gib']:12.2f}  {r['all_to_all_ms']:13.1f}  {r['all_reduce_ms']:13.1f}")
    lines.append(f"checks passed: {summary['checks_passed']}")
    return "\n".join(lines)


def _write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    tmp.replace(path)


def env_info(dev: torch.device) -> dict:
    from healda_core.bench.env import env_info as common

    return {**common(), "nccl": str(torch.cuda.nccl.version()) if dev.type == "cuda" else None,
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "nvls": {k: os.environ.get(k) for k in NVLS_VARS}}


def main(argv: list[str] | None = None) -> dict | None:
    a = parse_args(argv)
    if a.summarize:
        s = summarize(a.summarize)
        if a.out:
            _write(a.out, s)
        print(table(s))
        return s
    from healda_core.distributed import detect, init_distributed, shutdown

    env = detect()
    if a.backend == "nccl" and not torch.cuda.is_available():
        sys.exit("error: --backend nccl needs CUDA (use --backend gloo --smoke on the CPU)")
    dev = torch.device("cuda", env.local_rank) if a.backend == "nccl" else torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    else:
        torch.set_num_threads(1)
    a.work = a.work / f"n{env.world_size}"
    import shutil

    if env.rank == 0:  # before the process group exists, so before any other rank writes below a.work
        shutil.rmtree(a.work, ignore_errors=True)
    a.work.mkdir(parents=True, exist_ok=True)
    checks = not a.skip_checks and env.world_size > 1
    refs = trainer_references(a, env, dev) if checks else None  # before any process group: one-GPU Trainer
    if env.world_size == 1:  # init_distributed leaves one process without a group; the measurement uses one
        dist.init_process_group(a.backend, init_method="env://" if "MASTER_ADDR" in os.environ else
                                f"file://{a.work / 'rendezvous'}", rank=0, world_size=1)
    init_distributed(env, cp=1, device=dev.type)
    result = {"world": env.world_size, "env": env_info(dev), "smoke": a.smoke, "checks": {}, "scaling": []}
    if checks:
        result["checks"]["cp"] = check_cp(a, env, dev)
        result["checks"]["trainer"] = check_trainer(a, env, dev, refs)
        result["checks"]["assimilate"] = check_assimilate(a, env)
    gathered = [None] * env.world_size
    dist.all_gather_object(gathered, result["checks"])
    for key in ("cp", "trainer"):
        if key in result["checks"]:  # every rank's own comparison
            result["checks"][key] = [row | {"rank": r} for r, g in enumerate(gathered) for row in g[key]]
    def save() -> None:  # what is done survives a scaling run that dies (out of memory, time limit)
        if env.rank == 0 and a.out:
            _write(a.out, result)

    save()
    if not a.skip_scaling:
        scaling(a, env, dev, result["scaling"], save)
    if env.rank == 0:
        if a.out:
            _write(a.out, result)
        s = summarize([a.out]) if a.out else None
        print(table(s) if s else json.dumps(result, default=str))
        if s and s["checks_passed"] is False:
            shutdown()
            sys.exit("error: a multi-GPU check failed (see the JSON's checks)")
    shutdown()
    return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
