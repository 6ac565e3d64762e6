#!/bin/bash
# Device call (session 10, #4): the lean kernel launch (healda_core/kernels/launch.py) on and off in single-call
# timelines; GPU tests of the launch, FiLM and the kernel model; the same-process comparison with the reference.
# Carry .whl, .whl_ref, .gpu_shared.
source benchmarks/gpu_setup.sh reference
tl() { HEALDA_FAST_LAUNCH=$1 timeout 60 python3 benchmarks/host_timeline.py --ops pa,film > "$OUT/tl.tmp" 2>&1
       echo "timeline fast-launch=$1 rc=$?"; cat "$OUT/tl.tmp" >> "$OUT/timeline.log"; grep TIMELINE "$OUT/tl.tmp" | cut -c1-700; }
tl on; tl off; tl on
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_launch.py tests/kernels/test_film.py \
  tests/kernels/test_model_gpu.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12
timeout 200 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
