#!/bin/bash
# Device call: kernel variants side by side in one call, each in its own lab process at the same launch setting.
# A variant is a folder benchmarks/_variants/<name>/ holding the healda_core/kernels/*.py files it replaces
# (untracked files travel to the device); the working tree's own files run as "tree". For example, from main, the
# files each branch changes (rebase the branch on main first, or older copies of other files come along):
#   for b in pa-wgrad-kernel; do mkdir -p benchmarks/_variants/$b
#     for f in $(git diff --name-only main...$b -- healda_core/kernels); do
#       git show $b:$f > benchmarks/_variants/$b/$(basename $f); done; done
# Usage: bash benchmarks/gpu_variants.sh OPS "SETTING" ["SETTING" ...]   (OPS: pa, film or pa,film)
# Carry .whl.
source benchmarks/gpu_setup.sh
ops=$1; shift
for v in tree benchmarks/_variants/*/; do
  [ "$v" = "benchmarks/_variants/*/" ] && continue
  variant "$(basename "$v")"
  for s in "$@"; do lab "$ops" "$s"; done
done
variant_end
python3 benchmarks/lab_table.py "$OUT/lab.log" | cut -c1-300
