#!/bin/bash
# Device call (session 7, #5): FlashAttention-3 with Inductor's coordinate-descent tuning of the fused kernels,
# compiled regions and whole blocks (gpu_session7d/7e without it: 1,008 / 1,001–1,007 ms).
# Carry .whl, .whl_fa3 and .gpu_shared.
source benchmarks/gpu_setup.sh
timeout 420 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path \
  --skip-assimilate \
  --variants "fa3_cd:HEALDA_SDPA=fa3,INDUCTOR_COORDINATE_DESCENT_TUNING=1;fa3_blocks_cd:HEALDA_SDPA=fa3,INDUCTOR_COORDINATE_DESCENT_TUNING=1,COMPILE_BLOCKS=1" \
  --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^(fa3_cd|fa3_blocks_cd) ' "$OUT/forward.log" | cut -c1-300
