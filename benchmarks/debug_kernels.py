"""Device debugging helper: run one small kernel case (used under compute-sanitizer). Not a benchmark."""

from __future__ import annotations

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
case = sys.argv[1]
dev = "cuda"
if case.startswith("film"):
    from healda_core.kernels.film_op import film_tokenize
    from healda_core.model.film import ObsTokenizerFiLM

    dims = {"film24": (50, 24, (4, 16, 8), 40), "film16": (12, 16, (4, 4, 4), None),
            "film32": (50, 32, (4, 16, 8), 64)}[case]
    m = ObsTokenizerFiLM(dims[0], dims[1], 32, *dims[2], True, dims[3]).to(dev)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 150
    obs, md = torch.randn(n, device=dev), torch.randn(n, dims[0], device=dev)
    ids = [torch.randint(0, 32, (n,), device=dev) for _ in range(3)]
    out = film_tokenize(m, obs, md, *ids)
    torch.cuda.synchronize()
    print("fwd ok", float((out - m.forward_torch(obs, md, *ids)).abs().max()), flush=True)
    g = torch.autograd.grad(out.sum(), list(m.parameters()))
    torch.cuda.synchronize()
    print("bwd ok", flush=True)
else:
    from healda_core.kernels.pixel_attn_op import pixel_attention
    from healda_core.obs.context import counts_to_cu_seqlens

    p, n = {"pa_small": (7, 0), "pa_mid": (4096, 300_000)}[case]
    g = torch.Generator().manual_seed(0)
    counts = torch.tensor([0, 1, 5, 0, 12, 3, 70]) if p == 7 else torch.randint(0, 2 * n // p, (p,), generator=g)
    cu = counts_to_cu_seqlens(counts).to(dev)
    dt = torch.bfloat16 if "bf16" in sys.argv else torch.float32
    q = torch.randn(p, 64, 32, device=dev, dtype=dt, requires_grad=True)
    x = torch.randn(int(counts.sum()), 32, device=dev, dtype=dt, requires_grad=True)
    w = (torch.randn(64, 32, device=dev) / 6).requires_grad_()
    out = pixel_attention(q, x, w, w, None, cu, int(counts.max()), 1 / math.sqrt(32))
    torch.cuda.synchronize()
    print("fwd ok", flush=True)
    gr = torch.autograd.grad(out, [q, x, w], torch.randn_like(out))
    torch.cuda.synchronize()
    print("bwd ok", flush=True)
