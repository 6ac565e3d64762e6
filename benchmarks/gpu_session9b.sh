#!/bin/bash
# Device call (next session): every kernel GPU test on the branch's pixel attention (session 8 ran only 14 of the
# pixel-attention tests on the forward change before its time ran out). Carry .whl and .gpu_shared.
source benchmarks/gpu_setup.sh
unset HEALDA_SDPA HEALDA_COMPILE
timeout 560 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_pixel_attn.py tests/kernels/test_model_gpu.py \
  tests/kernels/test_compiled_blocks.py tests/gpu > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -cE " PASSED" "$OUT/pytest.log"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -14
