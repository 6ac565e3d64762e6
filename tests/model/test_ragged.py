"""Vectorised ragged pixel cross-attention vs a naive per-pixel loop (written independently here)."""

from __future__ import annotations

import math

import pytest
import torch

from healda_core import PixelCrossAttention
from healda_core.model.ragged import ragged_attention_torch
from healda_core.obs import counts_to_cu_seqlens


def naive(q, tokens, wk, wv, bv, counts, n_kv):
    p, n_q, d = q.shape
    g = n_q // n_kv
    out = torch.zeros_like(q)
    start = 0
    for i in range(p):
        m = int(counts[i])
        tok = tokens[start:start + m]
        start += m
        if m == 0:
            continue
        k = (tok @ wk.T).view(m, n_kv, d)
        v = (tok @ wv.T + (bv if bv is not None else 0)).view(m, n_kv, d)
        rows = []
        for h in range(n_q):
            w = torch.softmax(k[:, h // g] @ q[i, h] / math.sqrt(d), dim=0)
            rows.append(w @ v[:, h // g])
        out[i] = torch.stack(rows)
    return out


def make(counts, n_q=8, n_kv=2, d=4, f=6, dtype=torch.float64, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor(counts)
    n = int(counts.sum())
    mk = lambda *s: torch.randn(*s, generator=g, dtype=dtype).requires_grad_()
    q, tok = mk(len(counts), n_q, d), mk(n, f)
    wk, wv = mk(n_kv * d, f), mk(n_kv * d, f)
    bv = mk(n_kv * d) if bias else None
    return q, tok, wk, wv, bv, counts, counts_to_cu_seqlens(counts)


CASES = {
    "mixed": [0, 1, 5, 0, 12, 3, 7],
    "all_empty": [0, 0, 0],
    "one_token": [0, 1, 0],
    "giant_pixel": [0, 3000, 0, 2],
    "non_pow2": [3, 5, 6, 7, 9, 11, 13],
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_and_gradients_match_naive(name, bias):
    q, tok, wk, wv, bv, counts, cu = make(CASES[name], bias=bias)
    params = [t for t in (q, tok, wk, wv, bv) if t is not None]
    out = ragged_attention_torch(q, tok, wk, wv, bv, cu, 1 / math.sqrt(q.shape[-1]))
    ref = naive(q, tok, wk, wv, bv, counts, 2)
    assert torch.allclose(out, ref, atol=1e-12, rtol=1e-10)
    empty = counts == 0
    assert torch.all(out[empty] == 0)
    go = torch.randn_like(out)
    g1 = torch.autograd.grad(out, params, go, allow_unused=True)
    g2 = torch.autograd.grad(ref, params, go, allow_unused=True) if ref.requires_grad else [None] * len(params)
    for a, b in zip(g1, g2):
        b = torch.zeros_like(a) if b is None else b
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-8)


def test_gradcheck():
    q, tok, wk, wv, bv, _, cu = make([2, 0, 3, 1], n_q=4, n_kv=1, d=3, f=5)
    fn = lambda *a: ragged_attention_torch(*a, cu, 0.7)
    assert torch.autograd.gradcheck(fn, (q, tok, wk, wv, bv))


@pytest.mark.parametrize("n_q, n_kv", [(8, 1), (8, 8), (6, 3), (12, 4)])
def test_any_kv_head_count_dividing_q_heads(n_q, n_kv):
    q, tok, wk, wv, bv, counts, cu = make([4, 0, 2, 9], n_q=n_q, n_kv=n_kv)
    out = ragged_attention_torch(q, tok, wk, wv, bv, cu, 0.5)
    q_scaled = q * (0.5 * math.sqrt(q.shape[-1]))
    assert torch.allclose(out, naive(q_scaled, tok, wk, wv, bv, counts, n_kv), atol=1e-12)


def test_chunked_path_equals_unchunked(monkeypatch):
    from healda_core.model import ragged

    q, tok, wk, wv, bv, _, cu = make([100, 0, 37, 250, 1], n_q=8, n_kv=2, d=4, f=6)
    full = ragged_attention_torch(q, tok, wk, wv, bv, cu, 0.5)
    gfull = torch.autograd.grad(full.square().sum(), (q, tok, wk))
    monkeypatch.setattr(ragged, "_CHUNK_ELEMS", 1)  # chunks of the 256-token minimum
    part = ragged_attention_torch(q, tok, wk, wv, bv, cu, 0.5)
    gpart = torch.autograd.grad(part.square().sum(), (q, tok, wk))
    assert torch.allclose(full, part, atol=1e-12)
    for a, b in zip(gfull, gpart):
        assert torch.allclose(a, b, atol=1e-10)


def test_module_no_tokens_gives_out_bias_and_grads_everywhere():
    mod = PixelCrossAttention(hidden_size=16, token_dim=8, n_q_heads=4, n_kv_heads=2, d_head=4, use_proj_bias=True)
    hidden = torch.randn(1, 2, 3, 16, requires_grad=True)
    tokens = torch.zeros(0, 8, requires_grad=True)
    out = mod(hidden, tokens, torch.zeros(7, dtype=torch.int32), 0)
    assert torch.allclose(out, mod.out_proj.bias.expand_as(out))
    out.sum().backward()
    for name, p in mod.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert tokens.grad is not None


def test_module_empty_pixels_get_out_bias():
    torch.manual_seed(0)
    mod = PixelCrossAttention(hidden_size=16, token_dim=8, n_q_heads=4, n_kv_heads=2, d_head=4, use_proj_bias=True)
    counts = torch.tensor([0, 3, 0, 2, 0, 0])
    out = mod(torch.randn(1, 1, 6, 16), torch.randn(5, 8), counts_to_cu_seqlens(counts), 3)
    assert torch.allclose(out[0, 0, counts == 0], mod.out_proj.bias.expand(4, 16))
    assert not torch.allclose(out[0, 0, 1], mod.out_proj.bias)


def test_bf16_autocast_runs_and_stays_close():
    q, tok, wk, wv, bv, _, cu = make([5, 0, 40, 3], dtype=torch.float32)
    ref = ragged_attention_torch(q, tok, wk, wv, bv, cu, 0.5)
    out = ragged_attention_torch(q.bfloat16(), tok.bfloat16(), wk.bfloat16(), wv.bfloat16(), bv.bfloat16(), cu, 0.5)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() <= 5e-2 * ref.abs().max()
