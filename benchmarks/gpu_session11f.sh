#!/bin/bash
# Device call (session 11, #4): two pixel-attention backward variants against main's, twice each, same call.
# pa-reload: q and dO loaded again for the weight gradients instead of kept live across the token loop (outer-loop
# spill instructions 60 -> 17 offline). pa-stackT: the same loads transposed and stacked by kv head, so one product
# gives both heads' dW_k (dW_v) and one row sum both db_v (4 products + 2 column sums -> 2 products + 1 row sum).
# Files: benchmarks/_variants/<name>/pixel_attn.py (pa-stackT on branch s11-variants; pa-reload is main since d69cc8b). Carry .whl.
source benchmarks/gpu_setup.sh
P="TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
for v in tree pa-reload pa-stackT tree pa-reload pa-stackT; do
  variant $v; lab pa "$P"
done
variant_end
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-300
