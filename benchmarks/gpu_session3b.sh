#!/bin/bash
# Device call B (session 3): 1.5B forward variants (SDPA backend order, compiled block regions) with a kernel
# profile, the 1.5B training step, then the kernel and model GPU tests. Wheels of .whl and .gpu_shared carried.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v physicsnemo) > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HEALDA_SHARED=$PWD/.gpu_shared
V="eager_flash:HEALDA_COMPILE=0,HEALDA_SDPA=flash;eager_cudnn:HEALDA_COMPILE=0,HEALDA_SDPA=cudnn"
V="$V;compiled_cudnn:HEALDA_COMPILE=1,HEALDA_SDPA=cudnn"
timeout "${FWD_S:-250}" python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 \
  --skip-torch-path --skip-assimilate --profile --variants "$V" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^(eager|compiled)' "$OUT/forward.log" | cut -c1-400; grep -E '^ +[0-9.]+ ms' "$OUT/forward.log" | head -22
timeout "${TRAIN_S:-150}" python3 benchmarks/train_step_h200.py --json --steps 4 --warmup 2 > "$OUT/train_step.json" \
  2> "$OUT/train_step.log"
echo "train rc=$?"; tail -c 1200 "$OUT/train_step.json"; tail -n 3 "$OUT/train_step.log"
HEALDA_AUTOTUNE=off timeout "${TEST_S:-160}" python3 -m pytest -v -p no:cacheprovider tests/gpu tests/kernels \
  --tb=line > "$OUT/pytest_gpu.log" 2>&1
echo "pytest rc=$?"; grep -E "FAILED|ERROR|passed|failed" "$OUT/pytest_gpu.log" | tail -n 25
