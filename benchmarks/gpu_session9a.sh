#!/bin/bash
# Device call (next session, #4; branch pa-bwd-empty-s8): the pixel-attention backward with empty pixels given
# dQ = 0 in their own loop (the schedule order now ends with the non-empty count; offline the backward spills
# 576 instead of 808 bytes). Before the call, put main's kernel files beside it for the same-call comparison:
#   mkdir -p benchmarks/_old && for f in pixel_attn pixel_attn_op; do
#     git show main:healda_core/kernels/$f.py > benchmarks/_old/$f.py; done
# (remove benchmarks/_old afterwards). Then the same-process comparison with the reference on the branch's
# kernels (run in session 9 before the merge; the GPU tests ran later as gpu_session9f.sh). Carry .whl and .whl_ref.
source benchmarks/gpu_setup.sh reference
lab pa "TILE_K=32,num_warps=2,num_stages=3,PROGS_PER_SM=32,KV=2"
mkdir -p /tmp/new && cp healda_core/kernels/pixel_attn.py healda_core/kernels/pixel_attn_op.py /tmp/new/
cp benchmarks/_old/pixel_attn.py benchmarks/_old/pixel_attn_op.py healda_core/kernels/
echo "--- main's kernels" >> "$OUT/lab.log"
lab pa "TILE_K=32,num_warps=2,num_stages=3,PROGS_PER_SM=32,KV=2"
cp /tmp/new/*.py healda_core/kernels/
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-230
timeout 300 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
