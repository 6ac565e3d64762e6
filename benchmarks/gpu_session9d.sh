#!/bin/bash
# Device call (session 9, #4): the two heads' row halves projected with half-size products (SPLIT) in both
# pixel-attention kernels, and eager training without the op dispatcher, against the previous commit's kernel
# and op files (benchmarks/_old2) in the same call; then the same-process comparison with the reference.
# Carry .whl and .whl_ref.
source benchmarks/gpu_setup.sh reference
run_labs() {
  lab pa "TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=32"
  lab pa "TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
  lab pa "TILE_K=64,num_warps=4,num_stages=3,PROGS_PER_SM=16"  # forward's default (read its kernel only)
}
run_labs
mkdir -p /tmp/new && cp healda_core/kernels/pixel_attn.py healda_core/kernels/pixel_attn_op.py /tmp/new/
cp benchmarks/_old2/pixel_attn.py benchmarks/_old2/pixel_attn_op.py healda_core/kernels/
echo "--- previous kernel and op files" >> "$OUT/lab.log"
run_labs
cp /tmp/new/*.py healda_core/kernels/
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-200
timeout 300 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
