#!/bin/bash
# Device call E (session 4, last ~3 min): packing with fewer host syncs and int32 index_select gathers, vs
# PhysicsNeMo 2.2.2 in one process; the GPU packing tests. Carry .whl (with nvidia_physicsnemo).
source benchmarks/gpu_setup.sh reference
timeout 85 python3 benchmarks/packing_vs_reference.py > "$OUT/packing.jsonl" 2> "$OUT/packing.log"
echo "packing rc=$?"; cat "$OUT/packing.jsonl"; tail -n 3 "$OUT/packing.log"
timeout 40 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_packing.py tests/obs/test_context.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; tail -n 2 "$OUT/pytest.log"
