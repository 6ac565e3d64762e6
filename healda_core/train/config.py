"""Training configuration: nested dataclasses, TOML file, ``section.key=value`` overrides, JSON round trip.

Precedence: command-line overrides > the ``--config`` TOML file > the defaults below (the v2-UFS recipe,
DATA §5). The resolved configuration is written to ``OUT/config.json`` and checked on ``--resume``.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healda_core.errors import UsageError


@dataclass
class ModelSection:
    """Which model to train. ``preset`` (``healda_core.presets``) or ``init_checkpoint`` (fine-tuning), plus
    ``overrides``: ``HealDA`` keyword arguments (e.g. ``out_channels``, ``drop_path``)."""

    preset: str = "healda-v2"
    init_checkpoint: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSection:
    """Inputs. ``train_obs``/``val_obs``: packed-observation NetCDF files or globs; ``targets``: ERA5-like
    NetCDF/Zarr files on HEALPix ``level_in``; ``static``: orography + land fraction file (None: zeros, with a
    warning). ``channels``: ``"era5_13_levels_74"`` or a list of channel names (u500, t2m, ...).
    ``synthetic``: ignore files and train on a generated dataset of this many samples (demos, tests)."""

    train_obs: list[str] = field(default_factory=list)
    val_obs: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    static: str | None = None
    channels: str | list[str] = "era5_13_levels_74"
    batch_size: int = 1
    num_workers: int = 2
    prefetch_factor: int = 2
    pin_memory: bool = True
    shuffle: bool = True
    synthetic: int = 0
    synthetic_val: int = 8
    synthetic_obs_per_sample: int = 256


@dataclass
class OptimSection:
    """AdamW, linear decay, Huber loss and gradient clipping (v2 recipe defaults).

    The learning rate warms up linearly over ``warmup_steps``, then decays linearly to 0 at
    ``decay_samples`` samples (global batch × steps; None: at ``max_steps``). The clipping norm goes
    linearly from ``grad_clip`` to ``grad_clip_end`` over the first ``grad_clip_ramp_samples`` samples
    (``grad_clip_end`` None: constant)."""

    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.05
    warmup_steps: int = 0
    decay_samples: int | None = 3_000_000
    grad_clip: float = 1.0
    grad_clip_end: float | None = 0.015
    grad_clip_ramp_samples: int = 50_000
    huber_delta: float = 0.1
    channel_weights: list[float] | None = None
    fused: bool | None = None


@dataclass
class TrainSection:
    """The loop. ``grad_accum`` micro-batches per step; ``ema_decay`` 0 disables EMA; ``bf16`` autocast on GPU.
    ``deterministic`` applies the torchtitan determinism set. ``keep_checkpoints`` 0 keeps all.
    ``max_minutes``: a wall-clock budget for :meth:`Trainer.fit` — training stops before the step that would
    overrun it (whichever of ``max_steps`` and the budget comes first); with ``optim.decay_samples`` None the
    learning rate then decays linearly over the budget's elapsed fraction instead of over ``max_steps``."""

    max_steps: int = 1000
    max_minutes: float | None = None
    grad_accum: int = 1
    seed: int = 0
    bf16: bool = True
    ema_decay: float = 0.0
    log_every: int = 10
    val_every: int = 500
    val_batches: int | None = None
    ckpt_every: int = 500
    keep_checkpoints: int = 3
    deterministic: bool = False
    device: str = "auto"


@dataclass
class ParallelSection:
    """``cp``: context-parallel size (divides time_length and the world size; dp = world / cp).
    ``activation_checkpointing``: none | full | selective. ``compile``: on CUDA without context parallelism,
    ``torch.compile`` every DiT block in place (one shared graph, checkpointing included; the first step
    compiles for about two minutes at the 1.5 B default, then steps run ~27 % faster); ignored on the CPU."""

    cp: int = 1
    activation_checkpointing: str = "none"
    compile: bool = True
    find_unused_parameters: bool = False


@dataclass
class TrainConfig:
    """The whole run configuration."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    parallel: ParallelSection = field(default_factory=ParallelSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        cfg = cls()
        for section, values in d.items():
            if not hasattr(cfg, section) or not isinstance(values, dict):
                raise UsageError(f"config: unknown section [{section}]; expected one of "
                                 f"{', '.join(f.name for f in dataclasses.fields(cls))}")
            for key, value in values.items():
                _set(cfg, section, key, value)
        return cfg


def _set(cfg: TrainConfig, section: str, key: str, value: Any) -> None:
    sec = getattr(cfg, section)
    names = {f.name: f for f in dataclasses.fields(sec)}
    if key not in names:
        if section == "model":  # model.<kw> = v is a HealDA keyword override
            sec.overrides[key] = value
            return
        raise UsageError(f"config: unknown key {section}.{key}; expected one of {', '.join(names)}")
    if key == "overrides" and isinstance(value, dict):
        sec.overrides.update(value)
        return
    if key == "betas":
        value = tuple(value)
    setattr(sec, key, value)


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``section.key=value`` strings (values are TOML: ``1e-4``, ``true``, ``[1, 2]``, or bare strings)."""
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UsageError(f"override {item!r} is not of the form section.key=value (e.g. optim.lr=1e-4)")
        path, text = item.split("=", 1)
        section, key = path.strip().split(".", 1)
        if not hasattr(cfg, section):
            raise UsageError(f"override {item!r}: unknown section {section!r}")
        _set(cfg, section, key.strip(), _parse_value(text.strip()))
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then the TOML file ``path`` (optional), then ``overrides``; validated."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise UsageError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: invalid TOML ({exc})") from None
    cfg = apply_overrides(TrainConfig.from_dict(data), overrides or [])
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Raise :class:`UsageError` for values that cannot work."""
    t, o, p, d = cfg.train, cfg.optim, cfg.parallel, cfg.data
    checks = [
        (t.max_steps >= 0, "train.max_steps must be >= 0"),
        (t.max_minutes is None or t.max_minutes > 0, "train.max_minutes must be > 0"),
        (t.grad_accum >= 1, "train.grad_accum must be >= 1"),
        (0.0 <= t.ema_decay < 1.0, "train.ema_decay must be in [0, 1)"),
        (min(t.log_every, t.val_every, t.ckpt_every) >= 1, "train.log_every/val_every/ckpt_every must be >= 1"),
        (o.lr > 0 and o.huber_delta > 0, "optim.lr and optim.huber_delta must be > 0"),
        (len(o.betas) == 2, "optim.betas must have two values"),
        (p.cp >= 1, "parallel.cp must be >= 1"),
        (p.activation_checkpointing in ("none", "full", "selective"),
         "parallel.activation_checkpointing must be none, full or selective"),
        (d.batch_size >= 1 and d.num_workers >= 0, "data.batch_size must be >= 1 and data.num_workers >= 0"),
        (d.synthetic > 0 or bool(d.train_obs), "data.train_obs is empty (or set data.synthetic = N)"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UsageError(f"config: {msg}")


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved configuration as JSON."""
    from healda_core.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
