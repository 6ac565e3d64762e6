"""Side-by-side: healda's Triton kernels vs PhysicsNeMo 2.2.2's, same process, same inputs (GPU only).

Workload of the kernels issue: bf16; n_q=64, n_kv=2, d=32, F=32; P = 98,304 pixels, 35% empty, lognormal
counts; N = 10M and 30M. Medians of CUDA-event timings after warm-up and after autotuning (ours: our
tuner; reference: its 36-config autotuner, configs compiled in parallel by benchmarks/reference).
Also: packing (``prepare_obs_context``) on the same raw observations, the GPU counting sort against a stable
``torch.sort``, and the errors of both sides against the fp32 PyTorch path (``--torch-max-n``: largest N for it).
Needs ``nvidia-physicsnemo==2.2.2`` importable (benchmarks/run.sh installs it from ``.whl_ref``); writes
OUTDIR/kernels.json.

    python benchmarks/kernels.py --out OUTDIR [--ns 10000000,30000000] [--torch-max-n 0]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks", "reference"))

import torch

R: dict = {"env": {}, "runs": [], "errors": {}}
OUT = "."


def save() -> None:
    tmp = os.path.join(OUT, "kernels.json.tmp")
    with open(tmp, "w") as f:
        json.dump(R, f, indent=1, default=str)
    os.replace(tmp, os.path.join(OUT, "kernels.json"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def relerr(a, b) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def maxrel(a, b) -> float:
    a, b = a.float(), b.float()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def env() -> None:
    import triton

    e = R["env"]
    e.update(torch=torch.__version__, triton=triton.__version__, cuda=torch.version.cuda,
             gpu=torch.cuda.get_device_name(), sms=torch.cuda.get_device_properties(0).multi_processor_count)
    try:
        e["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm",
                                          "--format=csv,noheader"], capture_output=True, text=True,
                                         timeout=20).stdout.strip()
    except Exception as ex:  # noqa: BLE001
        e["nvidia_smi"] = f"failed: {ex}"
    try:
        import harness

        harness.install()
        import physicsnemo

        e["physicsnemo"] = physicsnemo.__version__
    except Exception as ex:  # noqa: BLE001
        e["physicsnemo"] = f"import failed: {ex}"
    log(f"env {e}")


def reference_modules():
    import argparse as ap

    import harness as H

    H.install()
    from physicsnemo.experimental.models.healda import ObsTokenizerFiLM as RefFiLM
    from physicsnemo.experimental.models.healda import prepare_obs_context as ref_prepare
    from physicsnemo.experimental.models.healda.kernels import pixel_attention as pam

    H.ARGS = ap.Namespace(parallel_compile=1, threads=14, smoke=False)
    for name, t in (("fwd", pam._pixel_attn_gqa_fwd), ("bwd", pam._pixel_attn_gqa_bwd)):
        H.install_parallel_precompile(name, t, 14)
    return pam, RefFiLM, ref_prepare


def run_n(n: int, pam, RefFiLM, ref_prepare, do_torch: bool) -> None:
    from healda_core.bench import kernels as B
    from healda_core.kernels import tuning
    from healda_core.kernels.pixel_attn_op import pixel_attention as ours_pa
    from healda_core.model.film import ObsTokenizerFiLM
    from healda_core.model.ragged import ragged_attention_torch
    from healda_core.obs.context import prepare_obs_context

    P = 98_304
    ent = {"N": n, "P": P}
    R["runs"].append(ent)
    # ---- packing (raw unsorted observations -> context), same raw tensors
    raw = B.raw_obs(n, P)
    t0 = time.perf_counter()
    ctx = prepare_obs_context(**raw, total_pixels=P)
    torch.cuda.synchronize()
    ent["packing_first_s"] = time.perf_counter() - t0
    rctx = ref_prepare(**raw, total_pixels=P, build_group_map=True)
    ent["packing_cu_equal"] = bool(torch.equal(ctx.cu_seqlens_k, rctx.cu_seqlens_k))
    ent["packing_ours"] = B.time_ms(lambda: prepare_obs_context(**raw, total_pixels=P), reps=10)  # noqa: F821 - deleted after use
    ent["packing_ref"] = B.time_ms(lambda: ref_prepare(**raw, total_pixels=P, build_group_map=True), reps=10)  # noqa: F821 - deleted after use
    from healda_core.kernels.packing import counting_sort
    ent["counting_sort_ours"] = B.time_ms(lambda: counting_sort(raw["flat_idx"], P), reps=10)  # noqa: F821 - deleted after use
    ent["stable_torch_sort"] = B.time_ms(lambda: torch.sort(raw["flat_idx"], stable=True), reps=10)  # noqa: F821 - deleted after use
    log(f"N={n} packing ours {ent['packing_ours']['median_ms']:.3f} ms ref {ent['packing_ref']['median_ms']:.3f} ms; "
        f"counting sort {ent['counting_sort_ours']['median_ms']:.3f} ms")
    gm = rctx.group_map
    del raw, ctx, rctx
    save()

    # ---- pixel attention
    inp = B.pa_inputs(n, P)
    cu, mx = inp["cu"], inp["maxlen"]
    scale = 1 / math.sqrt(32)
    st = B.pa_model(n, P, inp["nonempty"])
    ent["pa_model"] = st
    ent["max_seqlen_k"] = mx

    def ours(q, x, wk, wv, bv):
        return ours_pa(q, x, wk, wv, bv, cu, mx, scale)

    def ref(q, x, wk, wv, bv):
        return pam.pixel_attention(q, x, wk, wv, cu, mx, n_kv_heads=2, scale=scale, B_k=None, B_v=bv,
                                   group_map=ref_gm)

    ref_gm = gm  # the reference's own group map (same counts: raw_obs and pa_inputs share the seed)
    args = [inp[k] for k in ("q", "tokens", "wk", "wv", "bv")]
    for name, fn in (("ours", ours), ("ref", ref)):
        t0 = time.perf_counter()
        leaves = [a.detach().clone().requires_grad_() for a in args]
        o = fn(*leaves)
        torch.autograd.grad(o, leaves, inp["dout"])
        torch.cuda.synchronize()
        ent[f"pa_{name}_first_fwd_bwd_s"] = time.perf_counter() - t0
        del o, leaves
    with torch.no_grad():
        o1, o2 = ours(*args), ref(*args)
    ent["pa_ours_vs_ref_rel_l2"] = relerr(o1, o2)
    ent["pa_ours_vs_ref_maxrel"] = maxrel(o1, o2)
    if do_torch:
        with torch.no_grad():
            o3 = ragged_attention_torch(*[a.float() for a in args], cu, scale)
        ent["pa_ours_vs_torch_fp32_maxrel"] = maxrel(o1, o3)
        ent["pa_ref_vs_torch_fp32_maxrel"] = maxrel(o2, o3)
        leaves = [a.detach().float().clone().requires_grad_() for a in args]
        g_t = torch.autograd.grad(ragged_attention_torch(*leaves, cu, scale), leaves, inp["dout"].float())
        del o3
        for name, fn in (("ours", ours), ("ref", ref)):
            lv = [a.detach().clone().requires_grad_() for a in args]
            g = torch.autograd.grad(fn(*lv), lv, inp["dout"])
            ent[f"pa_{name}_grad_maxrel_vs_torch_fp32"] = [maxrel(a, b) for a, b in zip(g, g_t)]
        del g_t, leaves, lv, g
    del o1, o2
    torch.cuda.empty_cache()
    ent["pa_ours"] = B.bench_pixel_attention(ours, inp, "healda-triton", reps=10)
    ent["pa_ref"] = B.bench_pixel_attention(ref, inp, "physicsnemo-2.2.2", reps=10)
    if do_torch:
        ent["pa_torch"] = B.bench_pixel_attention(lambda *a: ragged_attention_torch(*a, cu, scale), inp, "pytorch",
                                                  reps=3)
    for k in ("pa_ours", "pa_ref"):
        f, fb = ent[k][0]["median_ms"], ent[k][1]["median_ms"]
        log(f"N={n} {k}: fwd {f:.3f} ms fwd+bwd {fb:.3f} ms (roofline {ent[k][1]['roofline_frac']:.2f})")
    ent["pa_speedup_fwd"] = ent["pa_ref"][0]["median_ms"] / ent["pa_ours"][0]["median_ms"]
    ent["pa_speedup_fwd_bwd"] = ent["pa_ref"][1]["median_ms"] / ent["pa_ours"][1]["median_ms"]
    log(f"N={n} pixel attention speed-up fwd {ent['pa_speedup_fwd']:.2f}x fwd+bwd {ent['pa_speedup_fwd_bwd']:.2f}x")
    del inp, args
    torch.cuda.empty_cache()
    save()

    # ---- FiLM tokenizer
    x = B.film_inputs(n)
    mod = ObsTokenizerFiLM(**B.FILM).cuda()
    rmod = RefFiLM(use_fused_mlp=True, **B.FILM).cuda()
    rmod.load_state_dict(mod.state_dict())

    def f_ours(*a):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return mod(*a)  # noqa: F821 - deleted after use

    def f_ref(obs, meta, t, c, p):
        return rmod(obs=obs, float_metadata=meta, obs_type=t, channel_ids=c, platform_ids=p)  # noqa: F821 - deleted after use

    a = [x[k] for k in ("obs", "float_metadata", "obs_type", "channel", "platform")]
    with torch.no_grad():
        o1, o2 = f_ours(*a), f_ref(*a)
        o3 = mod.forward_torch(*a)
    ent["film_ours_vs_torch_fp32_maxrel"] = maxrel(o1, o3)
    ent["film_ref_vs_torch_fp32_maxrel"] = maxrel(o2, o3)
    ent["film_out_dtypes"] = [str(o1.dtype), str(o2.dtype)]
    del o1, o2, o3
    ent["film_ours"] = B.bench_film(f_ours, list(mod.parameters()), x, "healda-triton", reps=10)
    ent["film_ref"] = B.bench_film(f_ref, list(rmod.parameters()), x, "physicsnemo-2.2.2", reps=5)
    ent["film_speedup_fwd"] = ent["film_ref"][0]["median_ms"] / ent["film_ours"][0]["median_ms"]
    ent["film_speedup_fwd_bwd"] = ent["film_ref"][1]["median_ms"] / ent["film_ours"][1]["median_ms"]
    log(f"N={n} FiLM ours fwd {ent['film_ours'][0]['median_ms']:.3f} fwd+bwd {ent['film_ours'][1]['median_ms']:.3f}; "
        f"ref fwd {ent['film_ref'][0]['median_ms']:.3f} fwd+bwd {ent['film_ref'][1]['median_ms']:.3f}; "
        f"speed-up {ent['film_speedup_fwd']:.2f}x / {ent['film_speedup_fwd_bwd']:.2f}x")
    del x, mod, rmod
    torch.cuda.empty_cache()
    ent["autotune"] = tuning.report()
    save()


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--ns", default="10000000,30000000")
    ap.add_argument("--torch-max-n", type=int, default=10_000_000)
    args = ap.parse_args()
    OUT = args.out
    os.makedirs(OUT, exist_ok=True)
    env()
    save()
    pam, RefFiLM, ref_prepare = reference_modules()
    for n in [int(v) for v in args.ns.split(",")]:
        try:
            run_n(n, pam, RefFiLM, ref_prepare, n <= args.torch_max_n)
        except Exception as ex:  # noqa: BLE001 - keep the other sizes
            R["errors"][str(n)] = traceback.format_exc()[-4000:]
            log(f"N={n} failed: {ex}")
        torch.cuda.empty_cache()
        save()
    summary = []
    for e in R["runs"]:
        s = {k: e.get(k) for k in ("N", "pa_speedup_fwd", "pa_speedup_fwd_bwd", "film_speedup_fwd",
                                   "film_speedup_fwd_bwd")}
        for k in ("pa_ours", "pa_ref", "film_ours", "film_ref"):
            if k in e:
                s[k] = [round(r["median_ms"], 3) for r in e[k]]
        for k in ("packing_ours", "packing_ref", "counting_sort_ours"):
            if k in e:
                s[k] = round(e[k]["median_ms"], 3)
        summary.append(s)
    R["summary"] = summary
    save()
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
