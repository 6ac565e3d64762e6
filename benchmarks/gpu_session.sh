#!/bin/bash
# One device call: the 1.5B forward / assimilate benchmark, the 1.5B training step, then the GPU tests.
# Each part has its own time limit and writes its results under $OUT, so a crash in one leaves the others.
# Run from the repo root with the wheels of .whl carried (healpy, astropy, netCDF4, ...).
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v physicsnemo) > "$OUT/pip.log" 2>&1 || { echo "wheel install failed"; tail "$OUT/pip.log"; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia_smi.csv"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
timeout "${ASSIM_S:-200}" python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 \
  --out "$OUT/assimilate.json" > "$OUT/assimilate.log" 2>&1
echo "assimilate rc=$?"; grep -E '^(kernels|pytorch) ' "$OUT/assimilate.log"; grep -E '"wall_s"|"rc"' "$OUT/assimilate.log" | head -3
timeout "${TRAIN_S:-220}" python3 benchmarks/train_step_h200.py --json --steps 6 --warmup 2 > "$OUT/train_step.json" \
  2> "$OUT/train_step.log"
echo "train rc=$?"; tail -c 1500 "$OUT/train_step.json"; tail -n 5 "$OUT/train_step.log"
timeout "${TEST_S:-120}" python3 -m pytest -q -p no:cacheprovider tests/gpu tests/kernels -m gpu -rA \
  > "$OUT/pytest_gpu.log" 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|FAILED|Error|error" "$OUT/pytest_gpu.log" | tail -n 15
