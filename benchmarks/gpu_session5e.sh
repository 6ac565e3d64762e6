#!/bin/bash
# Device call E (session 5): the GPU tests call D's window cut short (the model on the kernels vs the fixture,
# the GPU model tests, compiled blocks). Carry .whl and .gpu_shared.
source benchmarks/gpu_setup.sh
timeout 265 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_model_gpu.py tests/gpu \
  tests/kernels/test_compiled_blocks.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "PASSED|FAILED|ERROR|^E  |passed|failed" "$OUT/pytest.log" | sed 's/ *\[ *[0-9]*%\]//' | head -20
