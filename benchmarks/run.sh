#!/usr/bin/env bash
# The device runner: bash benchmarks/run.sh NAME[,NAME...] [ARGS...]
#
# Installs the carried wheels into /tmp/site (.whl: project dependencies the GPU image lacks; .whl_ref:
# nvidia-physicsnemo 2.2.2; .whl_fa3: the optional fa3-fwd), puts /tmp/site and the checkout on PYTHONPATH,
# points HEALDA_SHARED at .gpu_shared (a carried copy of ../shared, for the fixture tests) and runs the named
# benchmarks in order, each in its own process, writing NAME.json and NAME.log to $OUT (default: ./bench-out).
# ARGS go to the script when one NAME is given. LIMIT_S (default 560) caps each benchmark's seconds.
#
#   kernels     benchmarks/kernels.py: pixel attention, FiLM and packing against PhysicsNeMo 2.2.2 (needs .whl_ref)
#   forward     benchmarks/forward.py: 1.5 B forward, ours (whole blocks compiled) and the reference (needs .whl_ref)
#   forward_cudnn  the same, ours only, spatial attention on cuDNN (HEALDA_SDPA=cudnn)
#   forward_fp8 the same as forward_cudnn with FP8 GEMMs in the blocks (--fp8), and their error against bf16 and fp32
#   train       benchmarks/train_step.py: 1.5 B training step, compiled blocks
#   assimilate  benchmarks/assimilate.py: healda assimilate end to end over a batch of analyses
#   osse        benchmarks/osse_gpu.sh: the OSSE demo at GPU scale (healda demo --recipe gpu, seeds 0,1; SEEDS=2)
#   tests       the GPU tests: pytest tests/kernels tests/gpu
#   multigpu    benchmarks/multigpu.py under torchrun on 1, 2, 4, 8 GPUs (those the node has; GPUS="2 4" picks):
#               DP × CP checks against one GPU, weak scaling of the 1.5 B step; merged into multigpu.json
#
# NVLink multicast stays off (NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1, NVSHMEM_DISABLE_NVLS=1).
#
# Result files record the GPU and the torch and triton versions; $OUT/gpu.txt adds nvidia-smi's view (driver).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
[ $# -ge 1 ] || { sed -n 2,22p "$0"; exit 2; }
names=$1; shift
OUT=${OUT:-$PWD/bench-out}
mkdir -p "$OUT"

wheels=()
for d in .whl .whl_ref .whl_fa3; do
  [ -d "$d" ] && wheels+=($(ls "$d"/*.whl 2>/dev/null))
done
if [ ${#wheels[@]} -gt 0 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "${wheels[@]}" > "$OUT/pip.log" 2>&1 || { echo "wheel install failed:"; tail "$OUT/pip.log"; }
fi
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
[ -d .gpu_shared ] && export HEALDA_SHARED=$PWD/.gpu_shared
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> "$OUT/gpu.txt" 2>&1

run() {  # NAME COMMAND...: run, log to $OUT/NAME.log, report the exit status
  local name=$1; shift
  echo "== $name: $*"
  timeout "${LIMIT_S:-560}" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  echo "== $name rc=$rc"
  return $rc
}

status=0
IFS=, read -ra list <<< "$names"
[ ${#list[@]} -eq 1 ] || [ $# -eq 0 ] || { echo "ARGS need a single NAME"; exit 2; }
for name in "${list[@]}"; do
  args=("$@")
  case $name in
    kernels) run kernels python3 benchmarks/kernels.py --out "$OUT" --torch-max-n 0 "${args[@]}" ;;
    forward) run forward python3 benchmarks/forward.py --out "$OUT/forward.json" "${args[@]}" ;;
    forward_cudnn) HEALDA_SDPA=cudnn run forward_cudnn python3 benchmarks/forward.py --impl ours \
                     --out "$OUT/forward_cudnn.json" "${args[@]}" ;;
    forward_fp8) HEALDA_SDPA=cudnn run forward_fp8 python3 benchmarks/forward.py --impl ours --fp8 \
                   --out "$OUT/forward_fp8.json" "${args[@]}" ;;
    train) run train python3 benchmarks/train_step.py --compile --analytic-flops --steps 3 --warmup 2 --json \
             --out "$OUT/train.json" "${args[@]}" ;;
    assimilate) run assimilate python3 benchmarks/assimilate.py --out "$OUT/assimilate.json" "${args[@]}" ;;
    multigpu)  # GPUS="1 2" limits the counts (one launch each); results of earlier calls merge with --summarize
      ngpu=$(nvidia-smi -L 2>/dev/null | wc -l); rc=0
      for k in ${GPUS:-1 2 4 8}; do
        [ "$k" -le "$ngpu" ] || continue
        run "multigpu_$k" python3 -m torch.distributed.run --standalone --nproc-per-node "$k" benchmarks/multigpu.py \
          --out "$OUT/multigpu_$k.json" "${args[@]}" || rc=1
      done
      files=("$OUT"/multigpu_[0-9]*.json)
      [ -f "${files[0]}" ] && python3 benchmarks/multigpu.py --summarize "${files[@]}" --out "$OUT/multigpu.json"
      [ $rc -eq 0 ] && [ -f "${files[0]}" ] ;;
    osse) run osse bash benchmarks/osse_gpu.sh ;;
    tests) run tests python3 -m pytest -q -p no:cacheprovider tests/kernels tests/gpu -rf "${args[@]}" ;;
    *) echo "unknown benchmark '$name' (kernels, forward, forward_cudnn, forward_fp8, train, assimilate, osse, tests, multigpu)"; false ;;
  esac || status=1
done
exit $status
