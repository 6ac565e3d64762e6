#!/bin/bash
# Device call A (session 5): GPU tests of the kernels (persistent pixel-attention forward, persistent FiLM
# kernels with weights loaded once per program), the compiled-blocks test, the packing tests; launch-setting sweeps
# of the new forward/backward variants (kernel_lab, one process per setting); packing vs PhysicsNeMo 2.2.2.
# Carry .whl (with nvidia_physicsnemo) and .gpu_shared.
source benchmarks/gpu_setup.sh reference
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/kernels tests/obs/test_context.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|^FAILED|^E  " "$OUT/pytest.log" | head -12
for ov in "num_warps=2,TILE_K=32,num_stages=1,PROGS_PER_SM=0" "num_warps=2,TILE_K=32,num_stages=1,PROGS_PER_SM=4" \
          "num_warps=2,TILE_K=32,num_stages=1,PROGS_PER_SM=8" "num_warps=2,TILE_K=32,num_stages=1,PROGS_PER_SM=16" \
          "num_warps=2,TILE_K=32,num_stages=2,PROGS_PER_SM=16" "num_warps=2,TILE_K=32,num_stages=1,PROGS_PER_SM=32" \
          "num_warps=2,TILE_K=64,num_stages=2,PROGS_PER_SM=16"; do lab pa "$ov"; done
for ov in "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=2" "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=1" \
          "num_warps=8,BLOCK_M=128,num_stages=3,PROGS_PER_SM=2" "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4" \
          "num_warps=8,BLOCK_M=64,num_stages=2,PROGS_PER_SM=4" "num_warps=8,BLOCK_M=256,num_stages=2,PROGS_PER_SM=1"; do
  lab film "$ov"; done
python3 benchmarks/lab_table.py "$OUT/lab.log"
grep -E "Error|error" "$OUT/lab.log" | grep -v UserWarning | sort | uniq -c | head -5
timeout 100 python3 benchmarks/packing_vs_reference.py > "$OUT/packing.jsonl" 2> "$OUT/packing.log"
echo "packing rc=$?"; cat "$OUT/packing.jsonl"; tail -n 3 "$OUT/packing.log"
