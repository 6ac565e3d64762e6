#!/bin/bash
# Device call (session 12, #4, branch pa-wgrad-kernel): launch settings of the split pixel-attention backward
# (the backward kernel has 4 instead of 60 spill instructions now, so its best setting may have moved) and of the
# weight-gradient kernel (variants under benchmarks/_variants/wg*: programs per SM, warps, stages), then the
# same-process comparison with the reference at the branch's defaults. Carry .whl, .whl_ref.
source benchmarks/gpu_setup.sh reference
B="TILE_K=32,num_warps=2,num_stages=3,KV=2"
for s in "$B,PROGS_PER_SM=16" "$B,PROGS_PER_SM=32" "$B,PROGS_PER_SM=24" "TILE_K=32,num_warps=2,num_stages=2,KV=2,PROGS_PER_SM=16" \
         "TILE_K=64,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16" "TILE_K=32,num_warps=4,num_stages=3,KV=2,PROGS_PER_SM=8"; do
  lab pa "$s"; done
for v in wg8 wg2 wgw8 wgs2 tree; do variant $v; lab pa "$B,PROGS_PER_SM=16"; done
variant_end
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-260
timeout 240 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
