#!/bin/bash
# Device call (session 11, #4): what the pixel-attention backward's per-pixel weight gradients cost, by part
# (measurements only; the variants' weight gradients are wrong or nondeterministic): pa-nowgrad drops the dW_k,
# dW_v, db_v products and atomics, pa-store writes them with plain stores instead of atomic adds, pa-shared adds
# them into 128 shared slices instead of one per program (2,112 at 16 per SM: 35 MB of partials). Variant files: branch s11-variants (git checkout s11-variants -- benchmarks/_variants). Carry .whl.
source benchmarks/gpu_setup.sh
P="TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
for v in tree pa-nowgrad pa-store pa-shared tree; do
  variant $v; lab pa "$P"
done
variant_end
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-300
