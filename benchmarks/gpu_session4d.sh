#!/bin/bash
# Device call D (session 4): the GPU tests that call C's 150 s window cut short, in two timed chunks.
source benchmarks/gpu_setup.sh
timeout 190 python3 -m pytest -v -p no:cacheprovider tests/gpu tests/kernels/test_film.py tests/kernels/test_tuning.py \
  tests/kernels/test_packing.py > "$OUT/pytest1.log" 2>&1
echo "chunk1 rc=$?"; grep -cE " PASSED" "$OUT/pytest1.log"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest1.log" | head -8
timeout 200 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_pixel_attn.py > "$OUT/pytest2.log" 2>&1
echo "chunk2 rc=$?"; grep -cE " PASSED" "$OUT/pytest2.log"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest2.log" | head -8
grep -hE "PASSED|FAILED|SKIPPED" "$OUT/pytest1.log" "$OUT/pytest2.log" | sed 's/ *\[.*//' | tail -n 70
