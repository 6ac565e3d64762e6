#!/bin/bash
# Device call: GPU tests of the code changed since the last full GPU run (session 7): the attention-backend choice
# (refactored; FlashAttention-3 installed), compiled whole blocks and the pixel-attention op under torch.compile
# (plan_heads no longer memoised while tracing), then tests/gpu, the tuning cache and packing.
# Carry .whl, .whl_fa3 and .gpu_shared.
source benchmarks/gpu_setup.sh
unset HEALDA_SDPA HEALDA_COMPILE
timeout 520 python3 -m pytest -v -p no:cacheprovider tests/model/test_attention_backends.py \
  tests/kernels/test_compiled_blocks.py "tests/kernels/test_pixel_attn.py::test_opcheck" \
  "tests/kernels/test_pixel_attn.py::test_torch_compile" \
  "tests/kernels/test_pixel_attn.py::test_inference_call_skips_the_op_dispatcher_and_matches" \
  "tests/kernels/test_pixel_attn.py::test_inference_mode_inputs_are_scheduled_every_call" \
  tests/gpu tests/kernels/test_tuning.py tests/kernels/test_packing.py > "$OUT/pytest.log" 2>&1
echo "pytest rc=$?"; grep -cE " PASSED" "$OUT/pytest.log"; grep -E " FAILED| SKIPPED|^E  |passed|failed" "$OUT/pytest.log" | head -14
