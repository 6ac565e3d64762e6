#!/bin/bash
# Device call (session 10, #4): host/GPU timeline of single fwd+bwd calls (pixel attention, FiLM) and FiLM
# launch settings with more warps per SM. Carry .whl.
source benchmarks/gpu_setup.sh
timeout 150 python3 benchmarks/host_timeline.py --ops pa,film > "$OUT/timeline.log" 2>&1; echo "timeline rc=$?"
grep TIMELINE "$OUT/timeline.log" || tail -20 "$OUT/timeline.log"
lab film "BLOCK_M=128,num_warps=8,num_stages=1,PROGS_PER_SM=4"
lab film "BLOCK_M=128,num_warps=16,num_stages=1,PROGS_PER_SM=1"
lab film "BLOCK_M=256,num_warps=16,num_stages=1,PROGS_PER_SM=1"
lab film "BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=2"
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-300
