"""FP8 (e4m3) GEMMs for inference in the transformer blocks (``healda assimilate --fp8``): approximate.

:func:`to_fp8` replaces the large dense linears of every :class:`~healda_core.model.dit.VideoDiTBlock` (spatial
and temporal attention ``qkv``/``proj``, MLP ``layers.0``/``layers.2``) by :class:`FP8Linear`. Embeddings, the
observation tokenizer, the pixel cross-attention (its projections run between the compiled regions, where the
activation quantisation would not fuse), the adaLN modulations (matrix-vector products), the detokenizer and
the norms stay as they are. ``state_dict`` keys and values are unchanged; the FP8 copy of each weight lives in
non-persistent buffers derived from the weight (again after ``load_state_dict`` and ``.to()``).

Arithmetic, for x (M, K) and a weight w (N, K) with bias b::

    s_w[n] = max_k |w[n, k]| · (1/448)     q_w = e4m3(w / s_w)      once (per output channel)
    s_x[m] = max_k |x[m, k]| · (1/448)     q_x = e4m3(x / s_x)      every call (per token)
    y[m, n] = s_x[m] · s_w[n] · Σ_k q_x[m, k] · q_w[n, k] + b[n]

``e4m3`` rounds to the nearest float8_e4m3fn value (3 mantissa bits: relative error ≤ 2⁻⁴ in the normal range
≥ 2⁻⁶, absolute ≤ 2⁻¹⁰ below it, in scaled units), saturating at ±448. On CUDA ``torch._scaled_mm`` computes it
(rowwise scales: scale_a (M, 1), scale_b (1, N), float32; fp32 accumulation, ``use_fast_accum=False``; bias and
output bf16); :func:`fp8_linear_reference` is the same arithmetic in float32 PyTorch, used on the CPU.
"""

from __future__ import annotations

import re

import torch
from jaxtyping import Float
from torch import Tensor, nn

from healda_core.errors import AcceleratorError

E4M3_MAX = 448.0  # largest finite float8_e4m3fn
INV_E4M3_MAX = 1.0 / E4M3_MAX
AMAX_FLOOR = 1e-12  # an all-zero row gets this amax (its scale stays finite, its values 0)
# the linears to_fp8 replaces, by their name in the model
TARGETS = re.compile(r"(^|\.)blocks\.\d+\.(attention\.attn_op\.(qkv|proj)|temporal_attention\.(qkv|proj)"
                     r"|linear\.layers\.[02])$")


def quantize(x: Tensor, scale: Tensor) -> Tensor:
    """``e4m3(x / scale)``: float32 division, saturated at ±448, rounded to nearest float8_e4m3fn."""
    return (x.float() / scale).clamp_(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)


def quantize_rows(x: Float[Tensor, "m k"]) -> tuple[Tensor, Float[Tensor, "m 1"]]:
    """Rowwise quantisation: (q (M, K) float8_e4m3fn, scale (M, 1) float32 = row amax · (1/448))."""
    # |x| and max are exact; a float32 product is correctly rounded on every backend (the division by the Python
    # scalar 448 gave scales that differed between CPU and CUDA on an H100)
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=AMAX_FLOOR) * INV_E4M3_MAX
    return quantize(x, scale), scale


def dequantize(q: Tensor, scale: Tensor) -> Tensor:
    """``q · scale`` in float32."""
    return q.float() * scale


def fp8_linear_reference(x: Float[Tensor, "m k"], w_fp8: Tensor, w_scale: Float[Tensor, "1 n"],
                         bias: Tensor | None) -> Float[Tensor, "m n"]:
    """The FP8 linear in float32 PyTorch: quantise x per row, dequantise both operands, matmul, add bias."""
    q, s = quantize_rows(x)
    y = dequantize(q, s) @ dequantize(w_fp8, w_scale.reshape(-1, 1)).t()
    return y if bias is None else y + bias.float()


def fp8_linear_cuda(x: Float[Tensor, "m k"], w_fp8: Tensor, w_scale: Float[Tensor, "1 n"],
                    bias_bf16: Tensor | None) -> Float[Tensor, "m n"]:
    """The FP8 linear on CUDA through ``torch._scaled_mm`` (bf16 out); K and N multiples of 16."""
    q, s = quantize_rows(x)
    with torch.autocast("cuda", enabled=False):  # the fp8 operands must reach the GEMM as they are
        return torch._scaled_mm(q.contiguous(), w_fp8.t(), scale_a=s, scale_b=w_scale, bias=bias_bf16,
                                out_dtype=torch.bfloat16, use_fast_accum=False)


class FP8Linear(nn.Module):
    """Inference-only stand-in for an ``nn.Linear``: same ``weight``/``bias`` parameters (the same tensors, so
    ``state_dict`` is unchanged), plus non-persistent ``weight_fp8`` (N, K) float8_e4m3fn, ``weight_scale``
    (1, N) float32 and ``bias_bf16`` (N,) buffers. Forward: (…, K) → (…, N) in the autocast dtype (else in the
    input's), through ``torch._scaled_mm`` on CUDA and :func:`fp8_linear_reference` elsewhere."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        for name in ("weight_fp8", "weight_scale", "bias_bf16"):
            self.register_buffer(name, None, persistent=False)
        self.requantize()
        self.register_load_state_dict_post_hook(lambda module, _incompatible: module.requantize())

    @torch.no_grad()
    def requantize(self) -> None:
        """Derive the FP8 weight, its per-output-channel scales and the bf16 bias from the parameters."""
        w = self.weight.detach().float()
        self.weight_scale = (w.abs().amax(dim=1).clamp(min=AMAX_FLOOR) * INV_E4M3_MAX).reshape(1, -1).contiguous()
        self.weight_fp8 = quantize(w, self.weight_scale.reshape(-1, 1)).contiguous()
        self.bias_bf16 = None if self.bias is None else self.bias.detach().to(torch.bfloat16)

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module signature
        super()._apply(fn, recurse)
        self.requantize()  # .to(device / dtype) converted the buffers too: derive them again from the weight
        return self

    def forward(self, x: Float[Tensor, "... k"]) -> Float[Tensor, "... n"]:
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            raise RuntimeError("FP8Linear is inference-only: run it under torch.no_grad() or inference_mode()")
        x2 = x.reshape(-1, self.in_features)
        if x.is_cuda:
            y = fp8_linear_cuda(x2, self.weight_fp8, self.weight_scale, self.bias_bf16)
        else:
            y = fp8_linear_reference(x2, self.weight_fp8, self.weight_scale, self.bias)
        dev = x.device.type
        out = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        return y.to(out).view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, e4m3"


def swap_linears(model: nn.Module) -> list[str]:
    """Replace, in place, every ``nn.Linear`` whose name matches :data:`TARGETS` and whose in/out features are
    multiples of 16 (what ``torch._scaled_mm`` takes; others stay) by an :class:`FP8Linear`, on any device
    (the CPU then runs the reference arithmetic). Returns the replaced names."""
    swapped = []
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            full = f"{parent_name}.{name}" if parent_name else name
            if (type(child) is nn.Linear and TARGETS.search(full) and child.in_features % 16 == 0
                    and child.out_features % 16 == 0):
                setattr(parent, name, FP8Linear(child))
                swapped.append(full)
    return swapped


def fp8_refusal(device_type: str, capability: tuple[int, int] | None = None, name: str = "") -> str | None:
    """Why FP8 GEMMs cannot run on this device (None when they can): CUDA (not ROCm), compute capability ≥ 8.9."""
    if device_type != "cuda":
        return f"FP8 GEMMs (--fp8) need a CUDA GPU of compute capability >= 8.9; the model is on {device_type}"
    if torch.version.hip is not None:
        return "FP8 GEMMs (--fp8) are implemented for NVIDIA GPUs (float8_e4m3fn), not ROCm"
    if capability is None or tuple(capability) < (8, 9):
        cc = "unknown" if capability is None else f"{capability[0]}.{capability[1]}"
        return (f"FP8 GEMMs (--fp8) need compute capability >= 8.9 (Ada, Hopper or newer); "
                f"{name or 'this GPU'} has {cc}")
    return None


def to_fp8(model: nn.Module) -> nn.Module:
    """:func:`swap_linears` on a model on a CUDA GPU of compute capability ≥ 8.9; returns ``model``.

    Raises:
        AcceleratorError (exit 4): the model is not on such a GPU (nothing is changed).
    """
    dev = next(model.parameters()).device
    cap = torch.cuda.get_device_capability(dev) if dev.type == "cuda" else None
    why = fp8_refusal(dev.type, cap, torch.cuda.get_device_name(dev) if dev.type == "cuda" else "")
    if why is not None:
        raise AcceleratorError(why)
    swap_linears(model)
    return model
