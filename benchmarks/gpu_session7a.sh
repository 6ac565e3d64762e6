#!/bin/bash
# Device call (branch kernel-experiments-s7): kernels specialised on their widths (FiLM M, E1–E3, H, F and pixel
# attention n_q, d, F as tl.constexpr). Offline (benchmarks/kernel_regs.py, sm_90): FiLM forward 185 → 170
# registers, FiLM backward spills 1,544 → 792 bytes, pixel-attention forward 140 → 128 registers (3 → 4 CTAs per
# SM at 4 warps). Labs at the shipped defaults (compare with benchmarks/results/kernel_lab_h200_2026-11-29_s6*.jsonl:
# FiLM kernels 2.76 / 8.76 ms, pixel attention 0.83 / 2.64 ms at 10 M), then the same-process comparison (GPU tests:
# gpu_session7b.sh). Merge only if faster and the tests pass. Carry .whl, .whl_ref and
# .gpu_shared.
source benchmarks/gpu_setup.sh reference
lab film "num_warps=8,BLOCK_M=128,num_stages=2,PROGS_PER_SM=2"
lab film "num_warps=8,BLOCK_M=128,num_stages=1,PROGS_PER_SM=4"
lab film "num_warps=8,BLOCK_M=64,num_stages=1,PROGS_PER_SM=8"
lab pa "TILE_K=64,num_warps=4,num_stages=3,PROGS_PER_SM=8,KV=2"
lab pa "TILE_K=64,num_warps=4,num_stages=3,PROGS_PER_SM=16,KV=2"
lab pa "TILE_K=32,num_warps=2,num_stages=3,PROGS_PER_SM=32,KV=2"
lab pa "TILE_K=32,num_warps=2,num_stages=3,PROGS_PER_SM=32,KV=1"
python3 benchmarks/lab_table.py "$OUT/lab.log"
timeout 200 python3 benchmarks/kernels_vs_reference.py --out "$OUT" --torch-max-n 0 > "$OUT/kvr.log" 2>&1
echo "kernels_vs_reference rc=$?"; grep -E "speed-up|N=" "$OUT/kvr.log" | tail -n 14
# GPU tests: benchmarks/gpu_session7b.sh (a second call: they take ~6 min)
