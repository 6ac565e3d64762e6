#!/bin/bash
# Device call A (session 4): GPU tests of the new fused temporal attention and GELU epilogue; launch-setting lab
# with Triton's wgmma (MMA v3) disabled, where 4/8 warps faulted in session 3; FiLM kernel profile; 1.5B forward
# variants (temporal kernel, GELU epilogue, Inductor coordinate-descent tuning, whole compiled blocks).
# Carry .whl and .gpu_shared.
source benchmarks/gpu_setup.sh
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_temporal_attn.py \
  "tests/gpu/test_model_gpu.py" > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -n 4 "$OUT/pytest.log"
for spec in "num_warps=2|pa|0|--profile" "num_warps=4|pa|1|" "num_warps=8|pa|1|" "num_warps=4,TILE_K=128|pa|1|" \
            "num_warps=4,TILE_K=32|pa|1|" "num_warps=8|film|0|--profile" \
            "num_warps=4,BLOCK_M=64,PROGS_PER_SM=4|film|1|" "num_warps=4,BLOCK_M=128,PROGS_PER_SM=2|film|1|" \
            "num_warps=8|film|0|--deterministic --profile"; do
  IFS='|' read -r ov ops nomma extra <<< "$spec"
  if [ "$nomma" = 1 ]; then export DISABLE_MMA_V3=1; else unset DISABLE_MMA_V3; fi
  CUBLAS_WORKSPACE_CONFIG=:4096:8 HEALDA_KERNEL_OVERRIDE="$ov" timeout 45 python3 benchmarks/kernel_lab.py \
    --ops "$ops" $extra >> "$OUT/lab.log" 2>&1
  echo "lab [$spec] rc=$?"
done
unset DISABLE_MMA_V3
grep '^LAB ' "$OUT/lab.log" | cut -c1-700
V="base:HEALDA_TEMPORAL_KERNEL=0,HEALDA_GELU_EPILOGUE=0;temporal:HEALDA_GELU_EPILOGUE=0;gelu:HEALDA_TEMPORAL_KERNEL=0"
V="$V;all:;all_cd:INDUCTOR_COORDINATE_DESCENT_TUNING=1;blocks:COMPILE_BLOCKS=1"
timeout 330 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path \
  --skip-assimilate --profile --profile-variant all --variants "$V" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^(base|temporal|gelu|all|all_cd|blocks) ' "$OUT/forward.log" | cut -c1-260
grep -E '^ +[0-9.]+ ms' "$OUT/forward.log" | head -24
