#!/bin/bash
# Device call (session 11, #4): the FiLM kernels of branch film-fastmath (column sums on the tensor cores, sigmoid
# through ex2/rcp.approx) at forward and backward launch settings chosen separately (kernel_lab.py --set), then the
# FiLM GPU tests on that variant (its inline PTX runs only on the GPU). Variant files: benchmarks/_variants/.
# Carry .whl, .gpu_shared.
source benchmarks/gpu_setup.sh
cp benchmarks/_variants/film-fastmath/*.py healda_core/kernels/
s() { lab film "" --set "film_fwd:BLOCK_M=$1,num_warps=$2,num_stages=$3,PROGS_PER_SM=$4" \
                  --set "film_bwd:BLOCK_M=$5,num_warps=$6,num_stages=$7,PROGS_PER_SM=$8"; }
s 64 4 1 8   64 4 1 4
s 64 4 2 4   64 4 2 2
s 64 4 2 8   64 4 2 1
s 64 4 1 16  64 8 1 1
s 64 8 1 4   64 8 2 1
s 64 8 2 4   32 4 1 4
s 128 8 2 2  32 4 1 8
s 64 4 1 8   64 4 1 2
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-300
timeout 170 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_film.py > "$OUT/pytest_film.log" 2>&1
echo "pytest film rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest_film.log" | head -8
