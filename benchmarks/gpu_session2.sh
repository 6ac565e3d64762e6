#!/bin/bash
# Second device call: GPU tests (fixture parity with and without kernels, no host syncs, kernel GPU tests) and
# the 1.5B forward with kernels + compiled temporal attention, then end-to-end `healda assimilate`.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v physicsnemo) > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HEALDA_SHARED=$PWD/.gpu_shared
timeout "${TEST_S:-150}" python3 -m pytest -q -p no:cacheprovider tests/gpu tests/kernels -m gpu -rA \
  > "$OUT/pytest_gpu.log" 2>&1
echo "pytest rc=$?"; grep -E "^(PASSED|FAILED|ERROR)|passed|failed" "$OUT/pytest_gpu.log" | tail -n 15
timeout "${ASSIM_S:-230}" python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 \
  --skip-torch-path --out "$OUT/assimilate.json" > "$OUT/assimilate.log" 2>&1
echo "assimilate rc=$?"; grep -E '^kernels ' "$OUT/assimilate.log"; grep -E '"wall_s"|"rc"|"load_batch_s"' "$OUT/assimilate.log" | head -4
