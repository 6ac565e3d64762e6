#!/bin/bash
# Device call (session 7, #5): where the observation path's extra ~34 ms under whole-block compilation goes
# (gpu_session7d: fa3 compiled regions obs path 40.0 ms, fa3 whole blocks 73.8 ms): top kernels of one forward of
# each. Carry .whl, .whl_fa3 and .gpu_shared.
source benchmarks/gpu_setup.sh
timeout 400 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 1 --iters 3 --skip-torch-path \
  --skip-assimilate --profile --profile-variant fa3,fa3_blocks \
  --variants "fa3:HEALDA_SDPA=fa3;fa3_blocks:HEALDA_SDPA=fa3,COMPILE_BLOCKS=1" \
  --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^(fa3|fa3_blocks) ' "$OUT/forward.log" | cut -c1-250
