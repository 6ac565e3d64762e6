# Sourced by the benchmarks/gpu_session*.sh device scripts: installs the carried wheels (.whl) into /tmp/site and
# sets PYTHONPATH, PYTHONUNBUFFERED and HEALDA_SHARED (.gpu_shared, carried for the fixture tests).
# `source benchmarks/gpu_setup.sh` skips the reference wheel; `source benchmarks/gpu_setup.sh reference` adds it.
# `lab OPS OVERRIDE` runs benchmarks/kernel_lab.py for one launch setting in its own process, into $OUT/lab.log
# (`python3 benchmarks/lab_table.py "$OUT/lab.log"` tabulates it).
set -o pipefail
if [ "${1:-}" = reference ]; then wheels=(.whl/*.whl); else wheels=($(ls .whl/*.whl | grep -v physicsnemo)); fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  "${wheels[@]}" > "$OUT/pip.log" 2>&1 || tail "$OUT/pip.log"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HEALDA_SHARED=$PWD/.gpu_shared
lab() {  # $1 ops (pa, film, pa,film), $2 HEALDA_KERNEL_OVERRIDE
  HEALDA_KERNEL_OVERRIDE="$2" timeout 45 python3 benchmarks/kernel_lab.py --ops "$1" --profile >> "$OUT/lab.log" 2>&1
  echo "lab $1 [$2] rc=$?"
}
