#!/bin/bash
# Device call (session 11, #4): the same-process comparison with the reference on the final kernels (FiLM: fast
# sigmoid, tensor-core column sums, 2-stage forward; pixel-attention backward reloading q and dO for the weight
# gradients), then the GPU tests of the changed pixel-attention backward (autotuning off: the tests check results,
# the default launch setting is the tuned one) and of the lean launch. Carry .whl, .whl_ref, .gpu_shared.
source benchmarks/gpu_setup.sh reference
timeout 200 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
HEALDA_AUTOTUNE=off timeout 230 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_launch.py \
  tests/kernels/test_pixel_attn.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12; tail -c 400 "$OUT/pytest.log"
