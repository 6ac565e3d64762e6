"""`healda assimilate` on CUDA: pinned host buffers with asynchronous copies, a batch equal to one call per
analysis bit for bit (eager), no output and no thread left after a failure."""

from __future__ import annotations

import pytest
import torch

from tests.cli import test_assimilate_batch as batch

work = batch.work  # the same inputs: three packed files, a tiny checkpoint, a static file

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the GPU machine)")]


def test_batch_on_cuda_equals_one_at_a_time_and_decodes_into_pinned_memory(work, monkeypatch):  # noqa: F811
    import numpy as np

    import healda_core.inference as inference

    monkeypatch.setenv("HEALDA_COMPILE", "0")  # eager: compiled and eager forwards differ within bf16 rounding
    pinned = []
    real_alloc = inference.host_alloc

    def recording(dev):
        alloc = real_alloc(dev)

        def wrapped(n, dtype):
            t = alloc(n, dtype)
            pinned.append(t.is_pinned())
            return t
        return wrapped

    monkeypatch.setattr(inference, "host_alloc", recording)
    d = work["dir"]
    res = batch._assimilate(work, work["packed"], d / "gpu_all.nc", "--device", "cuda", "--lat-lon", 10)
    assert res.exit_code == 0, res.output
    assert pinned and all(pinned)
    got = batch._fields(d / "gpu_all.nc")
    for i, p in enumerate(work["packed"]):
        res = batch._assimilate(work, [p], d / f"gpu_one{i}.nc", "--device", "cuda")
        assert res.exit_code == 0, res.output
        one = batch._fields(d / f"gpu_one{i}.nc")
        for v in batch.VARS:
            assert np.array_equal(got[v][i], one[v][0], equal_nan=True), (v, i)
    assert batch._no_pipeline_threads()


def test_forward_failure_on_cuda_leaves_nothing(work, monkeypatch):  # noqa: F811
    import healda_core.inference as inference

    calls = {"n": 0}
    real = inference.AnalysisStep.__call__

    def second_fails(self, p):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("forward failed (test)")
        return real(self, p)

    monkeypatch.setattr(inference.AnalysisStep, "__call__", second_fails)
    res = batch._assimilate(work, work["packed"], work["dir"] / "gpu_fail.nc", "--device", "cuda", "--lat-lon", 10)
    assert res.exit_code == 1 and calls["n"] == 2
    assert batch._left(work["dir"], "gpu_fail") == [] and batch._no_pipeline_threads()


def test_checkpoint_tensors_mapped_to_cuda_equal_safetensors(work):  # noqa: F811
    from safetensors.torch import load_file

    from healda_core.checkpoint.format import mapped_to_device

    ref = load_file(str(work["ckpt"]), device="cuda:0")
    got = mapped_to_device(work["ckpt"], torch.device("cuda", 0))
    assert list(got) == list(ref)
    assert all(got[k].is_cuda and got[k].dtype == v.dtype and torch.equal(got[k], v) for k, v in ref.items())
