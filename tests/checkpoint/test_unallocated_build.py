"""Checkpoint checks build the model without allocating it, with the shapes of a meta build, and without
importing the compiler stack (which a build on ``meta`` does, through PyTorch's Python meta kernels)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from healda_core.checkpoint.state_dict import _build
from healda_core.model.healda import HealDA
from healda_core.presets import PRESETS, preset_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_same_keys_and_shapes_as_a_meta_build(preset):
    cfg = preset_config(preset)
    got = _build(cfg).state_dict()
    with torch.device("meta"):
        ref = HealDA(**cfg).state_dict()
    assert list(got) == list(ref)
    assert all(tuple(got[k].shape) == tuple(ref[k].shape) and got[k].dtype == ref[k].dtype for k in ref)
    big = [k for k, v in got.items() if not v.is_meta and v.numel() > 1 << 24]
    assert big == []  # parameters are never allocated


def test_reading_a_checkpoint_imports_no_compiler(tmp_path):
    from healda_core.checkpoint import write_safetensors
    from healda_core.presets import init_checkpoint

    path = tmp_path / "tiny.safetensors"
    write_safetensors(init_checkpoint("healda-tiny"), path)
    code = ("import sys; from healda_core.checkpoint import read_checkpoint; "
            f"read_checkpoint({str(path)!r}); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False", out.stderr
