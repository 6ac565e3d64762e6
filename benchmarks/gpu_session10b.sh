#!/bin/bash
# Device call (session 10, #4): single-call timelines with the forward kernels launched before autograd's
# bookkeeping, against main's ops (benchmarks/_old) in the same call; host profile of the new path. Carry .whl.
source benchmarks/gpu_setup.sh
tl() { timeout 100 python3 benchmarks/host_timeline.py --ops pa,film "$@" > "$OUT/tl.tmp" 2>&1; echo "rc=$?";
       cat "$OUT/tl.tmp" >> "$OUT/timeline.log"; grep TIMELINE "$OUT/tl.tmp" || tail -5 "$OUT/tl.tmp"; }
echo "--- new"; tl --cprofile 40
cp healda_core/kernels/pixel_attn_op.py healda_core/kernels/film_op.py /tmp/
cp benchmarks/_old/*.py healda_core/kernels/
echo "--- main"; tl
cp /tmp/pixel_attn_op.py /tmp/film_op.py healda_core/kernels/
echo "--- new again"; tl
