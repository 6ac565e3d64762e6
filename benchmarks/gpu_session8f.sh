#!/bin/bash
# Device call (branch pa-fwd-empty-s8): the pixel-attention forward with empty pixels zero-filled in their own loop
# (no Q load, no projections; the schedule carries the non-empty count), against the shipped kernel in the same
# call (copies in benchmarks/_old/, not committed), at the shipped forward setting and at 16 programs/SM; then the
# pixel-attention GPU tests on the new kernel. Carry .whl.
source benchmarks/gpu_setup.sh
lab pa "TILE_K=64,num_warps=4,num_stages=3,PROGS_PER_SM=8,KV=2"
lab pa "TILE_K=64,num_warps=4,num_stages=3,PROGS_PER_SM=16,KV=2"
mkdir -p /tmp/new && cp healda_core/kernels/pixel_attn.py healda_core/kernels/pixel_attn_op.py /tmp/new/
cp benchmarks/_old/pixel_attn.py benchmarks/_old/pixel_attn_op.py healda_core/kernels/
echo "--- old kernel" >> "$OUT/lab.log"
lab pa "TILE_K=64,num_warps=4,num_stages=3,PROGS_PER_SM=8,KV=2"
lab pa "TILE_K=64,num_warps=4,num_stages=3,PROGS_PER_SM=16,KV=2"
cp /tmp/new/*.py healda_core/kernels/
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-230
timeout 140 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_pixel_attn.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -3 "$OUT/pytest.log"
