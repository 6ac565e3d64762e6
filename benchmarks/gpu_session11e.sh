#!/bin/bash
# Device call (session 11, #4): what the pixel-attention backward's per-pixel weight gradients cost, by part
# (measurements only; the variants' weight gradients are wrong or nondeterministic): pa-nowgrad drops the dW_k,
# dW_v, db_v products and atomics, pa-store writes them with plain stores instead of atomic adds, pa-shared adds
# them into 128 shared slices instead of one per program (2,112 at 16 per SM: 35 MB of partials). Variant files: branch s11-variants (git checkout s11-variants -- benchmarks/_variants). Carry .whl.
source benchmarks/gpu_setup.sh
P="TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
cp healda_core/kernels/pixel_attn.py /tmp/pa_tree.py
for v in tree pa-nowgrad pa-store pa-shared tree; do
  cp /tmp/pa_tree.py healda_core/kernels/pixel_attn.py
  [ "$v" != tree ] && cp benchmarks/_variants/$v/pixel_attn.py healda_core/kernels/
  echo "--- variant $v" >> "$OUT/lab.log"; lab pa "$P"
done
cp /tmp/pa_tree.py healda_core/kernels/pixel_attn.py
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-300
