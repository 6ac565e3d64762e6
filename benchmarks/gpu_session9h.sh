#!/bin/bash
# Device call (session 9, #4): after the needs_grad refactor, the dispatch-path GPU tests (eager inference and
# training, ops under opcheck and torch.compile, the model dispatch). Carry .whl.
source benchmarks/gpu_setup.sh
unset HEALDA_SDPA HEALDA_COMPILE
timeout 170 python3 -m pytest -v -p no:cacheprovider tests/kernels/test_pixel_attn.py tests/kernels/test_film.py \
  -k "eager or dispatch or opcheck or compile or tracing" > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E " PASSED| FAILED|^E  |passed|failed" "$OUT/pytest.log" | tail -20
