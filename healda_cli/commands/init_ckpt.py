"""``healda init-ckpt``: a randomly initialised checkpoint of a named preset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healda_cli import console
from healda_cli.main import app
from healda_core.errors import UsageError


@app.command("init-ckpt")
def init_ckpt(
    preset: Annotated[str, typer.Option("--preset", help="Preset name (see --list).")] = "healda-tiny",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file (.safetensors or .mdlus).")]
    = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the initialisation.")] = 0,
    dtype: Annotated[str, typer.Option("--dtype", help="fp32 or bf16.")] = "fp32",
    list_presets: Annotated[bool, typer.Option("--list", help="List the presets and exit.")] = False,
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Replace an existing output.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Write a randomly initialised checkpoint (reference initialisation) for tests, demos and training.

    Presets: healda-v2 (reference default, 1.5 B; needs ~6 GB host memory), healda-base, healda-small
    (level 6/5) and healda-tiny (level 2/1, for tests). Static files must be at the preset's level_in and
    packed observations at its level_model.

    Examples:
      healda init-ckpt --preset healda-tiny -o tiny.safetensors
      healda init-ckpt --preset healda-v2 --dtype bf16 -o healda-v2-random.safetensors
    """
    from healda_core.presets import DESCRIPTIONS, PRESETS, init_checkpoint, parameter_count, preset_config

    if list_presets:
        rows = [{"preset": n, "parameters": parameter_count(preset_config(n)),
                 "level_in": preset_config(n)["level_in"], "level_model": preset_config(n)["level_model"],
                 "description": DESCRIPTIONS[n]} for n in PRESETS]
        if json_out:
            console.emit_json(rows)
        else:
            for r in rows:
                typer.echo(f"{r['preset']:<14} {r['parameters']:>14,}  level {r['level_in']}/{r['level_model']}  "
                           f"{r['description']}")
        return
    if output is None:
        raise UsageError("init-ckpt needs -o/--output")
    from healda_core.checkpoint import write_mdlus, write_safetensors
    from healda_core.fileio import check_writable

    check_writable(output, overwrite)
    ckpt = init_checkpoint(preset, seed=seed, dtype=dtype)
    (write_mdlus if output.suffix == ".mdlus" else write_safetensors)(ckpt, output, overwrite)
    console.info(f"{preset}: {ckpt.n_parameters:,} parameters ({ckpt.dtype}, seed {seed}) → {output}")
    if json_out:
        console.emit_json({"output": str(output), "preset": preset, "parameters": ckpt.n_parameters,
                           "dtype": ckpt.dtype, "seed": seed})
    else:
        console.emit_path(output)
