#!/bin/bash
# Device call D (session 6): same-process comparison with PhysicsNeMo 2.2.2 after the session-6 kernels (FiLM
# backward on one embedding tile, pixel-attention backward with both kv heads per pass), then the GPU tests of
# both kernels and the model on the kernels. Carry .whl (with nvidia_physicsnemo) and .gpu_shared.
source benchmarks/gpu_setup.sh reference
timeout 200 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
timeout 330 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_film.py tests/kernels/test_pixel_attn.py \
  tests/kernels/test_model_gpu.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -cE " PASSED" "$OUT/pytest.log"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12
