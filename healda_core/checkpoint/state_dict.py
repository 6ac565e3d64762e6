"""State dicts against the model: configuration resolution, key/shape/dtype validation, prefixes, casts."""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from healda_core.checkpoint.format import FREQS_KEY
from healda_core.errors import CheckpointError

_PREFIXES = ("module.", "_orig_mod.")
#: the floating dtypes a checkpoint may hold (the healda format stores float32 or bfloat16)
WEIGHT_DTYPES = (torch.float32, torch.bfloat16)


def resolve_config(config: dict[str, Any], where: object,
                   shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """Fill defaults, refuse unknown keys and values outside :mod:`~healda_core.model.config_rules`, check
    agreement with the checkpoint's tensor ``shapes`` (when given), then build the model without allocating its
    parameters."""
    from healda_core.model.config_rules import config_problems, tensor_problems
    from healda_core.model.healda import default_config

    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: model configuration must be a JSON object, got {type(config).__name__}")
    defaults = default_config()
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise CheckpointError(f"{where}: unknown model configuration keys: {', '.join(unknown)}")
    full = {**defaults, **config}
    problems = config_problems(full)
    if problems:
        raise CheckpointError(f"{where}: invalid model configuration: {_join(problems)}")
    problems = tensor_problems(full, shapes or {})
    if problems:
        raise CheckpointError(f"{where}: the model configuration does not match the tensors: {_join(problems)}")
    try:
        _build(full)
    except (TypeError, ValueError, ZeroDivisionError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: invalid model configuration: {exc}") from None
    return full


def _join(problems: list[str], n: int = 4) -> str:
    return "; ".join(problems[:n]) + (f" (and {len(problems) - n} more)" if len(problems) > n else "")


_PARAMETER_FACTORIES = (torch.empty, torch.randn, torch.rand)  # what modules make their parameters with


class _Unallocated(TorchFunctionMode):
    """Parameters allocated on ``meta`` and never initialised; the small buffers computed in ``__init__`` stay on
    the CPU. The same module tree and shapes as a build under ``torch.device("meta")``, without PyTorch's Python
    meta kernels (``torch.arange`` on meta imports the compiler stack: 1–2 s of every process's first load)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _PARAMETER_FACTORIES and kwargs.get("device") is None:
            return func(*args, **{**kwargs, "device": "meta"})
        t = args[0] if args else kwargs.get("tensor")
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.startswith("__") and isinstance(t, torch.Tensor) and t.is_meta:
            return t  # in-place initialisation of an unallocated parameter
        return func(*args, **kwargs)


def _build(config: dict[str, Any]):
    """``HealDA(**config)`` with unallocated parameters (:class:`_Unallocated`): for checks and shapes only."""
    from healda_core.model.healda import HealDA

    with _Unallocated():
        return HealDA(**config)


def strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove leading ``module.``/``_orig_mod.`` (any order, repeated) and PhysicsNeMo ``device_buffer``."""
    out = {}
    for k, v in sd.items():
        key = k
        changed = True
        while changed:
            changed = False
            for p in _PREFIXES:
                if key.startswith(p):
                    key, changed = key[len(p):], True
        if key.endswith("device_buffer") and v.numel() == 0:
            continue
        if key in out:
            raise CheckpointError(f"duplicate key {key!r} after stripping module./_orig_mod. prefixes")
        out[key] = v
    return out


def expected_freqs(noise_channels: int, max_positions: int = 10000) -> torch.Tensor:
    """``map_noise.freqs`` by its formula (ARCHITECTURE §3.3), float32."""
    half = noise_channels // 2
    k = torch.arange(half, dtype=torch.float32) / max(half - 1, 1)
    return (1.0 / max_positions) ** k


def short_list(names: list[str], n: int = 8) -> str:
    """The first ``n`` names, then how many in all."""
    return ", ".join(names[:n]) + (f", … ({len(names)} in all)" if len(names) > n else "")


def validate_state_dict(sd: dict[str, torch.Tensor], config: dict[str, Any], where: object) -> dict[str, torch.Tensor]:
    """Check ``sd`` against the model built from ``config``: key set, shapes, floating dtypes, freqs values.

    Returns the state_dict with ``map_noise.freqs`` added (from its formula) when it was absent.
    """
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{where}: entry {k!r} is a {type(v).__name__}, not a tensor")
    ref = _build(config).state_dict()
    sd = dict(sd)
    freqs = expected_freqs(int(config["noise_channels"]))
    if FREQS_KEY not in sd:
        sd[FREQS_KEY] = freqs
    missing = [k for k in ref if k not in sd]
    unknown = [k for k in sd if k not in ref]
    problems = []
    if missing:
        problems.append(f"missing keys: {short_list(missing)}")
    if unknown:
        problems.append(f"unexpected keys: {short_list(unknown)}")
    bad = [f"{k} {tuple(sd[k].shape)} (model {tuple(ref[k].shape)})" for k in ref if k in sd
           and tuple(sd[k].shape) != tuple(ref[k].shape)]
    if bad:
        problems.append(f"shape mismatches: {short_list(bad)}")
    nonfloat = [f"{k} ({sd[k].dtype})" for k in ref if k in sd and not sd[k].is_floating_point()]
    if nonfloat:
        problems.append(f"non-floating tensors: {short_list(nonfloat)}")
    odd = [f"{k} ({sd[k].dtype})" for k in ref if k in sd and sd[k].is_floating_point()
           and sd[k].dtype not in WEIGHT_DTYPES]
    if odd:
        problems.append(f"floating tensors neither float32 nor bfloat16: {short_list(odd)}")
    if problems:
        raise CheckpointError(f"{where}: state_dict does not match the model configuration: " + "; ".join(problems))
    got = sd[FREQS_KEY].float().cpu()
    if not torch.allclose(got, freqs, rtol=1e-6, atol=0.0):
        raise CheckpointError(f"{where}: {FREQS_KEY} differs from its formula (1e-4)^(k/(n/2-1)) "
                              f"(max abs diff {float((got - freqs).abs().max()):.3g})")
    sd[FREQS_KEY] = freqs  # canonical float32 values
    bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]  # on the tensors' device
    if bad:
        raise CheckpointError(f"{where}: tensor {bad[0]!r} has NaN or infinite values")
    return {k: sd[k] for k in ref}  # model order


def cast_state_dict(sd: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Cast floating tensors to ``dtype`` (``map_noise.freqs`` stays float32)."""
    return {k: v if k == FREQS_KEY or not v.is_floating_point() else v.to(dtype) for k, v in sd.items()}
