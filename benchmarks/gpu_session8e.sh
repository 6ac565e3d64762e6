#!/bin/bash
# Device call: after the plan_heads fix (opcheck's symbolic tracing passes SymInts outside torch.compile; the first
# fix made gpu_session8d's test_opcheck fail): every pixel-attention test, the kernel model tests and the two
# compiled-block tests on the GPU. Carry .whl and .gpu_shared.
source benchmarks/gpu_setup.sh
unset HEALDA_SDPA HEALDA_COMPILE
timeout 500 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_pixel_attn.py tests/kernels/test_model_gpu.py \
  tests/kernels/test_compiled_blocks.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -cE " PASSED" "$OUT/pytest.log"; grep -E " FAILED| SKIPPED|^E  |passed|failed" "$OUT/pytest.log" | head -14
