#!/bin/bash
# Device call (session 12, #4, main after merging pa-wgrad-kernel): the same-process comparison with the reference
# again (a second process after 12b), then the GPU tests not re-run since session 9/11: tuning (saved cache -> zero
# tuning) with autotuning as shipped, and the kernel, packing, compiled-block and model tests with autotuning off.
# Carry .whl, .whl_ref, .gpu_shared.
source benchmarks/gpu_setup.sh reference
timeout 200 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
timeout 80 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_tuning.py > "$OUT/pytest_tuning.log" 2>&1
echo "pytest tuning rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest_tuning.log" | head -8
HEALDA_AUTOTUNE=off timeout 250 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_pixel_attn.py \
  tests/kernels/test_packing.py tests/kernels/test_model_gpu.py tests/kernels/test_compiled_blocks.py \
  tests/kernels/test_launch.py tests/gpu > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12
