#!/bin/bash
# Device call (prepared in session 11 on branch pa-wgrad-kernel, for #4): the pixel-attention backward with its
# weight gradients in a second kernel (_pa_wgrad_kernel; per-pixel dq̃ and Σp·x stored to two scratch buffers)
# against main's kernels, alternating, same call; then the pixel-attention and launch GPU tests on the branch.
# Offline (kernel_regs.py --sass, Triton 3.6): the backward's per-pixel loop 2,341 -> 1,860 instructions, spill
# instructions 60 -> 4; the weight-gradient kernel 101 registers, 106 instructions per slot and head.
# Before the call, from the branch (untracked files travel to the device):
#   mkdir -p benchmarks/_variants/main && for f in pixel_attn pixel_attn_op; do
#     git show main:healda_core/kernels/$f.py > benchmarks/_variants/main/$f.py; done
# Carry .whl, .gpu_shared.
source benchmarks/gpu_setup.sh
P="TILE_K=32,num_warps=2,num_stages=3,KV=2,PROGS_PER_SM=16"
for v in tree main tree main; do variant $v; lab pa "$P"; done
variant_end
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-300
HEALDA_AUTOTUNE=off timeout 230 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_launch.py \
  tests/kernels/test_pixel_attn.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -E "FAILED|^E  |passed|failed" "$OUT/pytest.log" | head -12
