#!/bin/bash
# Device call (session 7, #5): the shipped switches rather than the benchmark's pseudo-variables — HEALDA_SDPA
# unset (auto: FlashAttention-3 when fa3-fwd is installed) with HEALDA_COMPILE=tuned (compiled regions with
# coordinate-descent tuning passed as torch.compile options), then `healda assimilate` end to end with the
# defaults; then the attention-backend tests on the GPU with HEALDA_SDPA unset. Carry .whl, .whl_fa3, .gpu_shared.
source benchmarks/gpu_setup.sh
unset HEALDA_SDPA
timeout 330 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path \
  --variants "auto_tuned:HEALDA_COMPILE=tuned" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^auto_tuned ' "$OUT/forward.log" | cut -c1-300
grep -E '"wall_s"|"rc"|forward_ms' "$OUT/forward.log" | head -4
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/model/test_attention_backends.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -3 "$OUT/pytest.log"
