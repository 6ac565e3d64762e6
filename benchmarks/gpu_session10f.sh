#!/bin/bash
# Device call (session 10, #4): the FiLM backward with unmasked per-tile atomics (the padding adds zeros) against
# the masked version (benchmarks/_old/film_bwd_masked.py), both at the defaults; then the GPU tests of pixel
# attention (per-pixel atomic weight gradients) and of the kernel model against the fixture. Carry .whl, .gpu_shared.
source benchmarks/gpu_setup.sh
labd() { timeout 45 python3 benchmarks/kernel_lab.py --ops film --profile >> "$OUT/lab.log" 2>&1; echo "lab film $1 rc=$?"; }
labd unmasked
cp healda_core/kernels/film_bwd.py /tmp/fb.py && cp benchmarks/_old/film_bwd_masked.py healda_core/kernels/film_bwd.py
echo "--- masked" >> "$OUT/lab.log"; labd masked
cp /tmp/fb.py healda_core/kernels/film_bwd.py
labd unmasked-again
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-200
timeout 330 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_pixel_attn.py tests/kernels/test_model_gpu.py \
  > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12
