"""Spatial-attention backend selection (``HEALDA_SDPA``): the FlashAttention-3 path's layout and its fallbacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from healda_core.model import attention as A


def _bshd_attention(q, k, v):
    """What FlashAttention-3's ``flash_attn_func`` computes, in PyTorch: (n, s, heads, hd) in and out."""
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def _module(seed=0):
    torch.manual_seed(seed)
    return A.MultiHeadSelfAttention(64, 4).to(torch.bfloat16)  # head width 16: one FlashAttention-3 takes


def test_fa3_path_matches_sdpa_path(monkeypatch):
    """With an FA3 function in place (a PyTorch stand-in here), bf16 inference takes the (n, s, heads, hd) route
    with no transposes; its output must equal the SDPA route's."""
    m = _module()
    x = torch.randn(2, 37, 64).to(torch.bfloat16)
    calls = []

    def fake_fa3(q, k, v):
        calls.append((q.shape, v.stride()))
        return _bshd_attention(q, k, v)

    with torch.no_grad():
        ref = m(x)
        monkeypatch.setattr(A, "_FA3_FN", fake_fa3)
        out = m(x)
    assert calls and calls[0][0] == (2, 37, 4, 16)
    assert calls[0][1][-1] == 1 and calls[0][1][1] == 3 * 64  # v is a view into the qkv output, not a copy
    torch.testing.assert_close(out, ref, atol=2e-2, rtol=2e-2)  # bf16 outputs of two summation orders
    assert (out.float() - ref.float()).abs().max() <= 2e-2 * ref.float().abs().max()


def test_fa3_path_not_taken_for_gradients_fp32_or_odd_widths(monkeypatch):
    """The FA3 package is forward-only: training (gradients), non-bf16 inputs and head widths it does not take
    (not a multiple of 8, or above 256) stay on SDPA."""
    m = _module()

    def boom(q, k, v):
        raise AssertionError("FA3 path taken")

    monkeypatch.setattr(A, "_FA3_FN", boom)
    x = torch.randn(1, 9, 64).to(torch.bfloat16)
    m(x).float().sum().backward()  # grad enabled: SDPA
    with torch.no_grad():
        A.MultiHeadSelfAttention(64, 4)(x.float())  # fp32: SDPA
        A.MultiHeadSelfAttention(40, 4).to(torch.bfloat16)(x[..., :40])  # head width 10: FA3 needs a multiple of 8


def test_fa3_requested_on_cpu_falls_back_to_sdpa(monkeypatch):
    """HEALDA_SDPA=fa3 off CUDA changes nothing: same result, FA3 never selected."""
    m = _module()
    x = torch.randn(1, 11, 64).to(torch.bfloat16)
    with torch.no_grad():
        ref = m(x)
        monkeypatch.setenv("HEALDA_SDPA", "fa3")
        with A.sdpa_priority(x):
            assert A._FA3_FN is None
            out = m(x)
    assert torch.equal(out, ref)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the GPU machine)")
def test_gpu_fa3_matches_cudnn_sdpa(monkeypatch):
    """The real FlashAttention-3 forward (optional ``fa3-fwd``) against cuDNN SDPA at the model's head width 96."""
    pytest.importorskip("fa3_fwd_interface")
    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("FlashAttention-3 needs compute capability 9.x")
    torch.manual_seed(0)
    m = A.MultiHeadSelfAttention(1536, 16).cuda().to(torch.bfloat16)
    x = torch.randn(2, 3000, 1536, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        monkeypatch.setenv("HEALDA_SDPA", "cudnn")
        with A.sdpa_priority(x):
            ref = m(x)
        monkeypatch.setenv("HEALDA_SDPA", "fa3")
        with A.sdpa_priority(x):
            assert A._FA3_FN is not None
            out = m(x)
    assert (out.float() - ref.float()).abs().max() <= 2e-2 * ref.float().abs().max()


@pytest.mark.parametrize("fa3", [False, True])
def test_both_paths_trace_in_one_graph(monkeypatch, fa3):
    """The compiled block regions trace the spatial attention: both routes must compile without graph breaks
    (``fullgraph=True``) and take the same route as eager. The FA3 stand-in returns zeros, so its route is
    recognisable (the output is then proj's bias alone)."""
    m = _module()
    x = torch.randn(2, 21, 64).to(torch.bfloat16)
    with torch.no_grad():
        sdpa_out = m(x)
    if fa3:
        monkeypatch.setattr(A, "_FA3_FN", lambda q, k, v: torch.zeros_like(q))
    torch._dynamo.reset()
    compiled = torch.compile(m, backend="eager", fullgraph=True)
    with torch.no_grad():
        out = compiled(x)
        assert torch.equal(out, m(x))
    assert torch.equal(out, sdpa_out) != fa3
    if fa3:
        assert torch.equal(out, m.proj.bias.expand_as(out))


@pytest.mark.parametrize("choice, major, installed, expected", [
    ("auto", 9, True, "fa3"),        # Hopper with the optional package: FlashAttention-3
    ("auto", 9, False, "cudnn"),     # Hopper without it: cuDNN first
    ("auto", 10, True, "cudnn"),     # the fa3-fwd kernels are built for 9.x only
    ("auto", 8, True, "default"),    # Ampere: PyTorch's own order
    ("fa3", 8, True, "cudnn"),
    ("fa3", 9, False, "fa3"),        # asked for: sdpa_priority warns and runs SDPA (cuDNN first)
    ("flash", 9, True, "flash"),
    ("bogus", 9, True, "default"),
])
def test_resolve_sdpa(choice, major, installed, expected):
    asked = []

    def fa3_installed():
        asked.append(1)
        return installed

    assert A.resolve_sdpa(choice, major, fa3_installed) == expected
    if choice != "auto" or major != 9:
        assert not asked  # the package is imported only where auto could pick it


def test_compile_options_follow_healda_compile(monkeypatch):
    from healda_core.model.compile_policy import compile_options, compile_wanted, whole_blocks_wanted

    monkeypatch.setenv("HEALDA_COMPILE", "tuned")
    assert compile_wanted() and compile_options() == {"coordinate_descent_tuning": True} and whole_blocks_wanted()
    for value in ("1", "0"):
        monkeypatch.setenv("HEALDA_COMPILE", value)
        assert compile_options() is None and not whole_blocks_wanted()
    monkeypatch.delenv("HEALDA_COMPILE")
    assert compile_options() is None and not whole_blocks_wanted()


def test_compile_mode_in_words(monkeypatch):
    from healda_core.assimilate import _compile_mode

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.delenv("HEALDA_COMPILE", raising=False)
    assert _compile_mode(cuda) == "block regions from the second forward when >= 16 follow" and _compile_mode(cpu) == "none"
    monkeypatch.setenv("HEALDA_COMPILE", "tuned")
    assert _compile_mode(cuda) == "whole blocks, coordinate-descent tuned" and _compile_mode(cpu) == "none"
    monkeypatch.setenv("HEALDA_COMPILE", "0")
    assert _compile_mode(cuda) == "none"
    monkeypatch.setenv("HEALDA_COMPILE", "1")
    assert _compile_mode(cuda) == "block regions"
