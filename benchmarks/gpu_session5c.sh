#!/bin/bash
# Device call C (session 5): the pixel-attention forward in the natural row layout with int32 offsets, the FiLM
# kernels with int32 offsets: Nsight Compute register/occupancy check and launch-setting sweeps. Carry .whl.
source benchmarks/gpu_setup.sh
NCU=/usr/local/cuda/bin/ncu
S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section ComputeWorkloadAnalysis"
for k in _pa_fwd_kernel _film_bwd_kernel; do
  op=pa; [ "${k#_film}" != "$k" ] && op=film
  if [ $op = pa ]; then export HEALDA_KERNEL_OVERRIDE="num_warps=2,TILE_K=64,num_stages=2,PROGS_PER_SM=16"
  else export HEALDA_KERNEL_OVERRIDE="num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4"; fi
  timeout 100 "$NCU" -k "regex:$k" -s 1 -c 1 $S python3 benchmarks/ncu_probe.py $op > "$OUT/ncu_$k.txt" 2>&1
  echo "ncu $k rc=$?"; grep -E "Duration|Compute \(SM\) Throughput|DRAM Throughput|Theoretical Occupancy|Registers Per|Block Limit Reg|Warp Cycles Per Issued|Issued Ipc|Spilling Requests  |highest-utilized" "$OUT/ncu_$k.txt" | head -12
done
unset HEALDA_KERNEL_OVERRIDE
for ov in "num_warps=2,TILE_K=64,num_stages=2,PROGS_PER_SM=16" "num_warps=2,TILE_K=64,num_stages=3,PROGS_PER_SM=16" \
          "num_warps=2,TILE_K=32,num_stages=2,PROGS_PER_SM=16" "num_warps=2,TILE_K=32,num_stages=3,PROGS_PER_SM=32" \
          "num_warps=2,TILE_K=64,num_stages=3,PROGS_PER_SM=32" "num_warps=2,TILE_K=64,num_stages=3,PROGS_PER_SM=8" \
          "num_warps=4,TILE_K=64,num_stages=3,PROGS_PER_SM=8"; do lab pa "$ov"; done
for ov in "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4" "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=2" \
          "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=4" "num_warps=8,BLOCK_M=64,num_stages=2,PROGS_PER_SM=8" \
          "num_warps=8,BLOCK_M=64,num_stages=1,PROGS_PER_SM=4"; do
  lab film "$ov"; done
python3 benchmarks/lab_table.py "$OUT/lab.log"
