#!/bin/bash
# Device call (session 10, #4; scratch): FiLM backward with the weight gradients added per row tile with relaxed
# atomics into the program's partial slice (no loop-carried accumulators), against main's backward
# (benchmarks/_old/film_bwd.py) in the same call. Carry .whl.
source benchmarks/gpu_setup.sh
run_labs() {
  lab film "BLOCK_M=128,num_warps=8,num_stages=1,PROGS_PER_SM=4"
  lab film "BLOCK_M=64,num_warps=8,num_stages=1,PROGS_PER_SM=4"
  lab film "BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=4"
}
run_labs
cp healda_core/kernels/film_bwd.py /tmp/new_fb.py && cp benchmarks/_old/film_bwd.py healda_core/kernels/
echo "--- main's kernel" >> "$OUT/lab.log"
lab film "BLOCK_M=128,num_warps=8,num_stages=1,PROGS_PER_SM=4"
cp /tmp/new_fb.py healda_core/kernels/film_bwd.py
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-400
