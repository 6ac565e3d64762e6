#!/bin/bash
# Device call (branch kernel-experiments-s7): GPU tests of the width-specialised kernels, the model on the kernels
# against the fixture and the saved-autotune-cache test. Carry .whl and .gpu_shared.
source benchmarks/gpu_setup.sh
timeout 420 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_film.py tests/kernels/test_pixel_attn.py \
  tests/kernels/test_model_gpu.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -cE " PASSED" "$OUT/pytest.log"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12
