"""The benchmark scripts' CPU paths (``--smoke``): they run and report what they measured."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

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
