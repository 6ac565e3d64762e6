#!/bin/bash
# Device call D (session 3): the shipped defaults once more (compiled block regions, cuDNN-first SDPA):
# 1.5B forward + end-to-end `healda assimilate`, then `healda bench kernels` (FiLM now 8 warps, bf16 products).
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v physicsnemo) > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HEALDA_SHARED=$PWD/.gpu_shared
timeout 230 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 \
  --skip-torch-path --variants "defaults:" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^defaults' "$OUT/forward.log" | cut -c1-400; grep -E '"wall_s"|"rc"' "$OUT/forward.log" | head -2
timeout 150 python3 -m healda_cli bench kernels --n 10000000 --n 30000000 --no-torch --json > "$OUT/bench_kernels.jsonl" \
  2> "$OUT/bench_kernels.log"
echo "bench rc=$?"; python3 -c "
import json,sys
for l in open('$OUT/bench_kernels.jsonl'):
    r=json.loads(l); print(r['op'], r['N'], r['pass'], round(r['median_ms'],3), round(r.get('roofline_frac',0),3))"
