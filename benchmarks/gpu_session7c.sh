#!/bin/bash
# Device call (next session, #5): the 1.5 B forward with FlashAttention-3 for the spatial attention
# (HEALDA_SDPA=fa3; the fa3-fwd wheel from PyPI in .whl_fa3, built on the LibTorch stable ABI for CUDA 13) against
# cuDNN SDPA; then the FA3 GPU test and the model GPU tests under fa3. (Whole-block compilation with fa3: add
# "fa3_blocks:HEALDA_SDPA=fa3,COMPILE_BLOCKS=1" to --variants in a call of its own.)
# Carry .whl, .whl_fa3 and .gpu_shared (61 MiB of the 64 MiB the device takes).
source benchmarks/gpu_setup.sh
python3 -c "import torch, fa3_fwd_interface; print('fa3 import ok', torch.__version__)" 2>&1 | tail -2
timeout 360 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path --skip-assimilate \
  --variants "cudnn:HEALDA_SDPA=cudnn;fa3:HEALDA_SDPA=fa3" \
  --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^(cudnn|fa3) ' "$OUT/forward.log" | cut -c1-300
HEALDA_SDPA=fa3 timeout 150 python3 -m pytest -v -p no:cacheprovider tests/model/test_attention_backends.py tests/gpu \
  > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E " FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -8
