#!/bin/bash
# Device call B (session 4): GPU tests (temporal kernel v2: one key frame per step; GELU epilogue test fixed);
# pixel-attention forward tile/stage sweep at 2 warps with kernel profile and host-overhead timing; 1.5B forward
# base vs fused (temporal kernel + GELU epilogue) with profile; end-to-end `healda assimilate` of one analysis.
# Carry .whl and .gpu_shared.
source benchmarks/gpu_setup.sh
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_temporal_attn.py \
  "tests/gpu/test_model_gpu.py" > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "passed|failed|^FAILED|^E  " "$OUT/pytest.log" | head -8
for ov in "num_warps=2,TILE_K=64,num_stages=2" "num_warps=2,TILE_K=32,num_stages=2" "num_warps=2,TILE_K=16,num_stages=2" \
          "num_warps=2,TILE_K=32,num_stages=1" "num_warps=2,TILE_K=32,num_stages=3" "num_warps=2,TILE_K=64,num_stages=3" \
          "num_warps=2,TILE_K=128,num_stages=2"; do
  HEALDA_KERNEL_OVERRIDE="$ov" timeout 45 python3 benchmarks/kernel_lab.py --ops pa --profile >> "$OUT/lab.log" 2>&1
  echo "lab [$ov] rc=$?"
done
grep '^LAB ' "$OUT/lab.log" | python3 -c "
import sys, json
for l in sys.stdin:
    d = json.loads(l[4:]); p = dict(d.get('pa_profile', []))
    print(d['override'], 'fwd', round(d.get('pa_fwd_ms', -1), 3), 'fwdbwd', round(d.get('pa_fwdbwd_ms', -1), 3),
          'kern fwd', p.get('_pa_fwd_kernel'), 'bwd', p.get('_pa_bwd_kernel'), 'host_us', d.get('pa_fwd_host_us'),
          'stream', d.get('pa_fwd_stream_ms'), 'err', round(d.get('pa_err', {}).get('out', -1), 5), d.get('pa_error', ''))"
V="base:HEALDA_TEMPORAL_KERNEL=0,HEALDA_GELU_EPILOGUE=0;fused:"
timeout 330 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path \
  --profile --variants "$V" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^(base|fused) ' "$OUT/forward.log" | cut -c1-260
grep -E '^ +[0-9.]+ ms' "$OUT/forward.log" | head -16
python3 -c "
import json; d = json.load(open('$OUT/forward.json')); a = d.get('assimilate', {})
print('assimilate', {k: a.get(k) for k in ('wall_s', 'rc', 'n_analyses', 'forward_s', 'output_mb')}, a.get('stderr_tail', '')[-400:] if a.get('rc') else '')"
