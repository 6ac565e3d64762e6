#!/bin/bash
# Device call (session 9, #4): the same-process comparison with the reference on the shipped code (eager training
# without the op dispatcher, back-to-back autotune timing, the backward's empty-pixel loop). Carry .whl, .whl_ref.
source benchmarks/gpu_setup.sh reference
timeout 400 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
python3 - "$OUT/kernels_vs_reference.json" <<'PY'
import json, sys
for e in json.load(open(sys.argv[1]))["runs"]:
    print(e["N"], {k: list(v.values()) for k, v in e["autotune"]["kernels"].items()}, e["autotune"]["tuning_seconds"])
PY
