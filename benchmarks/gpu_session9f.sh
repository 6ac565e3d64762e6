#!/bin/bash
# Device call (session 9, #4): every kernel GPU test on the shipped code, most important first. Carry .whl and
# .gpu_shared.
source benchmarks/gpu_setup.sh
unset HEALDA_SDPA HEALDA_COMPILE
timeout 570 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_pixel_attn.py tests/kernels/test_film.py \
  tests/kernels/test_tuning.py tests/kernels/test_model_gpu.py tests/kernels/test_packing.py \
  tests/kernels/test_compiled_blocks.py tests/gpu > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -cE " PASSED" "$OUT/pytest.log"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -14
