#!/bin/bash
# Device call (session 10, #4): the same-process comparison with the reference on this session's code (FiLM at 4
# warps / 64 rows with per-tile atomic weight gradients, pixel-attention backward with per-pixel atomic weight
# gradients, forward kernels launched before autograd's bookkeeping). Carry .whl, .whl_ref.
source benchmarks/gpu_setup.sh reference
timeout 450 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
