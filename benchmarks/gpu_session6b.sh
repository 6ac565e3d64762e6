#!/bin/bash
# (The CAT launch field these settings use existed from commit ce20f06 to baef636; since then the one-tile backward is the only backward and the per-segment forward the only forward.)
# Device call B (session 6): FiLM kernels with one embedding tile (CAT=1) against the per-segment ones (CAT=0),
# one process per launch setting; then the same-process comparison with PhysicsNeMo 2.2.2 (autotuning on:
# the pixel-attention backward now defaults to both kv heads per pass, the FiLM tuner tries CAT=0 and 1).
# Carry .whl (with nvidia_physicsnemo).
source benchmarks/gpu_setup.sh reference
for ov in "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=4,CAT=0" "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=4,CAT=1" \
          "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4,CAT=1" "num_warps=8,BLOCK_M=64,num_stages=2,PROGS_PER_SM=4,CAT=1" \
          "num_warps=4,BLOCK_M=64,num_stages=2,PROGS_PER_SM=4,CAT=1"; do lab film "$ov"; done
python3 benchmarks/lab_table.py "$OUT/lab.log"
timeout 240 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
python3 -c "
import json; d = json.load(open('$OUT/kernels_vs_reference.json'))
for e in d.get('runs', []): print(e['N'], json.dumps(e.get('autotune', {}).get('kernels', {}))[:1200])" 2>&1 | head -4
