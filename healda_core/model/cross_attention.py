"""``PixelCrossAttention``: each backbone pixel attends to its own observation tokens (ARCHITECTURE §3.7)."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from healda_core.model.ragged import pixel_attention


class PixelCrossAttention(nn.Module):
    """Ragged grouped-query cross-attention from pixels (queries) to observation tokens (keys/values).

    Args:
        hidden_size: D, width of the pixel states.
        token_dim: F, width of the observation tokens.
        n_q_heads, n_kv_heads: query and key/value heads; ``n_q_heads % n_kv_heads == 0``. Query heads
            are grouped contiguously: heads ``[j·g, (j+1)·g)`` use kv head j (g = n_q/n_kv).
        d_head: head width d. use_proj_bias: bias on q, v and out projections (k never has one).

    Shapes: hidden (B, T, X', D); tokens (N, F); cu_seqlens_k (B·T·X' + 1,) int32 → (B, T, X', D).
    Pixels without observations get ``out_proj.bias``.
    """

    def __init__(self, hidden_size: int, token_dim: int, n_q_heads: int, n_kv_heads: int, d_head: int,
                 use_proj_bias: bool = False):
        super().__init__()
        if n_q_heads <= 0 or n_kv_heads <= 0 or d_head <= 0:
            raise ValueError("n_q_heads, n_kv_heads and d_head must be positive")
        if n_q_heads % n_kv_heads:
            raise ValueError(f"n_q_heads ({n_q_heads}) must be divisible by n_kv_heads ({n_kv_heads})")
        self.hidden_size, self.token_dim = hidden_size, token_dim
        self.n_q_heads, self.n_kv_heads, self.d_head = n_q_heads, n_kv_heads, d_head
        self.attn_dim = n_q_heads * d_head
        self.scale = 1.0 / math.sqrt(d_head)
        self.q_proj = nn.Linear(hidden_size, self.attn_dim, bias=use_proj_bias)
        self.k_proj = nn.Linear(token_dim, n_kv_heads * d_head, bias=False)
        self.v_proj = nn.Linear(token_dim, n_kv_heads * d_head, bias=use_proj_bias)
        self.out_proj = nn.Linear(self.attn_dim, hidden_size, bias=use_proj_bias)

    def _check(self, hidden: Tensor, tokens: Tensor | None, cu_seqlens_k: Tensor) -> None:
        if tokens is None:
            raise ValueError("PixelCrossAttention needs tokens")
        if hidden.ndim != 4 or hidden.shape[-1] != self.hidden_size:
            raise ValueError(f"hidden must be (B, T, X, {self.hidden_size}), got {tuple(hidden.shape)}")
        p = hidden.shape[0] * hidden.shape[1] * hidden.shape[2]
        if cu_seqlens_k.shape[0] != p + 1:
            raise ValueError(f"cu_seqlens_k has {cu_seqlens_k.shape[0]} entries, expected B*T*X+1 = {p + 1}")

    def forward(self, hidden: Float[Tensor, "b t x d"], tokens: Float[Tensor, "n f"],
                cu_seqlens_k: Int[Tensor, " p1"], max_seqlen_k: int, group_map=None) -> Float[Tensor, "b t x d"]:
        if not torch.compiler.is_compiling():
            self._check(hidden, tokens, cu_seqlens_k)
        b, t, x, d = hidden.shape
        flat = hidden.reshape(b * t * x, d)
        if tokens.shape[0] == 0:
            zeros = flat.new_zeros(flat.shape[0], self.attn_dim)
            out = self.out_proj(zeros)
            # keep every parameter (and tokens) in the graph with a zero gradient (DDP safety)
            anchor = sum(p.sum() for p in self.parameters()) + tokens.sum()
            return (out + 0.0 * anchor).view(b, t, x, d)
        if torch.compiler.is_compiling():
            max_seqlen_k = 0  # informational only; a traced int would recompile the graph for every batch
        q = self.q_proj(flat).view(-1, self.n_q_heads, self.d_head)
        attn = pixel_attention(q, tokens, self.k_proj.weight, self.v_proj.weight, self.v_proj.bias,
                               cu_seqlens_k, max_seqlen_k, self.scale, group_map)
        return self.out_proj(attn.reshape(-1, self.attn_dim).to(q.dtype)).view(b, t, x, d)
