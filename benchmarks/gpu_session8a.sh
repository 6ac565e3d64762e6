#!/bin/bash
# Device call (next session, #5): what `healda assimilate` runs under HEALDA_COMPILE=tuned with FlashAttention-3
# installed — whole blocks compiled with coordinate-descent tuning — timed as a forward (compile_blocks variant)
# and end to end over several analyses; then the compiled-block GPU tests (training and the new inference one).
# Carry .whl, .whl_fa3 and .gpu_shared.
source benchmarks/gpu_setup.sh
unset HEALDA_SDPA
export HEALDA_COMPILE=tuned
timeout 360 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 9 --skip-torch-path \
  --variants "tuned_blocks:HEALDA_COMPILE=tuned,COMPILE_BLOCKS=1" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^tuned_blocks ' "$OUT/forward.log" | cut -c1-300
grep -E '"wall_s"|"rc"|forward_ms' -A3 "$OUT/forward.log" | head -12
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_compiled_blocks.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -3 "$OUT/pytest.log"
