"""FP8 GEMMs on CUDA (compute capability >= 8.9): ``torch._scaled_mm`` against the reference arithmetic, and the
fixture model's forward with its blocks' GEMMs in FP8, eager and compiled."""

from __future__ import annotations

import copy

import pytest
import torch

from healda_core.model.compile_policy import inference_compile
from healda_core.model.fp8 import FP8Linear, fp8_linear_reference, quantize_rows, swap_linears, to_fp8

from ..model.helpers import fixture_context, fixture_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the GPU machine)"),
    pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability() < (8, 9),
                       reason="FP8 GEMMs need compute capability >= 8.9"),
]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).square().mean().sqrt() / b.float().square().mean().sqrt()).item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_scaled_mm_matches_the_reference_arithmetic(dtype):
    """Same quantised operands bit for bit; the GEMM differs from the float32 reference only by the bf16
    roundings in the epilogue (bias, the scaled product, the output: each ≤ 2⁻⁹ relative) and the fp32
    accumulation order: |y − ref| ≤ 2⁻⁷ (|ref| + |b|) elementwise leaves a margin over those; a wrong scale,
    layout or operand would be off by O(|ref|)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(256, 384)
    with torch.no_grad():
        lin.weight.mul_(torch.linspace(0.01, 10, 384)[:, None])
        lin.bias.normal_()
    x = (torch.randn(300, 256) * torch.linspace(0.1, 5, 300)[:, None]).to(dtype)  # M = 300: not a multiple of 16
    f_cpu = FP8Linear(lin)
    f = FP8Linear(copy.deepcopy(lin)).cuda()  # .cuda() moves the wrapped parameters in place: a copy
    assert torch.equal(f.weight_fp8.cpu().view(torch.uint8), f_cpu.weight_fp8.view(torch.uint8))
    q_gpu, s_gpu = quantize_rows(x.cuda())
    q_cpu, s_cpu = quantize_rows(x)
    assert torch.equal(q_gpu.cpu().view(torch.uint8), q_cpu.view(torch.uint8)) and torch.equal(s_gpu.cpu(), s_cpu)
    with torch.no_grad():
        y = f(x.cuda())
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y_amp = f(x.cuda())
    ref = fp8_linear_reference(x, f_cpu.weight_fp8, f_cpu.weight_scale, lin.bias.detach())
    assert y.dtype == dtype and y_amp.dtype == torch.bfloat16 and y.shape == (300, 384)
    bound = 2**-7 * (ref.abs() + lin.bias.detach().abs()) + 1e-6 * ref.abs().max()
    assert ((y.cpu().float() - ref).abs() <= bound).all()
    assert ((y_amp.cpu().float() - ref).abs() <= bound).all()


def _fixture_inputs(fx):
    inp = fx["inputs"]
    return [inp[k].cuda() for k in ("x", "t", "second_of_day", "day_of_year")]


def test_fixture_forward_in_fp8_is_close_to_bf16_and_fp32(fixture_small):
    """The fixture model (2 blocks, 12 FP8 linears): the FP8 forward stays within 4 % relative RMS of the fp32
    output (the CPU emulation of the same arithmetic measures 1.7 %, bf16 autocast 0.5 %), and it differs from
    the bf16 forward (the FP8 path is taken)."""
    model = fixture_model(fixture_small).cuda()
    ctx = fixture_context(fixture_small).to("cuda")
    args = _fixture_inputs(fixture_small)
    with torch.no_grad(), inference_compile(False):
        out32 = model(*args, ctx)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out16 = model(*args, ctx)
        to_fp8(model)
        assert sum(isinstance(m, FP8Linear) for m in model.modules()) == 12
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out8 = model(*args, ctx)
    assert torch.isfinite(out8).all()
    assert _rel(out8, out32) < 4e-2 and _rel(out8, out16) < 4e-2
    assert _rel(out8, out16) > 1e-3


@pytest.mark.parametrize("mode", ["regions", "blocks"])
def test_compiled_fp8_forward_matches_eager(fixture_small, mode):
    """``torch.compile`` traces the FP8 linears (the quantisation fuses into the regions, ``_scaled_mm`` stays an
    extern GEMM): compiled and eager FP8 forwards agree within bf16 rounding (1 % relative RMS)."""
    torch._dynamo.reset()
    model = to_fp8(fixture_model(fixture_small).cuda())
    ctx = fixture_context(fixture_small).to("cuda")
    args = _fixture_inputs(fixture_small)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        with inference_compile(False):
            eager = model(*args, ctx)
        if mode == "blocks":
            model.dit.compile_blocks()
        with inference_compile(True):
            compiled = model(*args, ctx)
    assert _rel(compiled, eager) < 1e-2


def test_fp8_forward_has_no_host_device_sync(fixture_small, monkeypatch):
    monkeypatch.setenv("HEALDA_KERNELS", "off")
    model = fixture_model(fixture_small).cuda()
    swap_linears(model)
    ctx = fixture_context(fixture_small).to("cuda")
    args = _fixture_inputs(fixture_small)
    with torch.no_grad(), inference_compile(False), torch.autocast("cuda", dtype=torch.bfloat16):
        model(*args, ctx)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            model(*args, ctx)
        finally:
            torch.cuda.set_sync_debug_mode("default")
