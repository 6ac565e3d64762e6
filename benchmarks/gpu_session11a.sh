#!/bin/bash
# Device call (prepared in session 10 on branch film-colsum, for #4): the FiLM backward with its four column sums on
# the tensor cores (offline 2,990 -> 2,577 SASS instructions per tile at 4 warps / 64 rows, 2,448 at 8 warps /
# 128 rows) against main's, in the same call. Before the call (untracked files travel to the device):
#   mkdir -p benchmarks/_old && for f in film_bwd film_op; do
#     git show main:healda_core/kernels/$f.py > benchmarks/_old/$f.py; done
# Carry .whl.
source benchmarks/gpu_setup.sh
for s in "BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=4" "BLOCK_M=128,num_warps=8,num_stages=1,PROGS_PER_SM=1" \
         "BLOCK_M=128,num_warps=8,num_stages=1,PROGS_PER_SM=2"; do lab film "$s"; done
cp healda_core/kernels/film_bwd.py healda_core/kernels/film_op.py /tmp/
cp benchmarks/_old/film_bwd.py benchmarks/_old/film_op.py healda_core/kernels/
echo "--- main's FiLM" >> "$OUT/lab.log"
lab film "BLOCK_M=64,num_warps=4,num_stages=1,PROGS_PER_SM=4"
cp /tmp/film_bwd.py /tmp/film_op.py healda_core/kernels/
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-400
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_film.py > "$OUT/pytest_film.log" 2>&1
echo "pytest film rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest_film.log" | head -8
