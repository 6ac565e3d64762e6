#!/bin/bash
# Device call (session 11, #4): host time before the forward kernel in grad mode (timelines with and without
# Python's garbage collector, cProfile of the forward alone), then the GPU tests of the merged FiLM kernels
# (fast sigmoid, tensor-core column sums, 2-stage forward), the lean launch and the kernel model vs the fixture.
# Carry .whl, .gpu_shared.
source benchmarks/gpu_setup.sh
timeout 90 python3 benchmarks/host_timeline.py --ops pa,film --cprofile 28 > "$OUT/timeline.log" 2>&1
echo "timeline rc=$?"; grep TIMELINE "$OUT/timeline.log" | cut -c1-900
timeout 60 python3 benchmarks/host_timeline.py --ops pa,film --no-gc > "$OUT/timeline_nogc.log" 2>&1
echo "timeline no-gc rc=$?"; grep TIMELINE "$OUT/timeline_nogc.log" | cut -c1-900
timeout 330 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_film.py tests/kernels/test_launch.py \
  tests/kernels/test_model_gpu.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12
