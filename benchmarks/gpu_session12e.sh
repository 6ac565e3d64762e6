#!/bin/bash
# Device call (session 12, review pass): the pixel-attention forward now splits rows by head through _by_head, and
# the backward zero-fills its partial slices when there are no pixels. The PA, FiLM and launch GPU tests, then one
# lab timing to check the kernels' times did not move. Carry .whl, .gpu_shared.
source benchmarks/gpu_setup.sh
HEALDA_AUTOTUNE=off timeout 300 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_pixel_attn.py \
  tests/kernels/test_film.py tests/kernels/test_launch.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12
lab pa "TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-260
