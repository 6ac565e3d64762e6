"""The lean kernel launch (``healda_core.kernels.launch``): its specialisation key and, on the GPU, that it runs
exactly what ``kernel[grid](...)`` runs."""

from __future__ import annotations

import torch

from healda_core.kernels import launch as L
from healda_core.kernels import pixel_attn as PK
from healda_core.kernels.pixel_attn_op import pixel_attention
from tests.kernels.conftest import DEVICE, gpu
from tests.kernels.test_pixel_attn import make


def test_key_separates_what_triton_specialises_on():
    buf = torch.zeros(64, dtype=torch.bfloat16)
    assert L._spec(buf) == (torch.bfloat16, True)
    assert L._spec(buf[1:]) == (torch.bfloat16, False)  # 2 bytes off a 16-byte boundary
    assert L._spec(buf[8:]) == (torch.bfloat16, True)
    assert L._spec(buf.float()) == (torch.float32, True)
    assert L._spec(1) != L._spec(17)  # 1 is a constant to Triton
    assert L._spec(16) != L._spec(17) and L._spec(17) == L._spec(33)  # multiples of 16 are specialised
    assert L._spec(2**31) != L._spec(2**31 - 15)  # i64 vs i32 (neither a multiple of 16)
    assert L._spec(0.5) == L._spec(2.0)  # floats are not specialised
    assert L._spec("ieee") != L._spec("bf16") and L._spec(None) != L._spec(False)


def test_interpreter_and_switch_use_the_ordinary_launch(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert not L._enabled()
    with monkeypatch.context() as m:  # no kernel runs in here: the interpreter's kernels need the variable
        m.delenv("TRITON_INTERPRET")
        m.setattr(L, "FAST", False)
        assert not L._enabled()
        m.setattr(L, "FAST", True)
        assert L._enabled()  # no launch hooks are installed


@gpu
def test_gpu_fast_launch_runs_what_the_ordinary_launch_runs(monkeypatch):
    """Pixel attention forward and backward with aligned and misaligned token buffers (two specialisations):
    bitwise the results of ``kernel[grid]``."""
    counts = [40, 0, 7, 300, 1, 0, 64] * 20
    q, x, wk, wv, bv, cu, mx, go = make(counts, n_q=64, d=32, f=32, dtype=torch.bfloat16)
    shifted = torch.empty(x.numel() + 1, device=DEVICE, dtype=x.dtype)[1:].view_as(x)  # 2 bytes off alignment
    shifted.copy_(x.detach())
    for tokens in (x.detach(), shifted):
        results = []
        for fast in (True, False):
            monkeypatch.setattr(L, "FAST", fast)
            leaves = [q.detach().clone().requires_grad_(), tokens.detach().requires_grad_(), wk, wv, bv]
            out = pixel_attention(*leaves, cu, mx)
            results.append([out, *torch.autograd.grad(out, leaves[:2], go)])
        assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))
    keys = [k for k in L._CACHE if k[0] is PK._pa_fwd_kernel]
    assert len({k[2] for k in keys}) >= 2  # the misaligned buffer got its own compiled kernel
