#!/bin/bash
# Device call (session 10, #4): (1) pixel-attention backward with per-pixel atomic weight gradients (no register
# accumulators) against main's (benchmarks/_old) in the same call; (2) the FiLM GPU tests and the FiLM lab at the
# new defaults (4 warps, 64 rows, per-tile atomic weight gradients); (3) single-call timelines. Carry .whl.
source benchmarks/gpu_setup.sh
for s in "TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=32" "TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16" \
         "TILE_K=32,num_warps=4,num_stages=3,KV=2,PROGS_PER_SM=16"; do lab pa "$s"; done
cp healda_core/kernels/pixel_attn.py healda_core/kernels/pixel_attn_op.py /tmp/
cp benchmarks/_old/pixel_attn.py benchmarks/_old/pixel_attn_op.py healda_core/kernels/
echo "--- main's pixel attention" >> "$OUT/lab.log"
lab pa "TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=32"
cp /tmp/pixel_attn.py /tmp/pixel_attn_op.py healda_core/kernels/
echo "--- FiLM defaults" >> "$OUT/lab.log"
HEALDA_KERNEL_OVERRIDE_UNSET=1 timeout 45 python3 benchmarks/kernel_lab.py --ops film --profile >> "$OUT/lab.log" 2>&1; echo "lab film defaults rc=$?"
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-330
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_film.py > "$OUT/pytest_film.log" 2>&1
echo "pytest film rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest_film.log" | head -8
timeout 100 python3 benchmarks/host_timeline.py --ops pa,film > "$OUT/timeline.log" 2>&1; echo "timeline rc=$?"
grep TIMELINE "$OUT/timeline.log" | cut -c1-900
