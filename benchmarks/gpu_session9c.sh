#!/bin/bash
# Device call (session 9, #4): pixel-attention backward launch labs on the branch (dynamic work queue DYN=1 with
# only the resident programs vs the fixed stride; a ptxas register cap through the temporary LAB_PA_BWD_MAXNREG;
# TILE_K 16), then the previous commit's op files (custom-op dispatch in eager training) for the host-time
# comparison, then the same-process comparison with the reference. Prep: benchmarks/_old2 holds HEAD's
# pixel_attn{,_op}.py. Carry .whl and .whl_ref.
source benchmarks/gpu_setup.sh reference
B="TILE_K=32,num_warps=2,num_stages=3,KV=2"
lab pa "$B,PROGS_PER_SM=32,DYN=0"
lab pa "$B,PROGS_PER_SM=4,DYN=1"
lab pa "$B,PROGS_PER_SM=8,DYN=1"
LAB_PA_BWD_MAXNREG=200 lab pa "$B,PROGS_PER_SM=32,DYN=0"
LAB_PA_BWD_MAXNREG=168 lab pa "$B,PROGS_PER_SM=32,DYN=0"
lab pa "TILE_K=16,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=32,DYN=0"
mkdir -p /tmp/new && cp healda_core/kernels/pixel_attn.py healda_core/kernels/pixel_attn_op.py /tmp/new/
cp benchmarks/_old2/pixel_attn.py benchmarks/_old2/pixel_attn_op.py healda_core/kernels/
echo "--- previous op files" >> "$OUT/lab.log"
lab pa "$B,PROGS_PER_SM=32"
cp /tmp/new/*.py healda_core/kernels/
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-200
timeout 300 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
