"""The whole model on the kernels (GPU only): fixture output, gradients, saved autotune cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from tests.kernels.conftest import gpu, rel_err
from tests.model.helpers import fixture_context, fixture_model


@gpu
def test_model_with_kernels_matches_fixture(fixture_small):
    model = fixture_model(fixture_small).cuda()
    inp = {k: (v.cuda() if torch.is_tensor(v) else v) for k, v in fixture_small["inputs"].items()
           if k != "raw_obs"}
    ctx = fixture_context(fixture_small).to("cuda")
    out = model(inp["x"], inp["t"], inp["second_of_day"], inp["day_of_year"], ctx)
    ref = fixture_small["output"].cuda()
    err = rel_err(out, ref)
    rel_l2 = float((out - ref).norm() / ref.norm())
    assert err <= 2e-2 and rel_l2 <= 5e-3, (err, rel_l2)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out16 = model(inp["x"], inp["t"], inp["second_of_day"], inp["day_of_year"], ctx)
    assert float((out16.float() - ref).norm() / ref.norm()) <= 3e-2
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


SCRIPT = r"""
import json, math, torch
from healda_core.kernels import pixel_attn_op as op, tuning
from healda_core.obs.context import counts_to_cu_seqlens
g = torch.Generator().manual_seed(0)
counts = torch.randint(0, 40, (4096,), generator=g)
cu = counts_to_cu_seqlens(counts).cuda()
q = torch.randn(4096, 64, 32, device="cuda", dtype=torch.bfloat16, requires_grad=True)
x = torch.randn(int(counts.sum()), 32, device="cuda", dtype=torch.bfloat16, requires_grad=True)
w = torch.randn(64, 32, device="cuda", requires_grad=True)
out = op.pixel_attention(q, x, w, w, None, cu, int(counts.max()))
out.sum().backward()
print(json.dumps(tuning.report()))
"""


@gpu
def test_saved_autotune_cache_gives_zero_tuning_in_a_new_process(tmp_path):
    env = dict(os.environ, HEALDA_AUTOTUNE_CACHE_DIR=str(tmp_path))
    env.pop("HEALDA_AUTOTUNE", None)
    first = json.loads(subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, capture_output=True,
                                      text=True).stdout.strip().splitlines()[-1])
    assert first["tuned_buckets"] >= 2 and list(tmp_path.glob("*.json"))
    second = json.loads(subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, capture_output=True,
                                       text=True).stdout.strip().splitlines()[-1])
    assert second["tuned_buckets"] == 0 and second["tuning_seconds"] == 0.0
    assert second["kernels"]["pixel_attn_fwd"] == first["kernels"]["pixel_attn_fwd"]
