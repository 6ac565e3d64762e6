#!/bin/bash
# Device call D (session 5): same-process comparison with PhysicsNeMo 2.2.2 (autotuning on, the new defaults and
# candidates), then the GPU tests of the changed kernels and the model. Carry .whl (with nvidia_physicsnemo) and
# .gpu_shared.
source benchmarks/gpu_setup.sh reference
timeout 220 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
python3 -c "
import json; d = json.load(open('$OUT/kernels_vs_reference.json')) if __import__('os').path.exists('$OUT/kernels_vs_reference.json') else {}
for e in d.get('runs', []): print(e['N'], json.dumps(e.get('autotune', {}).get('kernels', {}))[:900])" 2>&1 | head -4
ls "$OUT"
timeout 200 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_pixel_attn.py > "$OUT/pytest_pa.log" 2>&1
echo "pytest pa rc=$?"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest_pa.log" | head -8
timeout 170 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_film.py tests/kernels/test_model_gpu.py \
  tests/gpu tests/kernels/test_compiled_blocks.py > "$OUT/pytest_rest.log" 2>&1
echo "pytest rest rc=$?"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest_rest.log" | head -8
