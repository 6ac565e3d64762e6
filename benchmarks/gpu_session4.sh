#!/bin/bash
# Planned device call for the next session (one H200, ~9 min): what session 3 could not measure.
#  1. kernels vs PhysicsNeMo 2.2.2 in one process (pixel attention with the split backward plan, FiLM 8 warps/bf16);
#  2. 1.5B forward: compiled block regions (default) vs whole compiled blocks, with a kernel profile;
#  3. end-to-end `healda assimilate` of one analysis (eager under the >= 16-forward compile policy).
# Carry .whl (healpy, astropy, pyerfa, astropy-iers-data, netCDF4, cftime, isal, nvidia_physicsnemo) and .gpu_shared.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl/*.whl > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HEALDA_SHARED=$PWD/.gpu_shared
timeout 240 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; tail -n 14 "$OUT/kvr.log"
timeout 300 python3 benchmarks/assimilate_h200.py --n-obs 10000000 --warmup 2 --iters 5 --skip-torch-path --profile \
  --variants "regions:;blocks:COMPILE_BLOCKS=1" --out "$OUT/forward.json" > "$OUT/forward.log" 2>&1
echo "forward rc=$?"; grep -E '^(regions|blocks) ' "$OUT/forward.log" | cut -c1-300; grep -E '"wall_s"|"rc"' "$OUT/forward.log" | head -2
