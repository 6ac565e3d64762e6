#!/bin/bash
# Device call (#5): the 1.5 B forward side by side with the reference, in one call on one GPU: ours as
# `healda assimilate` runs it under HEALDA_COMPILE=tuned with FlashAttention-3 installed (whole blocks compiled,
# coordinate-descent tuning; 979.0 ms in gpu_session8a), then PhysicsNeMo 2.2.2's VideoHealDA on the same
# workload size (benchmarks/reference_forward_h200.py), then ours with cuDNN (the default install) under the same
# compile mode. Carry .whl, .whl_ref and .whl_fa3.
source benchmarks/gpu_setup.sh reference
unset HEALDA_SDPA
fwd() {  # $1 name, $2 environment (set before the model is built: compile options are read then), $3 timeout
  env $2 timeout "$3" python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 9 --skip-torch-path \
    --skip-assimilate --variants "$1:COMPILE_BLOCKS=1" --out "$OUT/forward_$1.json" > "$OUT/forward_$1.log" 2>&1
  echo "$1 rc=$?"; grep -E "^$1 " "$OUT/forward_$1.log" | cut -c1-330
}
fwd fa3_tuned_blocks "HEALDA_COMPILE=tuned" 200
timeout 230 python3 benchmarks/reference_forward_h200.py --n-obs 10000000 --iters 9 --out "$OUT/ref_forward.json" \
  > "$OUT/ref_forward.log" 2>&1
echo "reference rc=$?"; grep -E "^reference_forward" "$OUT/ref_forward.log" | cut -c1-400 || tail -5 "$OUT/ref_forward.log"
fwd cudnn_tuned_blocks "HEALDA_SDPA=cudnn HEALDA_COMPILE=tuned" 150
