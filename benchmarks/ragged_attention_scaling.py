"""Scaling of the vectorised PyTorch pixel cross-attention with the number of observation tokens N.

Default HealDA head layout (n_q=64, n_kv=2, d=32, F=32) over P = 98,304 pixels (B=1, T=8, level 5), 35% empty,
lognormal counts. Each N runs in a fresh subprocess so peak RSS is per size. Prints one JSON line per N.

    python benchmarks/ragged_attention_scaling.py --n 100000 1000000 [--backward]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def workload(n: int, p: int = 98_304, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    w = torch.distributions.LogNormal(0.0, 1.0).sample((p,))
    w[torch.randperm(p, generator=g)[: int(0.35 * p)]] = 0
    counts = torch.bincount(torch.multinomial(w, n, replacement=True, generator=g), minlength=p)
    cu = torch.zeros(p + 1, dtype=torch.int32)
    cu[1:] = counts.cumsum(0)
    q = torch.randn(p, 64, 32, generator=g)
    tok = torch.randn(n, 32, generator=g)
    wk, wv, bv = torch.randn(64, 32, generator=g) / 6, torch.randn(64, 32, generator=g) / 6, torch.randn(64, generator=g)
    return q, tok, wk, wv, bv, cu


def one(n: int, backward: bool) -> dict:
    import torch

    from healda_core.model.ragged import ragged_attention_torch

    torch.manual_seed(0)
    q, tok, wk, wv, bv, cu = workload(n)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if backward:
        for t in (q, tok, wk, wv, bv):
            t.requires_grad_()
    t0 = time.perf_counter()
    out = ragged_attention_torch(q, tok, wk, wv, bv, cu, 32 ** -0.5)
    t1 = time.perf_counter()
    if backward:
        out.backward(torch.ones_like(out))
    t2 = time.perf_counter()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n_tokens": n, "pixels": q.shape[0], "forward_s": round(t1 - t0, 3),
            "backward_s": round(t2 - t1, 3) if backward else None,
            "peak_rss_gib": round(rss1 / 2**20, 3), "rss_growth_gib": round((rss1 - rss0) / 2**20, 3),
            "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one is not None:
        print(json.dumps(one(a.one, a.backward)))
        return
    for n in a.n:
        cmd = [sys.executable, __file__, "--one", str(n)] + (["--backward"] if a.backward else [])
        print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
