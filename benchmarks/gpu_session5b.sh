#!/bin/bash
# Device call B (session 5): Nsight Compute probe of the pixel-attention forward and the FiLM kernels (if ncu is in
# the image); launch-setting sweeps of the pixel-attention forward (schedule segments) and the FiLM backward;
# packing vs PhysicsNeMo 2.2.2. Carry .whl (with nvidia_physicsnemo).
source benchmarks/gpu_setup.sh reference
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: ${NCU:-none}"
if [ -n "$NCU" ]; then
  S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section SchedulerStats"
  for k in _pa_fwd_kernel _film_fwd_kernel _film_bwd_kernel; do
    op=pa; [ "${k#_film}" != "$k" ] && op=film
    if [ $op = pa ]; then export HEALDA_KERNEL_OVERRIDE="num_warps=2,TILE_K=64,num_stages=2,PROGS_PER_SM=16"
    else export HEALDA_KERNEL_OVERRIDE="num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4"; fi
    timeout 120 "$NCU" -k "regex:$k" -s 1 -c 1 $S python3 benchmarks/ncu_probe.py $op > "$OUT/ncu_$k.txt" 2>&1
    echo "ncu $k rc=$?"; grep -E "Duration|Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Warp Cycles Per Issued|Stall|Shared Memory Configuration Size|Dynamic Shared|Issued Ipc|ERR" "$OUT/ncu_$k.txt" | head -30
  done
  unset HEALDA_KERNEL_OVERRIDE
fi
for ov in "num_warps=2,TILE_K=64,num_stages=2,PROGS_PER_SM=16" "num_warps=2,TILE_K=64,num_stages=3,PROGS_PER_SM=16" \
          "num_warps=2,TILE_K=64,num_stages=2,PROGS_PER_SM=8" "num_warps=2,TILE_K=128,num_stages=2,PROGS_PER_SM=16" \
          "num_warps=2,TILE_K=32,num_stages=2,PROGS_PER_SM=24"; do lab pa "$ov"; done
for ov in "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4" "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=6" \
          "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=8" "num_warps=8,BLOCK_M=64,num_stages=1,PROGS_PER_SM=8"; do
  lab film "$ov"; done
python3 benchmarks/lab_table.py "$OUT/lab.log"
timeout 100 python3 benchmarks/packing_vs_reference.py > "$OUT/packing.jsonl" 2> "$OUT/packing.log"
echo "packing rc=$?"; cat "$OUT/packing.jsonl"; tail -n 3 "$OUT/packing.log"
