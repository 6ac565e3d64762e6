#!/bin/bash
# (The CAT launch field these settings use existed from commit ce20f06 to baef636; since then the one-tile backward is the only backward and the per-segment forward the only forward.)
# Device call C (session 6): FiLM launch settings (4-warp forwards; the one-tile backward with 16-bit operand
# tiles), the 1.5 B forward with the session-6 kernels (#5), then the GPU tests of the changed kernels.
# Carry .whl and .gpu_shared.
source benchmarks/gpu_setup.sh
for ov in "num_warps=4,BLOCK_M=64,num_stages=2,PROGS_PER_SM=4,CAT=0" "num_warps=4,BLOCK_M=64,num_stages=2,PROGS_PER_SM=64,CAT=0" \
          "num_warps=4,BLOCK_M=64,num_stages=3,PROGS_PER_SM=8,CAT=0" "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4,CAT=1" \
          "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=8,CAT=1"; do lab film "$ov"; done
python3 benchmarks/lab_table.py "$OUT/lab.log"
timeout 170 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path --skip-assimilate \
  --variants "kernels:" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^kernels ' "$OUT/forward.log" | cut -c1-300
timeout 230 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_film.py tests/kernels/test_pixel_attn.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|^FAILED|^E  " "$OUT/pytest.log" | head -12
