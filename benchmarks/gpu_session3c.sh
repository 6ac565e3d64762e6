#!/bin/bash
# Device call C (session 3): the shipped defaults (compiled block regions, cuDNN-first SDPA, fp32 adaLN modulation):
# 1.5B forward with profile + end-to-end `healda assimilate`, the 1.5B training step, then the GPU tests that the
# previous call did not reach. Wheels of .whl and .gpu_shared carried.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v physicsnemo) > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HEALDA_SHARED=$PWD/.gpu_shared
timeout "${FWD_S:-260}" python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 \
  --skip-torch-path --profile --variants "defaults:" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^defaults' "$OUT/forward.log" | cut -c1-400; grep -E '^ +[0-9.]+ ms' "$OUT/forward.log" | head -16
grep -E '"wall_s"|"rc"' "$OUT/forward.log" | head -2
timeout "${TRAIN_S:-130}" python3 benchmarks/train_step_h200.py --json --steps 4 --warmup 2 > "$OUT/train_step.json" \
  2> "$OUT/train_step.log"
echo "train rc=$?"; tail -c 700 "$OUT/train_step.json"
export HEALDA_AUTOTUNE=off
timeout 150 python3 -m pytest -v -p no:cacheprovider --tb=short tests/kernels/test_tuning.py tests/kernels/test_pixel_attn.py \
  -k "not fp32_matches and not half_precision and not 6-3-5-7 and not 4-4-8-8 and not 8-1-16-24 and not 16-8-32-16" \
  > "$OUT/pytest_gpu.log" 2>&1
echo "pytest rc=$?"
timeout 70 python3 -m pytest -v -p no:cacheprovider --tb=short tests/kernels/test_pixel_attn.py -k "16-8-32-16" \
  >> "$OUT/pytest_gpu.log" 2>&1
echo "pytest 16-8-32-16 rc=$?"; grep -oE "::[a-z_0-9]+(\[[^]]*\])? (PASSED|FAILED|ERROR)" "$OUT/pytest_gpu.log"; tail -n 3 "$OUT/pytest_gpu.log"
