#!/bin/bash
# Device call A (session 3): launch-setting lab for the Triton kernels (each setting in its own process, checked
# against the fp32 PyTorch path), then the kernel and model GPU tests. Wheels of .whl carried; .gpu_shared carried.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v physicsnemo) > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HEALDA_SHARED=$PWD/.gpu_shared
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
for spec in "num_warps=2|tf32|pa,film" "num_warps=4|tf32|pa,film" "num_warps=8|tf32|pa,film" \
            "num_warps=4|bf16|film" "num_warps=8|bf16|film" "num_warps=4,TILE_K=128,num_stages=3|tf32|pa"; do
  IFS='|' read -r ov dot ops <<< "$spec"
  HEALDA_KERNEL_OVERRIDE="$ov" timeout 75 python3 benchmarks/kernel_lab.py --ops "$ops" --film-dot "$dot" \
    >> "$OUT/lab.log" 2>&1
  echo "lab [$spec] rc=$?"
done
grep '^LAB ' "$OUT/lab.log" | cut -c1-900
timeout "${TEST_S:-230}" python3 -m pytest -q -p no:cacheprovider tests/kernels tests/gpu -rf \
  > "$OUT/pytest_gpu.log" 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|FAILED|Error" "$OUT/pytest_gpu.log" | tail -n 15
