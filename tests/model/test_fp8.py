"""FP8 GEMMs (healda_core.model.fp8) on the CPU: quantisation, the reference arithmetic, the module swap, refusals.

The e4m3 expectations are computed independently of the code under test: the 254 finite float8_e4m3fn values are
decoded from their bit patterns and each scaled input is rounded to the nearest of them by search.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from healda_core.errors import AcceleratorError
from healda_core.model.fp8 import (
    E4M3_MAX,
    FP8Linear,
    dequantize,
    fp8_linear_cuda,
    fp8_linear_reference,
    fp8_refusal,
    quantize,
    quantize_rows,
    swap_linears,
    to_fp8,
)

from .helpers import fixture_model, run_fixture


def _e4m3_grid() -> torch.Tensor:
    """The finite float8_e4m3fn values, ascending (float64)."""
    v = torch.arange(256, dtype=torch.int32).to(torch.uint8).view(torch.float8_e4m3fn).double()
    return torch.unique(v[torch.isfinite(v)])


def _nearest_e4m3(v: torch.Tensor) -> torch.Tensor:
    """``v`` (|v| ≤ 448) rounded to the nearest e4m3 value, by search on the value grid (float64)."""
    g = _e4m3_grid()
    i = torch.searchsorted(g, v.double()).clamp(1, len(g) - 1)
    lo, hi = g[i - 1], g[i]
    return torch.where((v - lo).abs() <= (hi - v).abs(), lo, hi)


def _wide_range(m: int, k: int, seed: int = 0) -> torch.Tensor:
    """(m, k) values of random sign over eight decades of magnitude."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(m, k, generator=g) * 2 - 1).sign() * 10 ** (torch.rand(m, k, generator=g) * 8 - 6)


def test_rowwise_scales_are_row_amax_over_448():
    x = torch.tensor([[1.0, -3.0, 2.0, 0.5], [0.0, 0.0, 1e-3, 0.0], [-7.0, 7.0, 1.0, 2.0]])
    q, s = quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and s.dtype == torch.float32 and s.shape == (3, 1)
    amax = torch.tensor([3.0, 1e-3, 7.0])
    assert torch.equal(s.view(-1), amax * torch.tensor(1 / 448))  # a float32 product: the same on every backend
    assert torch.allclose(s.view(-1).double(), amax.double() / 448, rtol=2**-23, atol=0)  # amax / 448 within 1 ulp
    assert torch.equal(q.float().abs().amax(dim=1), torch.full((3,), 448.0))  # each row's amax hits the top


def test_e4m3_round_trip_error_bounds():
    """Scaled values v = x / s round to the nearest e4m3 value: relative error ≤ 2⁻⁴ in the normal range
    (|v| ≥ 2⁻⁶, 3 mantissa bits), absolute ≤ 2⁻¹⁰ (half the subnormal spacing 2⁻⁹) below it."""
    x = _wide_range(64, 512)
    q, s = quantize_rows(x)
    v = x.double() / s.double()
    back = q.double()
    assert torch.equal(back, _nearest_e4m3(v))  # round to nearest, independently
    err = (back - v).abs()
    normal = v.abs() >= 2**-6
    assert normal.sum() > 1000 and (~normal).sum() > 1000
    assert (err[normal] <= 2**-4 * v.abs()[normal]).all()
    assert (err[~normal] <= 2**-10).all()
    assert (err[normal] / v.abs()[normal]).max() > 2**-5  # the bound is the format's, not slack
    assert torch.allclose(dequantize(q, s).double(), back * s.double(), rtol=1e-7, atol=0)


def test_saturation_at_448_and_zero_rows():
    q = quantize(torch.tensor([448.0, 449.0, 1e4, -1e30, 464.0, -448.0]), torch.tensor(1.0)).float()
    assert q.tolist() == [448.0, 448.0, 448.0, -448.0, 448.0, -448.0]
    q, s = quantize_rows(torch.zeros(2, 32))
    assert torch.isfinite(s).all() and (s > 0).all() and torch.equal(q.float(), torch.zeros(2, 32))


def _linear(k: int, n: int, seed: int = 1) -> nn.Linear:
    torch.manual_seed(seed)
    lin = nn.Linear(k, n)
    with torch.no_grad():
        lin.weight.mul_(torch.linspace(0.01, 10, n)[:, None])  # per-channel magnitudes that differ 1000×
        lin.bias.normal_()
    return lin


def test_weight_quantised_per_output_channel():
    lin = _linear(64, 48)
    f = FP8Linear(lin)
    w = lin.weight.detach().double()
    s = w.abs().amax(dim=1, keepdim=True) / 448
    assert f.weight_fp8.dtype == torch.float8_e4m3fn and f.weight_fp8.shape == (48, 64)
    assert f.weight_scale.shape == (1, 48) and f.weight_scale.is_contiguous()
    assert torch.allclose(f.weight_scale.double().view(-1, 1), s, rtol=1e-6, atol=0)
    assert torch.equal(f.weight_fp8.double(), _nearest_e4m3(w / f.weight_scale.double().view(-1, 1)))


def test_reference_equals_dequantised_matmul():
    lin = _linear(96, 80)
    f = FP8Linear(lin)
    x = torch.randn(37, 96) * torch.linspace(0.1, 5, 37)[:, None]
    sx = x.double().abs().amax(dim=1, keepdim=True) / 448
    sw = lin.weight.detach().double().abs().amax(dim=1, keepdim=True) / 448
    xq = _nearest_e4m3(x.double() / sx) * sx
    wq = _nearest_e4m3(lin.weight.detach().double() / sw) * sw
    expected = xq @ wq.T + lin.bias.detach().double()
    y = fp8_linear_reference(x, f.weight_fp8, f.weight_scale, f.bias)
    assert y.dtype == torch.float32
    assert torch.allclose(y.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    exact = x.double() @ lin.weight.detach().double().T + lin.bias.detach().double()
    rel = (y.double() - exact).norm() / exact.norm()
    assert 1e-3 < rel < 2**-4  # approximate, within the e4m3 rounding of both operands


def test_module_forward_on_cpu_is_the_reference_in_the_callers_dtype():
    lin = _linear(32, 16)
    f = FP8Linear(lin)
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        y = f(x)
        assert y.shape == (2, 5, 16) and y.dtype == torch.float32
        assert torch.equal(y, fp8_linear_reference(x.reshape(-1, 32), f.weight_fp8, f.weight_scale,
                                                   f.bias).view(2, 5, 16))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert f(x).dtype == torch.bfloat16
    with pytest.raises(RuntimeError, match="inference-only"):
        f(x)  # autograd on, weight requires grad


def test_swap_keeps_state_dict_keys_and_values(fixture_small):
    model = fixture_model(fixture_small)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = swap_linears(model)
    expected = {f"dit.blocks.{i}.{n}" for i in range(2) for n in (
        "attention.attn_op.qkv", "attention.attn_op.proj", "temporal_attention.qkv", "temporal_attention.proj",
        "linear.layers.0", "linear.layers.2")}
    assert set(names) == expected and len(names) == len(expected)
    assert all(type(model.get_submodule(n)) is FP8Linear for n in names)
    for kept in ("dit.blocks.0.cross_attention.q_proj", "dit.blocks.0.norm1_modulation.modulation.1",
                 "dit.detokenizer.adaptive_modulation.1"):
        assert type(model.get_submodule(kept)) is nn.Linear
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(after[k].dtype == before[k].dtype and torch.equal(after[k], before[k]) for k in before)
    assert swap_linears(model) == []  # nothing left to swap


def test_load_state_dict_and_to_requantise(fixture_small):
    model = fixture_model(fixture_small)
    swap_linears(model)
    f = model.dit.blocks[0].linear.layers[0]
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["dit.blocks.0.linear.layers.0.weight"] *= 2
    old_scale = f.weight_scale.clone()
    model.load_state_dict(sd, strict=True)
    assert torch.allclose(f.weight_scale, 2 * old_scale, rtol=1e-6, atol=0)
    model.to(torch.float64)
    assert f.weight.dtype == torch.float64 and f.weight_fp8.dtype == torch.float8_e4m3fn
    assert f.weight_scale.dtype == torch.float32


def test_fixture_forward_with_fp8_reference_arithmetic(fixture_small):
    """The fixture model with its blocks' GEMMs in FP8 stays within a few % of the fp32 output (approximate:
    measured 1.7 % relative RMS, against 0.5 % for bf16 autocast) and is not identical to it."""
    model = fixture_model(fixture_small)
    ref = fixture_small["output"]
    with torch.no_grad():
        swap_linears(model)
        out = run_fixture(model, fixture_small)
    rel = ((out - ref).square().mean().sqrt() / ref.square().mean().sqrt()).item()
    assert 1e-3 < rel < 4e-2, rel


def test_to_fp8_refuses_on_cpu_and_changes_nothing(fixture_small):
    model = fixture_model(fixture_small)
    with pytest.raises(AcceleratorError, match=r"FP8 GEMMs \(--fp8\) need a CUDA GPU of compute capability "
                                              r">= 8.9; the model is on cpu"):
        to_fp8(model)
    assert not any(isinstance(m, FP8Linear) for m in model.modules())


def test_refusal_by_compute_capability():
    assert fp8_refusal("cuda", (9, 0), "H100") is None
    assert fp8_refusal("cuda", (8, 9), "L4") is None
    assert "8.0" in fp8_refusal("cuda", (8, 0), "NVIDIA A100") and "A100" in fp8_refusal("cuda", (8, 0), "NVIDIA A100")
    assert "7.5" in fp8_refusal("cuda", (7, 5), "T4")
    assert fp8_refusal("mps") is not None


def test_e4m3_max_is_the_format_maximum():
    assert E4M3_MAX == _e4m3_grid().max().item() == torch.finfo(torch.float8_e4m3fn).max


def test_cuda_call_passes_scaled_mm_checks_on_fake_cuda_tensors():
    """``fp8_linear_cuda`` against ``torch._scaled_mm``'s CUDA shape, layout and scale checks (its meta function,
    run on fake CUDA tensors, no GPU needed): row-major activations, column-major weight, (M, 1) and (1, N) fp32
    scales, bf16 bias and output; M = 300 is not a multiple of 16. K = 72 is refused: the checks do run."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(300, 256, device="cuda", dtype=torch.bfloat16)
        w = torch.empty(384, 256, device="cuda", dtype=torch.float8_e4m3fn)
        s = torch.empty(1, 384, device="cuda")
        b = torch.empty(384, device="cuda", dtype=torch.bfloat16)
        y = fp8_linear_cuda(x, w, s, b)
        assert y.shape == (300, 384) and y.dtype == torch.bfloat16 and y.device.type == "cuda"
        with pytest.raises(RuntimeError, match="divisible by 16"):
            fp8_linear_cuda(torch.empty(300, 72, device="cuda"), torch.empty(384, 72, device="cuda").to(
                torch.float8_e4m3fn), s, b)
