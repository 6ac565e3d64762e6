"""The benchmark scripts' CPU paths (``--smoke``): they run and report what they measured."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_forward_smoke_writes_what_it_prints(tmp_path, capsys):
    out = tmp_path / "forward.json"
    res = _script("forward").main(["--smoke", "--out", str(out)])
    ours = res["ours"]
    assert ours["impl"] == "healda" and ours["compile"] == "eager" and ours["params"] == 311_978  # healda-tiny
    assert ours["median_ms"] > 0 and len(ours["all_ms"]) == 1 and "reference" not in res
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ours"] == ours


def test_result_files_record_where_they_ran():
    import numpy
    import torch

    from healda_core.bench.env import env_info

    env = env_info(("numpy", "no_such_module_here"))
    assert env["torch"] == torch.__version__ and env["numpy"] == numpy.__version__
    assert env["no_such_module_here"] is None and env["cpus"] >= 1 and "triton" in env
    assert ("gpu" in env) is torch.cuda.is_available()


def test_forward_fp8_smoke_reports_its_error_against_fp32(tmp_path):
    mod = _script("forward")
    d = mod.differences(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 2.0, 3.0, 0.0]))
    assert d == {"max_abs": 4.0, "rms": 2.0, "ref_rms": pytest.approx((14 / 4) ** 0.5, rel=1e-6)}
    res = mod.main(["--smoke", "--fp8", "--out", str(tmp_path / "fwd.json")])
    ours, acc = res["ours"], res["ours"]["accuracy"]
    assert ours["precision"] == "fp8" and set(acc) == {"fp8_vs_bf16", "fp8_vs_fp32", "bf16_vs_fp32"}
    assert acc["bf16_vs_fp32"]["rms"] == 0  # on the CPU the default path is float32
    err = acc["fp8_vs_fp32"]
    # the modulations drawn, the blocks are not the identity: FP8 changes the output, by a few % at most
    assert 1e-3 * err["ref_rms"] < err["rms"] < 0.1 * err["ref_rms"] and err["max_abs"] >= err["rms"]


def test_assimilate_smoke_reports_every_analysis(tmp_path, capsys):
    out = tmp_path / "assimilate.json"
    res = _script("assimilate").main(["--smoke", "--work", str(tmp_path / "work"), "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    (run,) = res["runs"]
    assert run["rc"] == 0, run.get("stderr_tail")
    assert len(run["timings"]) == 3 and run["n_obs"] == sum(t["n_obs"] for t in run["timings"]) > 0
    assert 0 < run["checkpoint_s"] <= run["first_analysis_s"] <= run["call_wall_s"] <= run["process_wall_s"]
    assert run["steady_s_per_analysis"] > 0
    printed = capsys.readouterr().out
    assert "run 0:" in printed and len([ln for ln in printed.splitlines() if ln.startswith("  2 ")]) == 1


def test_multigpu_weak_scaling_efficiency_is_per_gpu_throughput_against_one_gpu(tmp_path):
    rows = [{"gpus": 1, "dp": 1, "cp": 1, "compiled": False, "step_time_s": 2.0},
            {"gpus": 2, "dp": 2, "cp": 1, "compiled": False, "step_time_s": 2.5},
            {"gpus": 2, "dp": 1, "cp": 2, "compiled": False, "step_time_s": 1.25},
            {"gpus": 2, "dp": 2, "cp": 1, "compiled": True, "step_time_s": 1.0}]  # no compiled 1-GPU row
    files = []
    for g in (1, 2):
        files.append(tmp_path / f"multigpu_{g}.json")
        files[-1].write_text(json.dumps({"scaling": [r for r in rows if r["gpus"] == g], "checks": {}}))
    s = _script("multigpu").summarize(files)
    assert [r["weak_scaling_efficiency"] for r in s["scaling"]] == [1.0, 0.8, 0.8, None]
    assert s["checks_passed"] is None  # nothing was checked


@pytest.mark.slow
def test_multigpu_smoke_on_gloo_checks_equal_to_one_process_and_measures(tmp_path):
    """``torchrun --nproc-per-node 2 benchmarks/multigpu.py --backend gloo --smoke``: CP = 2, DDP and CP × DP
    Trainer steps and a 2-rank ``healda assimilate`` against one process; the scaling rows of both layouts."""
    out = tmp_path / "multigpu_2.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(ROOT / "benchmarks" / "multigpu.py"), "--backend", "gloo", "--smoke", "--out", str(out),
                           "--work", str(tmp_path / "work")], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    cp = res["checks"]["cp"]
    assert sorted((r["rank"], r["precision"]) for r in cp) == [(0, "bf16"), (0, "fp32"), (1, "bf16"), (1, "fp32")]
    for r in cp:
        assert r["cp"] == 2 and r["passed"], r
        assert r["rope_effect"] > 1e-3 and r["out_scale"] > 0.1 and r["grad_scale"] > 1e-4  # not vacuous
        if r["precision"] == "fp32":  # CPU fp32: the same bound as the gloo tests
            assert r["out_err"] < 1e-5 and r["grad_err"] < 1e-5 * r["grad_scale"], r
        else:  # bf16 within twice its own rounding, and that rounding is real
            assert 0 < r["grad_noise"] and r["grad_err"] <= 2 * r["grad_noise"], r
    tr = res["checks"]["trainer"]
    assert sorted((r["rank"], r["dp"], r["cp"]) for r in tr) == [(0, 1, 2), (0, 2, 1), (1, 1, 2), (1, 2, 1)]
    assert all(r["passed"] and r["update_err"] < 1e-4 and r["loss_err"] < 1e-5 for r in tr), tr
    assim = res["checks"]["assimilate"]
    assert assim["passed"] and assim["bitwise"] and assim["times"] == 4 and assim["attrs_equal"], assim
    rows = {(r["dp"], r["cp"]): r for r in res["scaling"]}
    assert set(rows) == {(2, 1), (1, 2)}
    assert rows[(1, 2)]["frames_per_rank"] == 4 and rows[(1, 2)]["obs_per_rank"] == 1000
    assert rows[(1, 2)]["all_to_all_ms"] > 0 and rows[(2, 1)]["all_to_all_ms"] == 0
    assert all(r["step_time_s"] > 0 and r["all_reduce_ms"] > 0 for r in rows.values())
    assert "checks passed: True" in proc.stdout
