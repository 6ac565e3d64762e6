#!/bin/bash
# Device call (session 7, #5): gpu_session7g's forward again with 9 timed runs (no end-to-end run).
# Carry .whl, .whl_fa3, .gpu_shared.
source benchmarks/gpu_setup.sh >/dev/null 2>&1
unset HEALDA_SDPA
timeout 200 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 9 --skip-torch-path --skip-assimilate \
  --variants "auto_tuned:HEALDA_COMPILE=tuned" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo rc=$?; grep -E '^auto_tuned ' "$OUT/forward.log" | cut -c1-400
