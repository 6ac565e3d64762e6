#!/bin/bash
# Device call (session 11, #4): the three kernel variants prepared in session 10 against main's kernels, each in its
# own lab process at the same launch setting, same call. Variant files lie in the untracked
# benchmarks/_variants/<branch>/ (copied from the branches film-colsum, film-fastmath, pa-dbv; see gpu_variants.sh).
# Carry .whl.
source benchmarks/gpu_setup.sh
F1="BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=4"; F2="BLOCK_M=128,num_warps=8,num_stages=1,PROGS_PER_SM=2"
for v in tree film-colsum film-fastmath; do variant $v; lab film "$F1"; lab film "$F2"; done
P="TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
for v in tree pa-dbv tree pa-dbv; do variant $v; lab pa "$P"; done
variant_end
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-330
