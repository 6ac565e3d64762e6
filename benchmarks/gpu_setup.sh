# Sourced by the benchmarks/gpu_session*.sh device scripts: installs the carried wheels into /tmp/site and sets
# PYTHONPATH, PYTHONUNBUFFERED and HEALDA_SHARED (.gpu_shared, carried for the fixture tests). Wheels: .whl (the
# project's dependencies missing from the GPU image), .whl_ref (PhysicsNeMo 2.2.2, installed only by
# `source benchmarks/gpu_setup.sh reference`) and .whl_fa3 (the optional fa3-fwd) when carried; all three stay
# out of git. The device carries at most 64 MiB: .whl + .whl_fa3 + .gpu_shared fit, so do .whl + .whl_ref +
# .gpu_shared. (Until session 6 the reference wheel lay in .whl itself.)
# `lab OPS OVERRIDE` runs benchmarks/kernel_lab.py for one launch setting in its own process, into $OUT/lab.log
# (`python3 benchmarks/lab_table.py "$OUT/lab.log"` tabulates it). `variant NAME` puts the working tree's kernels
# back and lays benchmarks/_variants/NAME/*.py over them (NAME tree: the tree's own), marking $OUT/lab.log;
# `variant_end` restores the tree's kernels.
set -o pipefail
wheels=($(ls .whl/*.whl | grep -v physicsnemo))
if [ "${1:-}" = reference ]; then wheels+=($(ls .whl_ref/*.whl .whl/nvidia_physicsnemo*.whl 2>/dev/null)); fi
wheels+=($(ls .whl_fa3/*.whl 2>/dev/null))
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  "${wheels[@]}" > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HEALDA_SHARED=$PWD/.gpu_shared
lab() {  # $1 ops (pa, film, pa,film), $2 HEALDA_KERNEL_OVERRIDE, more: kernel_lab.py arguments (--set ...)
  HEALDA_KERNEL_OVERRIDE="$2" timeout 45 python3 benchmarks/kernel_lab.py --ops "$1" --profile "${@:3}" >> "$OUT/lab.log" 2>&1
  echo "lab $1 [$2] rc=$?"
}
TREE_KERNELS=$(mktemp -d) && cp healda_core/kernels/*.py "$TREE_KERNELS"/  # this call's tree (a warm machine keeps /tmp)
variant() {  # $1: tree, or a folder under benchmarks/_variants/ holding the healda_core/kernels/*.py it replaces
  cp "$TREE_KERNELS"/*.py healda_core/kernels/
  if [ "$1" != tree ]; then cp "benchmarks/_variants/$1/"*.py healda_core/kernels/; fi
  echo "--- variant $1" >> "$OUT/lab.log"
}
variant_end() { cp "$TREE_KERNELS"/*.py healda_core/kernels/; }
