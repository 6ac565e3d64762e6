"""``healda train``: train or fine-tune HealDA on one CPU, one GPU or many (torchrun / srun)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healda_cli import console
from healda_cli.main import app
from healda_core.errors import UsageError


@app.command("train")
def train(
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Config overrides section.key=value (TOML values), e.g. optim.lr=1e-4 parallel.cp=2.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Run configuration (TOML).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory: config.json, metrics.jsonl, "
                                      "checkpoints/.")] = Path("run"),
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Stop after this many optimiser steps "
                                                  "(overrides train.max_steps).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue exactly from the latest checkpoint in --out.")]
    = False,
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Start afresh in a non-empty --out.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the topology and resolved config as JSON; "
                                          "train nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")] = False,
) -> None:
    """Train HealDA (v2 recipe defaults: Huber δ=0.1, AdamW 2e-4, linear decay, bf16 on GPU).

    Launch with torchrun or srun for several processes; the command line is the same. With parallel.cp = N, each sample's frames are split over N ranks (context parallelism); the rest of the world size is data parallel.

    Examples:
      healda train --config run.toml --out runs/exp1
      torchrun --nproc-per-node 8 -m healda_cli train --config run.toml parallel.cp=2 --out runs/exp1
      healda train --config run.toml --out runs/exp1 --resume --max-steps 20000
    """
    from healda_core.distributed import detect, init_distributed, shutdown
    from healda_core.train import Trainer, load_config

    extra = list(overrides or []) + ([f"train.max_steps={max_steps}"] if max_steps is not None else [])
    cfg = load_config(config, extra)
    env = detect()
    if dry_run:
        console.emit_json({"topology": {**env.to_dict(), "cp": cfg.parallel.cp, "dp": env.world_size // cfg.parallel.cp},
                           "config": cfg.to_dict()})
        return
    _check_out(out, resume, overwrite, env.rank)
    ps = init_distributed(env, cp=cfg.parallel.cp, device=cfg.train.device)
    try:
        console.info(f"healda train: {ps.describe()}")
        trainer = Trainer(cfg, out, ps, log=console.info)
        if resume:
            trainer.load(out)
        summary = trainer.fit()
    finally:
        shutdown()
    result = {"out": str(out), "step": summary["step"], "checkpoint": summary["checkpoint"],
              "val_rmse_normalised": (summary["val"] or {}).get("rmse_normalised_mean")}
    if env.rank == 0:
        console.emit_json(result) if json_out else console.emit_path(out)


def _check_out(out: Path, resume: bool, overwrite: bool, rank: int) -> None:
    if resume:
        if not (out / "checkpoints" / "latest").is_file():
            raise UsageError(f"{out}: nothing to resume (no checkpoints/latest)")
        return
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out}: run directory is not empty; add --resume to continue or -O to start afresh")
    if overwrite and rank == 0:
        import shutil

        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)
