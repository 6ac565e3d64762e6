"""One call each of the pixel-attention forward (inference) and the FiLM tokenizer forward+backward on the issue
workload (10 M tokens, bf16), for Nsight Compute: ``ncu -k regex:_pa_fwd_kernel -c 1 python benchmarks/ncu_probe.py``.
Each kernel runs twice (compile, then the profiled launch)."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HEALDA_AUTOTUNE", "off")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from healda_core.bench.kernels import FILM, film_inputs, pa_inputs
from healda_core.kernels.pixel_attn_op import pixel_attention
from healda_core.model.film import ObsTokenizerFiLM

ops = sys.argv[1].split(",") if len(sys.argv) > 1 else ["pa", "film"]
if "pa" in ops:
    inp = pa_inputs(10_000_000)
    with torch.no_grad():
        for _ in range(2):
            pixel_attention(inp["q"], inp["tokens"], inp["wk"], inp["wv"], inp["bv"], inp["cu"], inp["maxlen"], None)
    del inp
if "film" in ops:
    x = film_inputs(10_000_000)
    mod = ObsTokenizerFiLM(**FILM).cuda()
    args = [x[k] for k in ("obs", "float_metadata", "obs_type", "channel", "platform")]
    for _ in range(2):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = mod(*args)
        torch.autograd.grad(out, list(mod.parameters()), x["dout"].to(out.dtype))
torch.cuda.synchronize()
print("probe done")
