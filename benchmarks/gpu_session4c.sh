#!/bin/bash
# Device call C (session 4): GPU tests (kernels with the new launch defaults, inference fast paths, GELU epilogue);
# kernels vs PhysicsNeMo 2.2.2 in one process; 1.5B forward (GELU epilogue) with profile; end-to-end assimilate.
# Carry .whl (with nvidia_physicsnemo) and .gpu_shared.
source benchmarks/gpu_setup.sh reference
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_pixel_attn.py tests/kernels/test_film.py \
  tests/kernels/test_packing.py tests/kernels/test_tuning.py tests/gpu > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|^FAILED|^E  " "$OUT/pytest.log" | head -8
timeout 220 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
timeout 170 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path --profile \
  --variants "kernels:" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^kernels ' "$OUT/forward.log" | cut -c1-300
grep -E '^ +[0-9.]+ ms' "$OUT/forward.log" | head -12
python3 -c "
import json; d = json.load(open('$OUT/forward.json')); a = d.get('assimilate', {})
print('assimilate', {k: v for k, v in a.items() if k != 'stderr_tail'})"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_compiled_blocks.py > "$OUT/pytest_compiled.log" 2>&1
echo "pytest compiled rc=$?"; grep -E "passed|failed|^FAILED|^E  " "$OUT/pytest_compiled.log" | head -6
