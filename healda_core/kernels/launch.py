"""A leaner launch of the Triton kernels: the compiled kernel, looked up once, called through its launcher.

``kernel[grid](*args, **kw)`` costs host time on every call: Triton binds the arguments, specialises each
one, builds a cache key, reads its runtime settings and only then calls the compiled kernel's launcher: tens
of µs per launch that the GPU waits for when a call starts on an idle stream. :func:`launch` keeps the
compiled kernel per *specialisation key* and calls its launcher directly.

The key mirrors what Triton specialises on, finer where in doubt: for a tensor its dtype and whether its
address is a multiple of 16; for an int whether it is 1, a multiple of 16, and its width (i32 / i64 / u64);
every other argument (constexprs, launch options) by value; plus the kernel and the device. A key seen for the
first time goes through Triton's own ``warmup`` (which compiles or finds the kernel) and the kernel then runs
through the same launcher. Anything unusual falls back to ``kernel[grid]``: the CPU interpreter, launch hooks
(profilers), a Triton whose compiled-kernel interface differs, or :data:`FAST` set to False.
"""

from __future__ import annotations

import os

import torch
import triton

_CACHE: dict = {}  # key -> (compiled kernel's launcher, function handle, packed metadata, names of the arguments)
_I32 = (-(2**31), 2**31)
_U64 = 2**63


def _spec(a) -> object:  # noqa: ANN001 - any kernel argument
    if isinstance(a, torch.Tensor):
        return a.dtype, a.data_ptr() % 16 == 0
    t = type(a)
    if t is int:
        return "i", a == 1, a % 16 == 0, (_I32[0] <= a < _I32[1]) + (a >= _U64) * 2
    if t is float:
        return "f"
    return t, a  # None, bools, strings, dtypes: by value


FAST = True  # False: every launch goes through ``kernel[grid]`` (tests compare the two)


def _enabled() -> bool:
    if not FAST:
        return False
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        return False
    rt = getattr(getattr(triton, "knobs", None), "runtime", None)
    return rt is not None and _no_hook(rt.launch_enter_hook) and _no_hook(rt.launch_exit_hook)


def _no_hook(h) -> bool:  # noqa: ANN001 - None, or Triton 3.6's (empty) HookChain
    return h is None or (isinstance(getattr(h, "calls", None), list) and not h.calls)


def _compiled(kernel, grid: tuple, args: tuple, kw: dict):  # noqa: ANN001, ANN202
    """(launcher, function, packed metadata, argument order) of the kernel these arguments select, or None."""
    try:
        ck = kernel.warmup(*args, grid=grid, **kw)
        if hasattr(ck, "result"):
            ck = ck.result()
        run = ck.run  # loads the module (sets ``function``) on first access
        names = list(kernel.arg_names)
        return run, ck.function, ck.packed_metadata, names
    except Exception:  # noqa: BLE001 - another Triton: use the ordinary launch from now on
        return None


def launch(kernel, grid: tuple, *args, **kw) -> None:  # noqa: ANN001, ANN002, ANN003
    """``kernel[grid](*args, **kw)`` with less host time (same kernel, same arguments, same stream)."""
    if not _enabled():
        kernel[grid](*args, **kw)
        return
    dev = torch.cuda.current_device()
    key = (kernel, dev, tuple(map(_spec, args)), tuple(kw.items()))
    hit = _CACHE.get(key)
    if hit is None:
        hit = _CACHE[key] = _compiled(kernel, grid, args, kw) or False
    if hit is False:
        kernel[grid](*args, **kw)
        return
    run, function, meta, names = hit
    full = args + tuple(kw[n] for n in names[len(args):])  # the signature's order, constexprs included
    g = tuple(grid) + (1, 1)
    run(g[0], g[1], g[2], torch._C._cuda_getCurrentRawStream(dev), function, meta, None, None, None, *full)
