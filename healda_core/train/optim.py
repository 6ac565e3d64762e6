"""Optimiser, learning-rate and clipping schedules, EMA and the loss (v2 recipe, DATA §5)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from healda_core.train.config import OptimSection

_NO_DECAY_MODULES = (nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.RMSNorm)
_NO_DECAY_NAMES = ("pos_embed",)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weight decay on matrices/kernels; none on biases, normalisation and embedding
    parameters (``nn.Embedding`` tables and ``pos_embed``)."""
    no_decay: set[int] = set()
    for mod_name, mod in model.named_modules():
        for p_name, p in mod.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if isinstance(mod, _NO_DECAY_MODULES) or p.ndim < 2 or any(n in full for n in _NO_DECAY_NAMES):
                no_decay.add(id(p))
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if id(p) not in no_decay]
    other = [p for p in params if id(p) in no_decay]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: OptimSection) -> torch.optim.AdamW:
    """AdamW with the recipe's hyper-parameters (fused on CUDA unless ``cfg.fused`` is False)."""
    dev = next(model.parameters()).device
    fused = cfg.fused if cfg.fused is not None else dev.type == "cuda"
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                             eps=cfg.eps, fused=bool(fused) or None)


def lr_factor(step: int, warmup_steps: int, decay_steps: int) -> float:
    """Linear warm-up over ``warmup_steps``, then linear decay reaching 0 at ``decay_steps``."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay_steps <= warmup_steps:
        return 1.0
    return max(0.0, 1.0 - (step - warmup_steps) / (decay_steps - warmup_steps))


def progress_lr_factor(step: int, warmup_steps: int, progress: float) -> float:
    """Linear warm-up over ``warmup_steps``, then linear decay reaching 0 at ``progress`` = 1 (a fraction
    of the run, e.g. of its wall-clock budget)."""
    warm = (step + 1) / warmup_steps if warmup_steps and step < warmup_steps else 1.0
    return warm * max(0.0, 1.0 - progress)


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimSection, max_steps: int, global_batch: int,
                    progress: Callable[[int], float] | None = None):
    """``LambdaLR`` with :func:`lr_factor`; the decay horizon is ``decay_samples / global_batch`` steps
    (``max_steps`` when ``decay_samples`` is None). With ``progress`` (step → fraction of the run done) and
    ``decay_samples`` None, :func:`progress_lr_factor` instead (a wall-clock budget)."""
    if progress is not None and cfg.decay_samples is None:
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: progress_lr_factor(s, cfg.warmup_steps, progress(s)))
    decay_steps = max_steps if cfg.decay_samples is None else max(1, cfg.decay_samples // global_batch)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, decay_steps))


def clip_value(step: int, cfg: OptimSection, global_batch: int) -> float:
    """The clipping norm at ``step``: linear from ``grad_clip`` to ``grad_clip_end`` over the ramp."""
    if cfg.grad_clip_end is None or cfg.grad_clip_ramp_samples <= 0:
        return cfg.grad_clip
    frac = min(1.0, step * global_batch / cfg.grad_clip_ramp_samples)
    return cfg.grad_clip + frac * (cfg.grad_clip_end - cfg.grad_clip)


def huber_loss(pred: Tensor, target: Tensor, delta: float, channel_weights: Tensor | None = None) -> Tensor:
    """Mean Huber loss over (B, C, T, X) in float32; optional per-channel weights (C,)."""
    err = F.huber_loss(pred.float(), target.float(), delta=delta, reduction="none")
    if channel_weights is not None:
        err = err * channel_weights.view(1, -1, 1, 1)
    return err.mean()


class EMA:
    """Exponential moving average of the parameters, fp32, on the model's device."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: p.detach().float().clone() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, p in model.named_parameters():
            self.shadow[k].lerp_(p.detach().float(), 1.0 - self.decay)

    def state_dict(self) -> dict[str, Tensor]:
        return self.shadow

    def load_state_dict(self, sd: dict[str, Tensor]) -> None:
        for k, v in sd.items():
            self.shadow[k].copy_(v)

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Inside the block the model's parameters hold the EMA values; afterwards exactly the originals."""
        params = dict(model.named_parameters())
        backup = {k: p.detach().clone() for k, p in params.items()}
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(self.shadow[k])
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in params.items():
                    p.copy_(backup[k])

    def full_state_dict(self, model: nn.Module) -> dict[str, Tensor]:
        """The model's state_dict with EMA parameters (buffers from the model)."""
        sd = {k: v.detach() for k, v in model.state_dict().items()}
        sd.update({k: v.to(sd[k].dtype) for k, v in self.shadow.items()})
        return sd
