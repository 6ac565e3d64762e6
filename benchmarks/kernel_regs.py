"""Registers, spills and shared memory of the Triton kernels, compiled for an H100/H200 (sm_90) without a GPU.

Compiles each kernel at the issue's layout (n_q=64, n_kv=2, d=32, F=32, bf16; FiLM meta 50, embeddings
4/16/8, hidden 64, out 32) with ptxas from the triton wheel, and prints one JSON line per launch setting from
``cuobjdump -res-usage``: registers per thread (REG), spill stack (STACK), local memory, static and dynamic
shared memory, and the CTAs per SM the register file allows (65,536 registers). Register pressure, not memory
traffic, limits these kernels on the H200 (Nsight Compute, docs/benchmarks.md), so this is the quick check
for a kernel change; the local triton may be newer than the GPU image's, so compare settings, not versions.

    python benchmarks/kernel_regs.py                      # every kernel, the default settings
    python benchmarks/kernel_regs.py --kernel pa_fwd --warps 2,4 --stages 3 --tile 32,64
    python benchmarks/kernel_regs.py --kernel film_bwd --sass   # + SASS instructions of the main loop by class

``--sass`` adds the static SASS instruction count per thread of the kernel's outermost loop (its longest
backward branch: the row-tile loop of FiLM, the pixel loop of pixel attention), by class: floating point,
integer/address, shared memory, global loads, atomics, spills, shuffles, barriers, tensor-core MMAs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile

os.environ.pop("TRITON_INTERPRET", None)  # compile for real, not the interpreter
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from healda_core.kernels import film as FI  # noqa: E402
from healda_core.kernels import film_bwd as FB  # noqa: E402
from healda_core.kernels import pixel_attn as PA  # noqa: E402

PA_CONST = dict(n_q=64, d=32, F=32, G=32, D_PAD=32, F_PAD=32, HAS_BIAS=True, DOT_PREC="ieee")
FILM_CONST = dict(M=50, E1=4, E2=16, E3=8, H=64, F=32, M_PAD=64, EMB_PAD=32, E1_PAD=16, E2_PAD=16, E3_PAD=16, H_PAD=64, F_PAD=32, HAS_PLAT=True, PREC="bf16")


def _signature(fn, ptrs: dict, floats: set, consts: dict) -> tuple[dict, dict, dict]:
    """Triton's signature, constexprs and attributes; every pointer is 16-byte aligned, as a real launch with
    PyTorch allocations specialises it (without that, loads and stores compile to single-element accesses)."""
    sig = {}
    for n in fn.arg_names:
        sig[n] = "constexpr" if n in consts else ptrs.get(n, "fp32" if n in floats else "i32")
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names) if sig[n].startswith("*")}
    return sig, {(fn.arg_names.index(k),): v for k, v in consts.items()}, attrs


def usage(fn, ptrs: dict, floats: set, consts: dict, warps: int, stages: int) -> dict:
    """Compile ``fn`` for sm_90 and read its resource usage from the cubin."""
    sig, cidx, attrs = _signature(fn, ptrs, floats, consts)
    k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=cidx, attrs=attrs),
                       target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(k.asm["cubin"])
    tool = os.path.join(os.path.dirname(triton.backends.nvidia.__file__), "bin", "cuobjdump")
    try:
        out = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
        sass = subprocess.run([tool, "-sass", f.name], capture_output=True, text=True, check=True).stdout \
            if SASS else ""
    finally:
        os.unlink(f.name)
    vals = {m[0].lower(): int(m[1]) for m in re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", out)}
    regs = vals.get("reg", 0)
    ctas = min(32, 65536 // max(1, regs * 32 * warps)) if regs else None
    res = {"regs": regs, "stack": vals.get("stack"), "local": vals.get("local"),
           "shared_static": vals.get("shared"), "shared_dynamic": k.metadata.shared, "ctas_by_regs": ctas}
    return res | ({"loop_sass": loop_classes(sass)} if SASS else {})


SASS = False
_CLASSES = {"fp": ("FADD", "FMUL", "FFMA", "FMNMX", "MUFU", "FSEL", "FSETP", "F2FP", "F2F", "HADD2", "HMUL2", "HFMA2"),
            "int": ("IMAD", "LOP3", "ISETP", "IADD3", "LEA", "SHF", "PRMT", "SGXT", "VIADD", "IABS", "IMNMX", "SEL"),
            "smem": ("STS", "LDS", "LDSM", "STSM"), "gload": ("LDG",), "gstore": ("STG",), "atomic": ("REDG", "ATOMG"),
            "spill": ("LDL", "STL"), "shfl": ("SHFL",), "bar": ("BAR",), "mma": ("HGMMA", "HMMA")}


def loop_classes(sass: str) -> dict:
    """Instruction counts of the longest loop (first backward branch target to the branch) by class."""
    ins = []
    for line in sass.splitlines():
        m = re.match(r"\s+/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_]+)(.*)", line)
        if m:
            ins.append((int(m.group(1), 16), m.group(2), m.group(3)))
    spans = [(int(t.group(1), 16), a) for a, op, rest in ins if op == "BRA"
             and (t := re.search(r"0x([0-9a-f]+)", rest)) and int(t.group(1), 16) < a]
    if not spans:
        return {}
    lo, hi = max(spans, key=lambda s: s[1] - s[0])
    body = [op for a, op, _ in ins if lo <= a <= hi]
    out = {k: sum(op in v for op in body) for k, v in _CLASSES.items()}
    return {"total": len(body), **out, "other": len(body) - sum(out.values())}


def pa(kind: str, warps: int, stages: int, tile: int) -> dict:
    ptrs = {n: "*bf16" for n in ("Q", "X", "OUT", "DOUT", "DQ", "DX", "DQT", "AC")}
    ptrs |= {n: "*fp32" for n in ("WK", "WV", "BV", "LSE", "PART")} | {n: "*i32" for n in ("SEG", "CU", "ORDER")}
    if kind == "fwd":
        fn = PA._pa_fwd_kernel
        consts = PA_CONST | dict(BLOCK_Q=64, NKV_P=2, TILE_K=tile, WRITE_LSE=False, D_EXACT=True, F_EXACT=True)
    elif kind == "wgrad":  # the weight-gradient kernel of the backward (when the backward has one)
        fn = PA._pa_wgrad_kernel
        consts = PA_CONST | dict(BLOCK_Q=64, NKV_P=2, R_PAD=32)
    else:
        fn = PA._pa_bwd_kernel
        two = kind == "bwd_kv2"  # both kv heads in one pass (the natural-layout backward only)
        consts = PA_CONST | dict(BLOCK_Q=64 if two else 32, NKV_P=2 if two else 1, TILE_K=tile, ACCUM_DX=False)
        if "KP" in fn.arg_names:  # the block-diagonal backward
            consts["KP"] = consts["NKV_P"] * consts["D_PAD"]
    consts = {k: v for k, v in consts.items() if k in fn.arg_names}
    return usage(fn, ptrs, {"qk_scale"}, consts, warps, stages)


def film(kind: str, warps: int, stages: int, block: int) -> dict:
    ptrs = {n: "*fp32" for n in ("OBS", "META", "ET", "EC", "EP", "W1", "B1", "LNW", "LNB", "W2", "B2", "GET", "GEC",
                                 "GEP", "DOBS", "DMETA", "PART", "EMB", "GEMB")}
    ptrs |= {n: "*i64" for n in ("IDT", "IDC", "IDP")} | {n: "*bf16" for n in ("OUT", "DOUT")}
    fn = {"fwd": FI._film_fwd_kernel, "bwd": FB._film_bwd_kernel}[kind]
    consts = FILM_CONST | dict(BLOCK_M=block, DEMB_ROWS=False, NEED_DOBS=False, NEED_DMETA=False)
    consts = {k: v for k, v in consts.items() if k in fn.arg_names}
    return usage(fn, ptrs, {"eps"}, consts, warps, stages)


DEFAULTS = {"pa_fwd": ([4], [3], [64]), "pa_bwd": ([2], [3], [32]), "pa_bwd_kv2": ([2], [3], [32]),
            "pa_wgrad": ([4], [3], [0]), "film_fwd": ([4], [1], [64]),
            "film_bwd": ([4], [1], [64])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernel", default=",".join(DEFAULTS), help="comma list of " + ", ".join(DEFAULTS))
    ap.add_argument("--warps", help="comma list (default: each kernel's default)")
    ap.add_argument("--stages", help="comma list")
    ap.add_argument("--tile", help="comma list: TILE_K (pixel attention) or BLOCK_M (FiLM)")
    ap.add_argument("--sass", action="store_true", help="also count the main loop's SASS instructions by class")
    a = ap.parse_args()
    global SASS
    SASS = a.sass
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    for name in a.kernel.split(","):
        w0, s0, t0 = DEFAULTS[name]
        for w, s, t in itertools.product(ints(a.warps) if a.warps else w0, ints(a.stages) if a.stages else s0,
                                         ints(a.tile) if a.tile else t0):
            op, kind = name.split("_", 1)
            try:
                res = (pa if op == "pa" else film)(kind, w, s, t)
            except Exception as ex:  # noqa: BLE001 - report and go on with the other settings
                res = {"error": f"{type(ex).__name__}: {str(ex)[:200]}"}
            print(json.dumps({"kernel": name, "num_warps": w, "num_stages": s, "tile": t, **res}), flush=True)


if __name__ == "__main__":
    main()
