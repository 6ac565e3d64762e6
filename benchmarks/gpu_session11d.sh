#!/bin/bash
# Device call (session 11, #4): how much of the pixel-attention backward the per-pixel weight gradients cost
# (benchmarks/_variants/pa-nowgrad: main's kernel with the dW_k, dW_v, db_v products and atomic adds removed, a
# measurement only, its weight gradients are wrong), then the same-process comparison with the reference on the
# merged kernels. Carry .whl, .whl_ref.
source benchmarks/gpu_setup.sh reference
P="TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
variant tree; lab pa "$P"
variant pa-nowgrad; lab pa "$P"
variant_end
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-300
timeout 300 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
