#!/bin/bash
# Device debugging: each case in its own process, default configs (no autotune), under compute-sanitizer.
cd "$(dirname "$0")/.." || exit 2
export HEALDA_AUTOTUNE=off
for c in "film16" "film24" "pa_small" "pa_small bf16" "pa_mid bf16"; do
  echo "=== $c"
  timeout 120 compute-sanitizer --tool memcheck --print-limit 3 python3 benchmarks/debug_kernels.py $c 2>&1 | grep -v "^=========     Host Frame\|^=========         in\|^=========     at 0x" | head -40
done
unset HEALDA_AUTOTUNE
echo "=== autotuned pa_mid bf16 (no sanitizer)"
CUDA_LAUNCH_BLOCKING=1 timeout 120 python3 benchmarks/debug_kernels.py pa_mid bf16 2>&1 | tail -5
echo "=== autotuned film24 (no sanitizer)"
CUDA_LAUNCH_BLOCKING=1 timeout 120 python3 benchmarks/debug_kernels.py film24 2>&1 | tail -5
