#!/bin/bash
# Device call (next session, #4): the pixel-attention backward at 4 warps with TILE_K 32 and both kv heads per
# pass. Offline (benchmarks/kernel_regs.py, sm_90) it spills 56 bytes per thread instead of 808 at the shipped
# 2 warps; the 4-warp TILE_K 64 variant gave a wrong dW_v on the H200 (sessions 6–7), so check the `err` column
# (dwv must stay ~2e-3) before trusting any time. Shipped: TILE_K=32,num_warps=2,num_stages=3,PROGS_PER_SM=32,KV=2
# (kernel 2.39 ms at 10 M in gpu_session7a). Carry .whl (and .gpu_shared for nothing else).
source benchmarks/gpu_setup.sh
lab pa "TILE_K=32,num_warps=2,num_stages=3,PROGS_PER_SM=32,KV=2"
lab pa "TILE_K=32,num_warps=4,num_stages=3,PROGS_PER_SM=16,KV=2"
lab pa "TILE_K=32,num_warps=4,num_stages=3,PROGS_PER_SM=8,KV=2"
lab pa "TILE_K=32,num_warps=4,num_stages=2,PROGS_PER_SM=16,KV=2"
lab pa "TILE_K=32,num_warps=4,num_stages=3,PROGS_PER_SM=16,KV=1"
python3 benchmarks/lab_table.py "$OUT/lab.log"
# FiLM backward: how much of its 6.86 ms kernel time (10 M rows) are the 280 M relaxed atomic adds of the
# embedding gradients? Deterministic mode stores per-row gradients instead (DEMB_ROWS: ~1.1 GB of plain stores,
# reduced on the host): compare `_film_bwd_kernel` in the two profiles.
HEALDA_KERNEL_OVERRIDE="num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4" timeout 60 \
  python3 benchmarks/kernel_lab.py --ops film --profile --deterministic >> "$OUT/lab_det.log" 2>&1
echo "film deterministic rc=$?"; grep -E "_film_bwd_kernel|fwdbwd" "$OUT/lab_det.log" | head -5 | cut -c1-300
