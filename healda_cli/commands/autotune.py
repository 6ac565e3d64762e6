"""``healda autotune``: tune the Triton kernels for every shape bucket a model will hit on this GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healda_cli.main import app


@app.command("autotune")
def autotune_cmd(
    save: Annotated[bool, typer.Option("--save", help="Write the winners to the cache (nothing is written "
                                       "otherwise).")] = False,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache folder (default: "
                                                   "$HEALDA_AUTOTUNE_CACHE_DIR, else ~/.cache/healda/autotune).")]
    = None,
    ckpt: Annotated[Path | None, typer.Option("--ckpt", help="Take the layout from this checkpoint's config.")] = None,
    preset: Annotated[str, typer.Option("--preset", help="Layout preset when no --ckpt (healda init-ckpt presets, "
                                        "e.g. healda-v2).")] = "healda-v2",
    n: Annotated[list[int], typer.Option("--n", help="Observation counts to cover (repeatable).")]
    = (2_000_000, 10_000_000, 30_000_000),
    deterministic: Annotated[bool, typer.Option("--deterministic", help="Time nothing: report the cached or "
                                                "default configs only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Runs each kernel once per bucket (forward and backward) so the autotuner picks its configs.

    With ``--save`` the winners go to the persistent cache, so later processes (with
    ``HEALDA_AUTOTUNE_CACHE_DIR`` set to the same folder) start with zero tuning time.
    """
    from healda_cli import console
    from healda_core.tune import autotune

    rep = autotune(save=save, cache_dir=cache_dir, ckpt=ckpt, preset=preset, ns=list(n), deterministic=deterministic,
                   progress=console.info)
    if as_json:
        console.emit_json(rep)
        return
    console.info(f"tuned {rep['tuned_buckets']} bucket(s) in {rep['tuning_seconds']:.1f} s"
                 + (f"; cache: {rep['cache_file']}" if rep.get("written") else "; nothing written (use --save)"))
    for name, entries in rep["kernels"].items():
        for key, cfg in entries.items():
            console.verbose(f"{name} {key}: {cfg}")
