#!/bin/bash
# Device call E (session 3): FiLM launch settings at 8 warps and a one-kv-head-per-launch pixel attention (lab,
# one process each), then the 1.5B training step with compiled, selectively checkpointed blocks.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  $(ls .whl/*.whl | grep -v physicsnemo) > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
for spec in "num_warps=8,BLOCK_M=128,PROGS_PER_SM=2|film|" "num_warps=8,BLOCK_M=64,PROGS_PER_SM=4|film|" \
            "num_warps=8,BLOCK_M=32,PROGS_PER_SM=8|film|" "num_warps=2|pa|32"; do
  IFS='|' read -r ov ops mbq <<< "$spec"
  HEALDA_KERNEL_OVERRIDE="$ov" timeout 30 python3 benchmarks/kernel_lab.py --ops "$ops" \
    ${mbq:+--pa-max-block-q $mbq} >> "$OUT/lab.log" 2>&1
  echo "lab [$spec] rc=$?"
done
grep '^LAB ' "$OUT/lab.log" | cut -c1-330
timeout "${TRAIN_S:-200}" python3 benchmarks/train_step_h200.py --json --steps 3 --warmup 2 --compile --analytic-flops \
  > "$OUT/train_step.json" 2> "$OUT/train_step.log"
echo "train rc=$?"; tail -c 900 "$OUT/train_step.json"; grep -E "^step|Error|error" "$OUT/train_step.log" | tail -8
