"""Spatial self-attention (per frame, over all pixels) and temporal attention (per pixel, over frames).

ARCHITECTURE §3.6 and §3.8. Spatial attention goes through
``torch.nn.functional.scaled_dot_product_attention`` so GPUs get flash / cuDNN kernels; bf16 inference on
Hopper uses FlashAttention-3's forward kernel instead when the optional ``fa3-fwd`` package is installed
(``HEALDA_SDPA``, :func:`resolve_sdpa`): it takes head width 96 without padding it to 128 and reads q, k, v in
their (sequence, head, channel) layout; anything it cannot take falls back to SDPA.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from healda_core.model.compile_policy import compile_options, compile_wanted
from healda_core.model.embed import apply_rope

_PRIORITIES = {
    "cudnn": ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH"),
    "flash": ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION", "MATH"),
    "fa3": ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH"),  # where FA3 does not apply
}
_FA3_FN = None  # FlashAttention-3's forward while sdpa_priority selects it (global: compiled code guards it)


def resolve_sdpa(choice: str, major: int, fa3_installed) -> str:
    """The backend choice ``fa3``, ``cudnn``, ``flash`` or ``default`` for ``HEALDA_SDPA=choice`` on a CUDA GPU
    of compute capability ``major``.x; ``fa3_installed()`` says whether FlashAttention-3 imports.

    ``auto``: FlashAttention-3 on Hopper (9.x) when installed (measured fastest, docs/benchmarks.md), else cuDNN
    first on ≥ 9.0, else PyTorch's order. ``fa3`` off Hopper means cuDNN first; unknown values, PyTorch's order.
    """
    if choice == "auto":
        choice = "fa3" if major == 9 and fa3_installed() else ("cudnn" if major >= 9 else "default")
    if choice == "fa3" and major != 9:
        choice = "cudnn"
    return choice if choice in _PRIORITIES else "default"


def _choice(device: torch.device) -> tuple[str, str]:
    """(``HEALDA_SDPA`` as asked, the backend choice on this CUDA ``device``); ``fa3`` only when it imports."""
    requested = os.environ.get("HEALDA_SDPA", "auto").strip().lower()
    choice = resolve_sdpa(requested, torch.cuda.get_device_capability(device)[0], lambda: _fa3_func() is not None)
    return requested, ("cudnn" if choice == "fa3" and _fa3_func() is None else choice)


def spatial_attention_backend(device: torch.device) -> str:
    """What bf16 inference on ``device`` runs the spatial attention on, in words (for logs): FlashAttention-3,
    cuDNN first, FlashAttention-2 first, or PyTorch's choice."""
    choice = _choice(device)[1] if device.type == "cuda" else "default"
    return {"fa3": "FlashAttention-3", "cudnn": "SDPA, cuDNN first", "flash": "SDPA, FlashAttention-2 first"}.get(
        choice, "PyTorch SDPA")


@contextlib.contextmanager
def sdpa_priority(x: Tensor) -> Iterator[None]:
    """Context that chooses the spatial-attention kernels for tensors like ``x`` (``HEALDA_SDPA``, see
    :func:`resolve_sdpa`). With ``fa3``, bf16 inference runs FlashAttention-3's forward (the optional
    ``fa3-fwd`` package) and everything else (gradients, fp32) cuDNN first. Backends that cannot take an input
    are skipped by PyTorch."""
    global _FA3_FN
    if not x.is_cuda:
        yield
        return
    requested, choice = _choice(x.device)
    if requested == "fa3" and _fa3_func() is None:
        _warn_fa3_missing()
    if choice == "default":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    prev = _FA3_FN
    if choice == "fa3":
        _FA3_FN = _fa3_func()
    try:
        with sdpa_kernel([getattr(SDPBackend, n) for n in _PRIORITIES[choice]], set_priority=True):
            yield
    finally:
        _FA3_FN = prev


@functools.lru_cache(maxsize=1)
def _fa3_func():
    """FlashAttention-3's forward (``fa3_fwd_interface.flash_attn_func``), or None when it does not import."""
    try:
        from fa3_fwd_interface import flash_attn_func
    except Exception as exc:  # noqa: BLE001 - not installed, or built for another torch/CUDA: SDPA instead
        _FA3_ERROR.append(f"{type(exc).__name__}: {exc}")
        return None
    return flash_attn_func


_FA3_ERROR: list[str] = []


@functools.lru_cache(maxsize=1)
def _warn_fa3_missing() -> None:
    warnings.warn(f"HEALDA_SDPA=fa3: FlashAttention-3 unavailable ({_FA3_ERROR[-1] if _FA3_ERROR else '?'}); "
                  "using SDPA", stacklevel=4)


class RmsNorm(nn.Module):
    """Parameter-free RMSNorm over the last axis: ``x · rsqrt(mean(x²) + eps)``."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (self.dim,), eps=self.eps)


def _qk_norm(kind: str | None, head_dim: int, affine: bool) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "RMSNorm":
        if affine:
            raise ValueError("qk_norm_affine=True is not supported for RMSNorm (the reference has none)")
        return RmsNorm(head_dim, eps=1e-6)
    if kind == "LayerNorm":
        return nn.LayerNorm(head_dim, elementwise_affine=affine)
    raise ValueError(f"qk_norm_type must be 'RMSNorm', 'LayerNorm' or None, got {kind!r}")


class MultiHeadSelfAttention(nn.Module):
    """Full self-attention over the sequence axis with q/k normalisation (timm ``Attention`` layout:
    ``qkv`` output channels ``[q | k | v]``, head-major)."""

    def __init__(self, dim: int, num_heads: int, qk_norm_type: str | None = "RMSNorm", qk_norm_affine: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden_size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.fa3_width = self.head_dim % 8 == 0 and self.head_dim <= 256  # what FlashAttention-3 takes
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.q_norm = _qk_norm(qk_norm_type, self.head_dim, qk_norm_affine)
        self.k_norm = _qk_norm(qk_norm_type, self.head_dim, qk_norm_affine)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Float[Tensor, "n s d"]) -> Float[Tensor, "n s d"]:
        n, s, d = x.shape
        qkv = self.qkv(x).view(n, s, 3, self.num_heads, self.head_dim)
        fa3 = _FA3_FN
        if fa3 is not None and qkv.dtype == torch.bfloat16 and not torch.is_grad_enabled() and self.fa3_width:
            q, k, v = qkv.unbind(2)  # (n, s, heads, hd) views: no transposes, v not copied
            q, k = self.q_norm(q).to(v.dtype), self.k_norm(k).to(v.dtype)
            return self.proj(fa3(q, k, v).reshape(n, s, d))
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q).to(v.dtype).contiguous(), self.k_norm(k).to(v.dtype).contiguous()
        if torch.compiler.is_compiling():  # backend order comes from VideoDiT.forward's context at trace time
            o = F.scaled_dot_product_attention(q, k, v.contiguous())
        else:  # also here, so a checkpoint recomputation picks the same backend as the forward
            with sdpa_priority(q):
                o = F.scaled_dot_product_attention(q, k, v.contiguous())
        return self.proj(o.transpose(1, 2).reshape(n, s, d))


class SpatialSelfAttention(nn.Module):
    """Wrapper matching the reference key layout ``attention.attn_op.{qkv,proj}``."""

    def __init__(self, dim: int, num_heads: int, qk_norm_type: str | None = "RMSNorm", qk_norm_affine: bool = False):
        super().__init__()
        self.attn_op = MultiHeadSelfAttention(dim, num_heads, qk_norm_type, qk_norm_affine)

    def forward(self, x: Float[Tensor, "n s d"]) -> Float[Tensor, "n s d"]:
        return self.attn_op(x)


class TemporalAttention(nn.Module):
    """Causal attention along frames, independently per pixel and head.

    Linear (default): ``out_q = proj(Σ_{k≤q} (RoPE(q_q)·RoPE(k_k)/√hd) · v_k)`` — no softmax, no
    normalisation; masked weights are 0. Softmax variant: masked logits are −inf. A ``causal_window``
    w keeps frames ``q−w+1 … q``.
    """

    def __init__(self, *, hidden_size: int, num_heads: int, use_rope: bool = True, is_causal: bool = False,
                 linear_attention: bool = True, causal_window: int | None = None):
        super().__init__()
        if causal_window is not None and not is_causal:
            raise ValueError("temporal causal_window requires is_causal=True")
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.use_rope, self.is_causal = use_rope, is_causal
        self.linear_attention, self.causal_window = linear_attention, causal_window
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def mask(self, t: int, device: torch.device) -> Tensor | None:
        """(T_q, T_k) bool, True where attention is allowed; None when nothing is masked."""
        if not self.is_causal:
            return None
        q = torch.arange(t, device=device)[:, None]
        k = torch.arange(t, device=device)[None, :]
        allowed = k <= q
        if self.causal_window is not None:
            allowed = allowed & (k > q - self.causal_window)
        return allowed

    def forward(self, z: Float[Tensor, "b t x d"], rope_cos: Tensor | None = None,
                rope_sin: Tensor | None = None) -> Float[Tensor, "b t x d"]:
        b, t, x, d = z.shape
        q, k, v = self.qkv(z).view(b, t, x, 3, self.num_heads, self.head_dim).unbind(3)
        if self.use_rope and (rope_cos is None or rope_sin is None):
            raise ValueError("TemporalAttention with use_rope=True needs rope_cos and rope_sin")
        allowed = self.mask(t, z.device)
        core = _compiled_core() if z.is_cuda and _compile_enabled() else _temporal_core
        out = core(q, k, v, rope_cos if self.use_rope else None, rope_sin if self.use_rope else None, allowed,
                   self.linear_attention, 1.0 / math.sqrt(self.head_dim))
        return self.proj(out.reshape(b, t, x, d))


def _temporal_core(q: Tensor, k: Tensor, v: Tensor, cos: Tensor | None, sin: Tensor | None,
                   allowed: Tensor | None, linear: bool, scale: float) -> Tensor:
    """(B, T, X, H, hd) q, k, v → (B, T, X, H, hd): RoPE, scaled scores over frames, mask, weighted sum."""
    if cos is not None:
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    scores = torch.einsum("bqxhc,bkxhc->bxhqk", q, k) * scale
    if linear:
        if allowed is not None:
            scores = scores * allowed.to(scores.dtype)
    else:
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        scores = scores.softmax(dim=-1)
    return torch.einsum("bxhqk,bkxhc->bqxhc", scores, v)


def _compile_enabled() -> bool:
    return compile_wanted() and not torch.compiler.is_compiling()


@functools.lru_cache(maxsize=1)
def _compiled_core():
    """``torch.compile`` of :func:`_temporal_core` (fuses RoPE, scores and the weighted sum on GPUs, as the
    reference does); ``HEALDA_COMPILE=0`` keeps it eager."""
    return torch.compile(_temporal_core, dynamic=False, options=compile_options())
