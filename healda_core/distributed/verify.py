"""Equivalence checks of distributed runs against one process: context-parallel forward and gradients, and one
training step of the Trainer under a DP × CP layout.

Used by the 2-process gloo tests (``tests/distributed``) and by the NCCL benchmark ``benchmarks/multigpu.py``.
Every rank computes its one-process reference itself (no collectives), runs its share of the distributed
computation, and reports the largest differences; the caller decides the tolerance.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from jaxtyping import Float, Int
from torch import Tensor

from healda_core.distributed.context_parallel import enable_context_parallel, local_frames
from healda_core.obs.context import ObsContext, prepare_obs_context


def randomize_zero_params(model: torch.nn.Module, seed: int = 1) -> None:
    """Fill all-zero parameters (adaLN-Zero, zero biases) with N(0, 0.2²) so no block is an identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_((torch.randn(p.shape, generator=g) * 0.2).to(p.device))


def random_batch(model, b: int = 2, n_obs: int = 300, seed: int = 0,
                 device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """Random inputs x (B, C_in, T, X), t (B,), second_of_day and day_of_year (B, T) and raw observations
    (``obs`` (N,), ``float_metadata`` (N, M), ids, ``flat_idx`` into (B, T, X'), ``t_idx`` (N,)) for ``model``.

    Drawn on the CPU (the same numbers whatever ``device``), then moved to ``device``.
    """
    g = torch.Generator().manual_seed(seed)
    t_len, xin, xm = model.time_length, model.npix_in, model.npix_model
    meta = model.obs_tokenizer.meta_dim
    x = torch.randn(b, model.in_channels, t_len, xin, generator=g)
    t = torch.zeros(b)
    sod = torch.randint(0, 86400, (b, t_len), generator=g).float()
    doy = torch.rand(b, t_len, generator=g) * 365
    bi = torch.randint(0, b, (n_obs,), generator=g)
    ti = torch.randint(0, t_len, (n_obs,), generator=g)
    pix = torch.randint(0, xm, (n_obs,), generator=g)
    raw = dict(obs=torch.randn(n_obs, generator=g), float_metadata=torch.randn(n_obs, meta, generator=g),
               obs_type=torch.randint(0, 1024, (n_obs,), generator=g),
               channel=torch.randint(0, 1024, (n_obs,), generator=g),
               platform=torch.randint(0, 1024, (n_obs,), generator=g),
               flat_idx=(bi * t_len + ti) * xm + pix, t_idx=ti)
    dev = torch.device(device)
    return (x.to(dev), t.to(dev), sod.to(dev), doy.to(dev), {k: v.to(dev) for k, v in raw.items()})


def context_of(model, raw: dict[str, Tensor], b: int) -> ObsContext:
    """The ObsContext of all B·T·X' pixels from :func:`random_batch`'s raw observations."""
    return prepare_obs_context(raw["obs"], raw["float_metadata"], raw["obs_type"], raw["channel"], raw["platform"],
                               raw["flat_idx"], b * model.time_length * model.npix_model)


def local_context(raw: dict[str, Tensor], b: int, t: int, xm: int, f0: int, f1: int) -> ObsContext:
    """The ObsContext of frames [f0, f1) only, from raw observations of the full (B, T) batch."""
    ti: Int[Tensor, " n"] = raw["t_idx"]
    keep = (ti >= f0) & (ti < f1)
    bi, pix = raw["flat_idx"] // (t * xm), raw["flat_idx"] % xm
    flat = (bi * (f1 - f0) + ti - f0) * xm + pix
    return prepare_obs_context(raw["obs"][keep], raw["float_metadata"][keep], raw["obs_type"][keep],
                               raw["channel"][keep], raw["platform"][keep], flat[keep], b * (f1 - f0) * xm)


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, torch.bfloat16) if bf16 else contextlib.nullcontext()


def _forward_backward(model, x, t, sod, doy, ctx, w: Float[Tensor, "b c t x"], denom: int, bf16: bool) -> Tensor:
    with _autocast(x.device, bf16):
        out = model(x, t, sod, doy, ctx)
    (out.float() * w).sum().div(denom).backward()  # a mean loss over the full batch, as in training
    return out.detach().float()


def _grads(model) -> list[Tensor]:
    return [p.grad.detach().float().clone() if p.grad is not None else torch.zeros_like(p, dtype=torch.float32)
            for p in model.parameters()]


def _max_diff(a: list[Tensor], b: list[Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b)) if a else 0.0


def cp_equivalence(config: dict[str, Any], group: dist.ProcessGroup, *, b: int = 2, n_obs: int = 400,
                   device: torch.device | str = "cpu", bf16: bool = False, seed: int = 0) -> dict[str, float]:
    """Context-parallel forward and parameter gradients of ``HealDA(**config)`` over ``group`` against the same
    model run whole on this rank.

    Returns ``out_err`` (max |Δ| of this rank's output frames), ``grad_err`` (max |Δ| of the group-summed
    gradients), their scales (``out_scale``, ``grad_scale``), ``rope_effect`` (max |Δ| of the output when the
    temporal RoPE is switched off: > 0 shows the rotation matters) and, with ``bf16``, ``out_noise`` /
    ``grad_noise``: the same maxima between the whole-model bf16 and fp32 runs (the rounding of bf16 itself).
    """
    from healda_core.model.healda import HealDA

    dev = torch.device(device)
    torch.manual_seed(seed)
    ref = HealDA(**config).train()
    randomize_zero_params(ref)
    ref.to(dev)
    model = copy.deepcopy(ref)
    x, t, sod, doy, raw = random_batch(ref, b=b, n_obs=n_obs, seed=3, device=dev)
    t_len = ref.time_length
    w = torch.randn(b, ref.out_channels, t_len, ref.npix_in, generator=torch.Generator().manual_seed(5)).to(dev)
    ctx = context_of(ref, raw, b)
    res: dict[str, float] = {}
    if bf16:  # the rounding of bf16 itself: the whole model in fp32 against bf16
        out32 = _forward_backward(ref, x, t, sod, doy, ctx, w, w.numel(), False)
        g32 = _grads(ref)
        ref.zero_grad(set_to_none=True)
    out_full = _forward_backward(ref, x, t, sod, doy, ctx, w, w.numel(), bf16)
    g_full = _grads(ref)
    if bf16:
        res["out_noise"] = float((out_full - out32).abs().max())
        res["grad_noise"] = _max_diff(g_full, g32)
    enable_context_parallel(model, group)
    f0, f1 = local_frames(t_len, model.dit.cp_size, model.dit.cp_rank)
    lctx = local_context(raw, b, t_len, ref.npix_model, f0, f1)
    out = _forward_backward(model, x[:, :, f0:f1].contiguous(), t, sod[:, f0:f1], doy[:, f0:f1], lctx,
                            w[:, :, f0:f1], w.numel(), bf16)
    g_cp = _grads(model)
    for g in g_cp:
        dist.all_reduce(g, group=group)  # each rank's gradient is its frames' share
    res.update(out_err=float((out - out_full[:, :, f0:f1]).abs().max()), grad_err=_max_diff(g_cp, g_full),
               out_scale=float(out_full.abs().max()), grad_scale=max(float(g.abs().max()) for g in g_full),
               rope_effect=_rope_effect(ref, x, t, sod, doy, ctx, out_full, bf16))
    return res


def _rope_effect(model, x, t, sod, doy, ctx, out_full: Tensor, bf16: bool) -> float:
    with torch.no_grad(), _autocast(x.device, bf16):
        for blk in model.dit.blocks:
            blk.temporal_attention.use_rope = False
        try:
            alt = model(x, t, sod, doy, ctx).float()
        finally:
            for blk in model.dit.blocks:
                blk.temporal_attention.use_rope = True
    return float((alt - out_full).abs().max())


def trainer_step(cfg, out: str | Path, ps=None) -> dict[str, Any]:
    """One optimiser step of the :class:`~healda_core.train.Trainer` built from ``cfg`` with process groups
    ``ps`` (one process if None): the loss, the weights before (``state0``) and after (``state``) the step.

    All-zero parameters are randomised first (:func:`randomize_zero_params`) so every block contributes.
    """
    from healda_core.train import Trainer

    tr = Trainer(cfg, out, ps)
    randomize_zero_params(tr.model)
    state0 = {k: v.detach().cpu().clone() for k, v in tr.model.state_dict().items()}
    rec = tr.fit(max_steps=1)
    return {"loss": rec["losses"][0], "state0": state0,
            "state": {k: v.detach().cpu().clone() for k, v in tr.model.state_dict().items()}}


def step_difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """How far training step ``a`` is from step ``b`` (both from :func:`trainer_step`, same initial weights).

    ``loss_err``: |Δ loss| / |loss_b|; ``update_err``: ‖update_a − update_b‖₂ / ‖update_b‖₂ over all weights
    (the update of a weight is its change over the step); ``max_abs``: the largest |Δ| of a weight.
    """
    num = den = 0.0
    worst = 0.0
    for k, wb in b["state"].items():
        if not wb.is_floating_point():
            continue
        wa, w0 = a["state"][k].double(), b["state0"][k].double()
        num += float(((wa - w0) - (wb.double() - w0)).pow(2).sum())
        den += float((wb.double() - w0).pow(2).sum())
        worst = max(worst, float((wa - wb.double()).abs().max()))
    return {"loss_err": abs(a["loss"] - b["loss"]) / max(abs(b["loss"]), 1e-30),
            "update_err": (num / den) ** 0.5 if den else float(num > 0), "max_abs": worst}


def tiny_trainer_overrides(extra: list[str] | None = None) -> list[str]:
    """A tiny synthetic training configuration (healda-tiny at hidden 32, 3 channels, T = 4) for the checks."""
    return ["model.preset='healda-tiny'", "model.hidden_size=32", "model.out_channels=3", "model.time_length=4",
            "model.drop_path=0.0", "data.synthetic=16", "data.synthetic_val=0", "data.num_workers=0",
            "data.batch_size=1", "data.synthetic_obs_per_sample=128", "train.log_every=1", "train.val_every=1000",
            "train.ckpt_every=1000", "optim.decay_samples=64", "optim.grad_clip_end=0.5",
            "optim.grad_clip_ramp_samples=32", *(extra or [])]
