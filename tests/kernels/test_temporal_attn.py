"""Fused temporal-attention kernel vs the PyTorch path (``attention._temporal_core``)."""

from __future__ import annotations

import math

import pytest
import torch

from healda_core.kernels.temporal_attn import temporal_attention
from healda_core.model.attention import TemporalAttention, _temporal_core
from healda_core.model.embed import RotaryEmbedding1DTables
from tests.kernels.conftest import DEVICE, rel_err


def torch_path(qkv, heads, rope, causal, window, linear, dtype=torch.float32):
    b, t, x, d3 = qkv.shape
    hd = d3 // 3 // heads
    q, k, v = qkv.to(dtype).view(b, t, x, 3, heads, hd).unbind(3)
    tab = RotaryEmbedding1DTables(hd, 16, 100.0).to(qkv.device) if rope else None
    cos, sin = tab(t) if rope else (None, None)
    allowed = TemporalAttention(hidden_size=heads * hd, num_heads=heads, is_causal=causal,
                                causal_window=window).mask(t, qkv.device)
    out = _temporal_core(q, k, v, cos, sin, allowed, linear, 1 / math.sqrt(hd))
    return out.reshape(b, t, x, heads * hd), cos, sin


CASES = {
    "model_like": dict(t=8, heads=4, hd=96, rope=True, causal=True, window=None, linear=True),
    "softmax_window": dict(t=8, heads=2, hd=8, rope=True, causal=True, window=3, linear=False),
    "odd_sizes": dict(t=5, heads=3, hd=6, rope=True, causal=False, window=None, linear=True),
    "no_rope_odd_hd": dict(t=3, heads=1, hd=5, rope=False, causal=True, window=None, linear=False),
    "softmax_full": dict(t=6, heads=2, hd=16, rope=False, causal=False, window=None, linear=False),
}


@pytest.mark.parametrize("name", CASES)
def test_matches_torch_path_fp32(name):
    c = CASES[name]
    torch.manual_seed(0)
    qkv = torch.randn(2, c["t"], 7, 3 * c["heads"] * c["hd"], device=DEVICE)
    ref, cos, sin = torch_path(qkv, c["heads"], c["rope"], c["causal"], c["window"], c["linear"])
    out = temporal_attention(qkv, cos, sin, c["heads"], c["causal"], c["window"] or 0, c["linear"],
                             1 / math.sqrt(c["hd"]))
    assert out.shape == ref.shape and out.dtype == qkv.dtype
    assert rel_err(out, ref) <= 1e-5, rel_err(out, ref)


def test_bf16_within_bf16_tolerance():
    """bf16 inputs: against fp32 maths on the same (bf16) values, no worse than the PyTorch path run in bf16."""
    torch.manual_seed(1)
    qkv = torch.randn(1, 8, 5, 3 * 2 * 32, device=DEVICE).bfloat16()
    ref, cos, sin = torch_path(qkv.float(), 2, True, True, None, True)
    out = temporal_attention(qkv, cos, sin, 2, True, 0, True, 1 / math.sqrt(32))
    plain, _, _ = torch_path(qkv, 2, True, True, None, True, dtype=torch.bfloat16)
    assert out.dtype == torch.bfloat16
    # the output's bf16 rounding only: one ulp (2^-7), as the CPU interpreter truncates fp32 → bf16
    assert rel_err(out.float(), ref) <= 2 ** -7
    if DEVICE.type == "cuda":  # round-to-nearest there: closer to fp32 maths than the bf16 PyTorch path
        assert rel_err(out.float(), ref) < rel_err(plain.float(), ref)


def test_module_dispatches_under_no_grad(monkeypatch):
    monkeypatch.setenv("HEALDA_COMPILE", "0")  # the compiled core would not call the patched function below
    torch.manual_seed(2)
    m = TemporalAttention(hidden_size=24, num_heads=3, is_causal=True).to(DEVICE)
    z = torch.randn(1, 4, 6, 24, device=DEVICE)
    cos, sin = RotaryEmbedding1DTables(8, 16, 100.0).to(DEVICE)(4)
    with torch.no_grad():
        fused = m(z, rope_cos=cos, rope_sin=sin)
        monkeypatch.setenv("HEALDA_KERNELS", "off")
        plain = m(z, rope_cos=cos, rope_sin=sin)
    assert rel_err(fused, plain) <= 1e-5
    monkeypatch.setenv("HEALDA_KERNELS", "force")
    calls = []
    monkeypatch.setattr("healda_core.model.attention._temporal_core", lambda *a: calls.append(1) or _temporal_core(*a))
    with torch.no_grad():
        m(z, rope_cos=cos, rope_sin=sin)
    assert not calls  # the kernel ran, not the PyTorch core
    out = m(z, rope_cos=cos, rope_sin=sin)  # autograd on: PyTorch path (the kernel has no backward)
    assert calls and out.requires_grad


def test_opcheck():
    qkv = torch.randn(1, 4, 3, 3 * 2 * 8, device=DEVICE)
    cos, sin = RotaryEmbedding1DTables(8, 16, 100.0).to(DEVICE)(4)
    torch.library.opcheck(temporal_attention, (qkv, cos, sin, 2, True, 0, True, 0.3),
                          test_utils=("test_schema", "test_faketensor"))
