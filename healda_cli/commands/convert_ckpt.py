"""``healda convert-ckpt``: PhysicsNeMo / NVlabs / state_dict / healda checkpoints → safetensors or .mdlus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healda_cli import console
from healda_cli.main import app
from healda_core.errors import UsageError


def _default_out(src: Path, to: str) -> Path:
    suffix = ".safetensors" if to == "safetensors" else ".mdlus"
    out = src.with_suffix(suffix)
    if out == src:
        out = src.with_name(src.stem + ".converted" + suffix)
    return Path.cwd() / out.name


@app.command("convert-ckpt")
def convert_ckpt(
    src: Annotated[Path, typer.Argument(help="Checkpoint: .mdlus (zip/tar), NVlabs .checkpoint, state_dict "
                                             ".pt/.pth, or healda .safetensors.", show_default=False)],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file (default: SRC's name with "
                                                "the new suffix, in the current directory).")] = None,
    to: Annotated[str, typer.Option("--to", help="Output format: safetensors (healda) or mdlus (PhysicsNeMo).")]
    = "safetensors",
    dtype: Annotated[str | None, typer.Option("--dtype", help="Cast floating weights: fp32 or bf16 "
                                              "(default: keep).")] = None,
    config: Annotated[str | None, typer.Option("--config", help="Model configuration: JSON file (args.json "
                                               "works) or inline JSON; required for plain state_dicts.")] = None,
    info: Annotated[bool, typer.Option("--info", help="Print configuration and parameter count; write "
                                       "nothing.")] = False,
    skip_hash_check: Annotated[bool, typer.Option("--skip-hash-check", help="Do not verify the weights against "
                                                  "the header's weights_sha256; needed for a healda file without "
                                                  "one (the output gets a fresh hash).")] = False,
    overwrite: Annotated[bool, typer.Option("-O", "--overwrite", help="Replace an existing output.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Convert a checkpoint, validating every key, shape and value; weights are never unpickled.

    Examples:
      healda convert-ckpt model.mdlus                       # → model.safetensors
      healda convert-ckpt model.safetensors --to mdlus -o model.mdlus
      healda convert-ckpt weights.pt --config args.json --dtype bf16
      healda convert-ckpt model.safetensors --info --json
    """
    from healda_core.checkpoint import (
        cast_state_dict,
        info_dict,
        read_checkpoint,
        write_mdlus,
        write_safetensors,
    )
    from healda_core.checkpoint.convert import DTYPES, load_config_arg

    if to not in ("safetensors", "mdlus"):
        raise UsageError(f"--to must be safetensors or mdlus, got {to!r}")
    if dtype is not None and dtype not in DTYPES:
        raise UsageError(f"--dtype must be fp32 or bf16, got {dtype!r}")
    out = output or _default_out(src, to)
    if not info:
        from healda_core.fileio import check_writable

        check_writable(out, overwrite)  # fail before reading a multi-GB file
    if skip_hash_check:
        console.warn(f"{src}: --skip-hash-check: the weights are not verified against the header's hash")
    ckpt = read_checkpoint(src, config=load_config_arg(config), verify=not skip_hash_check)
    if dtype is not None:
        ckpt.state_dict = cast_state_dict(ckpt.state_dict, DTYPES[dtype])
        ckpt.known_sha256 = None
    if info:
        d = info_dict(ckpt)
        if json_out:
            console.emit_json(d)
            return
        cfg = d.pop("config")
        conv = d.pop("conventions")
        for k, v in d.items():
            typer.echo(f"{k:>16}: {v:,}" if isinstance(v, int) else f"{k:>16}: {v}")
        typer.echo("          config:")
        for k, v in cfg.items():
            typer.echo(f"    {k} = {v!r}")
        typer.echo("     conventions:")
        for k, v in conv.items():
            typer.echo(f"    {k} = {v!r}")
        return
    if to == "mdlus":
        if ckpt.conventions.get("metadata_features") != "healda_features_v2":
            console.warn("the .mdlus format cannot record healda data conventions; they are implied by the config")
        write_mdlus(ckpt, out, overwrite)
    else:
        write_safetensors(ckpt, out, overwrite)
    console.info(f"{src} ({ckpt.source_format}, {ckpt.n_parameters:,} parameters, {ckpt.dtype}) → {out} ({to})")
    if json_out:
        console.emit_json({"output": str(out), "format": to, "source_format": ckpt.source_format,
                           "parameters": ckpt.n_parameters, "dtype": ckpt.dtype})
    else:
        console.emit_path(out)
