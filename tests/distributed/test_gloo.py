"""2-process gloo tests on the CPU: context parallelism, DDP and exact resume (issue 6 acceptance).

Each module fixture spawns the two processes once and the tests check what they returned.
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.distributed.workers import cp_model_worker, ddp_resume_worker, spawn

pytestmark = pytest.mark.slow


def _single_process_step(tmp_path) -> dict:
    from healda_core.distributed.verify import trainer_step
    from healda_core.train import load_config
    from tests.distributed.workers import trainer_overrides

    torch.set_num_threads(1)
    return trainer_step(load_config(None, trainer_overrides(["data.batch_size=2"])), tmp_path / "single")


@pytest.fixture(scope="module")
def cp_results(tmp_path_factory):
    return spawn(cp_model_worker, 2, tmp_path_factory.mktemp("cp"), 2)


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    return spawn(ddp_resume_worker, 2, out, 1), out


@pytest.fixture(scope="module")
def single_step(tmp_path_factory):
    return _single_process_step(tmp_path_factory.mktemp("single"))


@pytest.mark.parametrize("t_len", [4, 8])
def test_context_parallel_forward_and_gradients_match_single_process(cp_results, t_len):
    for rank, res in enumerate(cp_results):
        r = res[f"T{t_len}"]
        assert r["rope_effect"] > 1e-3, "RoPE must change the output, or the test is vacuous"
        assert r["out_scale"] > 0.1 and r["grad_scale"] > 1e-4
        assert r["out_err"] < 1e-5, (rank, r)
        assert r["grad_err"] < 1e-5 and r["grad_err"] < 1e-5 * r["grad_scale"], (rank, r)  # absolute and relative


def _assert_same_step(a: dict, b: dict, atol: float) -> None:
    assert abs(a["loss"] - b["loss"]) < 1e-6, (a["loss"], b["loss"])
    worst = max(float((a["state"][k].float() - b["state"][k].float()).abs().max()) for k in b["state"])
    assert worst < atol, worst


def test_context_parallel_training_step_matches_single_process(cp_results, single_step):
    for res in cp_results:
        _assert_same_step(res["trainer"], single_step, atol=1e-5)


def test_ddp_step_equals_single_process_step_on_concatenated_batch(ddp_results, single_step):
    results, _ = ddp_results
    for res in results:
        _assert_same_step(res["ddp"], single_step, atol=1e-6)
    assert all(torch.equal(results[0]["ddp"]["state"][k], results[1]["ddp"]["state"][k])
               for k in results[0]["ddp"]["state"])


def test_stopped_and_resumed_run_equals_uninterrupted_run(ddp_results):
    results, out = ddp_results
    for res in results:
        r = res["resume"]
        assert len(r["full_losses"]) == 6
        assert r["resumed_losses"] == r["full_losses"]  # bit-exact
        assert r["resumed_val"] == r["full_val"]
        for key in ("state", "ema"):
            full, resumed = r[f"full_{key}"], r[f"resumed_{key}"]
            assert full.keys() == resumed.keys()
            assert all(torch.equal(full[k], resumed[k]) for k in full), key
    strip = lambda recs: [{k: v for k, v in x.items() if k != "step_time_s"} for x in recs]
    lines = {name: strip(json.loads(ln) for ln in (out / name / "metrics.jsonl").read_text().splitlines())
             for name in ("full", "part")}
    assert lines["full"] == lines["part"]
    ckpts = {name: (out / name / "checkpoints" / "step_00000006" / "model.safetensors").read_bytes()
             for name in ("full", "part")}
    from healda_core.checkpoint.format import read_header

    assert read_header(out / "full" / "checkpoints" / "step_00000006" / "model.safetensors").weights_sha256 == \
        read_header(out / "part" / "checkpoints" / "step_00000006" / "model.safetensors").weights_sha256
    assert len(ckpts["full"]) == len(ckpts["part"])
