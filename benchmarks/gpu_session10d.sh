#!/bin/bash
# Device call (session 10, #4; scratch): launch settings of the FiLM backward with per-tile atomic weight gradients
# (4 and 2 warps, smaller tiles), and main's backward (benchmarks/_old/film_bwd.py) at 4 warps. Carry .whl.
source benchmarks/gpu_setup.sh
for s in "BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=4" "BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=2" \
         "BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=8" "BLOCK_M=64,num_warps=4,num_stages=2,PROGS_PER_SM=4" \
         "BLOCK_M=32,num_warps=4,num_stages=1,PROGS_PER_SM=8" "BLOCK_M=32,num_warps=2,num_stages=1,PROGS_PER_SM=8"; do
  lab film "$s"; done
cp healda_core/kernels/film_bwd.py /tmp/new_fb.py && cp benchmarks/_old/film_bwd.py healda_core/kernels/
echo "--- main's kernel" >> "$OUT/lab.log"
lab film "BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=4"
lab film "BLOCK_M=128,num_warps=8,num_stages=1,PROGS_PER_SM=4"
cp /tmp/new_fb.py healda_core/kernels/film_bwd.py
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-200
