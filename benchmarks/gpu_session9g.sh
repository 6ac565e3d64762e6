#!/bin/bash
# Device call (session 9, #4; a scratch change, not kept: no gain): both pixel-attention kernels load the next slot's pixel,
# token start and count one pixel ahead, against main's kernel (benchmarks/_old/pixel_attn.py) in the same call.
# Carry .whl.
source benchmarks/gpu_setup.sh
run_labs() {
  lab pa "TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
  lab pa "TILE_K=64,num_warps=4,num_stages=3,PROGS_PER_SM=16"  # forward's default (read its kernel only)
}
run_labs
cp healda_core/kernels/pixel_attn.py /tmp/new_pa.py && cp benchmarks/_old/pixel_attn.py healda_core/kernels/
echo "--- main's kernel" >> "$OUT/lab.log"
run_labs
cp /tmp/new_pa.py healda_core/kernels/pixel_attn.py
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-250
