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
lab() {  # $1 ops, $2 override
  HEALDA_KERNEL_OVERRIDE="$2" timeout 45 python3 benchmarks/kernel_lab.py --ops "$1" --profile >> "$OUT/lab.log" 2>&1
  echo "lab $1 [$2] rc=$?"
}
for ov in "num_warps=2,TILE_K=64,num_stages=2,PROGS_PER_SM=16" "num_warps=2,TILE_K=64,num_stages=3,PROGS_PER_SM=16" \
          "num_warps=2,TILE_K=32,num_stages=2,PROGS_PER_SM=16" "num_warps=2,TILE_K=32,num_stages=3,PROGS_PER_SM=32" \
          "num_warps=2,TILE_K=64,num_stages=3,PROGS_PER_SM=32" "num_warps=2,TILE_K=64,num_stages=3,PROGS_PER_SM=8" \
          "num_warps=4,TILE_K=64,num_stages=3,PROGS_PER_SM=8"; do lab pa "$ov"; done
for ov in "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4" "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=2" \
          "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=4" "num_warps=8,BLOCK_M=64,num_stages=2,PROGS_PER_SM=8" \
          "num_warps=8,BLOCK_M=64,num_stages=1,PROGS_PER_SM=4"; do
  lab film "$ov"; done
grep '^LAB ' "$OUT/lab.log" | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l[4:])
    for op in ('pa', 'film'):
        if op + '_fwd_ms' in d or op + '_error' in d:
            p = dict(d.get(op + '_profile') or [])
            print(op, d['override'], 'fwd', round(d.get(op + '_fwd_ms', -1), 3), 'fwdbwd', round(d.get(op + '_fwdbwd_ms', -1), 3),
                  {k[:16]: v for k, v in p.items() if k.startswith('_')}, 'host', d.get(op + '_fwd_host_us'), 'err', {k: round(v, 4) for k, v in (d.get(op + '_err') or {}).items()},
                  d.get(op + '_error', '')[:200])"
