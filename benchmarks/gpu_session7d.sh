#!/bin/bash
# Device call (session 7, #5 and #4): with the width-specialised kernels merged, the 1.5 B forward on
# FlashAttention-3 (HEALDA_SDPA=fa3) with compiled regions and with whole blocks compiled, then `healda assimilate`
# end to end under fa3; then the saved-autotune-cache GPU test (it timed out in gpu_session7b's 420 s budget).
# Carry .whl, .whl_fa3 and .gpu_shared.
source benchmarks/gpu_setup.sh
export HEALDA_SDPA=fa3
timeout 330 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path \
  --variants "fa3:HEALDA_SDPA=fa3;fa3_blocks:HEALDA_SDPA=fa3,COMPILE_BLOCKS=1" \
  --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^(fa3|fa3_blocks) ' "$OUT/forward.log" | cut -c1-300
grep -E '"wall_s"|"rc"' "$OUT/forward.log" | head -4
unset HEALDA_SDPA
timeout 220 python3 -m pytest -v -p no:cacheprovider \
  "tests/kernels/test_model_gpu.py::test_saved_autotune_cache_gives_zero_tuning_in_a_new_process" \
  > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -8
