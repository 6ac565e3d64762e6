"""``healda bench``: benchmarks (never timed unit tests). Each subcommand calls one core function
in ``healda_core.bench`` and prints a Rich table on stderr, or JSON lines on stdout with ``--json``."""

from __future__ import annotations

from typing import Annotated

import typer

from healda_cli.main import app

bench_app = typer.Typer(help="Benchmarks: obs/s, tokens/s, TFLOP/s, GB/s, peak memory.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _report_row(row: dict, as_json: bool) -> None:
    """One benchmark row: JSON line on stdout with ``--json``, else a two-column table on stderr."""
    from rich.table import Table

    from healda_cli import console

    if as_json:
        console.emit_json(row)
        return
    table = Table(title=f"bench {row.get('bench', '')}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in row.items():
        table.add_row(k, str(v))
    if console.state.verbosity >= 0:
        console.err.print(table)


@bench_app.command("pack")
def bench_pack_cmd(
    n: Annotated[int, typer.Option("--n", help="Number of synthetic observations.")] = 30_000_000,
    complevel: Annotated[int, typer.Option("--complevel", min=0, max=9, help="Deflate level of the write "
                                           "(1-3 ISA-L, 4-9 zlib); 0 = none.")] = 1,
    no_write: Annotated[bool, typer.Option("--no-write", help="Gather in memory only; no NetCDF write.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line on stdout.")] = False,
) -> None:
    """Observation packing throughput (obs/s) and peak memory on synthetic input."""
    from healda_core.bench.pack import bench_pack

    _report_row(bench_pack(n=n, complevel=complevel, write=not no_write), as_json)


@bench_app.command("read-parquet")
def bench_read_parquet_cmd(
    n: Annotated[int, typer.Option("--n", help="Rows of the synthetic parquet file.")] = 10_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line on stdout.")] = False,
) -> None:
    """Parquet observation reader throughput (obs/s) and peak memory on a synthetic UFS-schema file."""
    from healda_core.bench.pack import bench_read_parquet

    _report_row(bench_read_parquet(n=n), as_json)


_KERNEL_COLUMNS = ("op", "impl", "N", "pass", "median_ms", "tokens_per_s", "TFLOPs", "GBps", "roofline_frac")


def _report_rows(rows: list[dict], as_json: bool, title: str, columns: tuple[str, ...]) -> None:
    """Many rows: JSON lines on stdout with ``--json``, else one Rich table on stderr."""
    from rich.table import Table

    from healda_cli import console

    if as_json:
        for r in rows:
            console.emit_json(r)
        return
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="left" if c in ("op", "impl", "pass", "preset") else "right")
    for r in rows:
        table.add_row(*[_fmt(r.get(c, "")) for c in columns])
    if console.state.verbosity >= 0:
        console.err.print(table)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


@bench_app.command("kernels")
def bench_kernels_cmd(
    n: Annotated[list[int], typer.Option("--n", help="Observation tokens N (repeatable).")]
    = (10_000_000, 30_000_000),
    op: Annotated[list[str], typer.Option("--op", help="pixel_attention, film and/or packing (repeatable).")]
    = ("pixel_attention", "film", "packing"),
    no_torch: Annotated[bool, typer.Option("--no-torch", help="Skip the PyTorch paths (they are slow).")] = False,
    torch_max_n: Annotated[int, typer.Option("--torch-max-n", help="Largest N timed on the PyTorch paths.")]
    = 10_000_000,
    reps: Annotated[int, typer.Option("--reps", min=3, help="Timed repetitions (median reported).")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """Triton kernels vs the PyTorch paths: fwd and fwd+bwd ms, tokens/s, TFLOP/s, GB/s, roofline fraction."""
    from healda_cli import console
    from healda_core.bench.kernels import run

    rows = run(ns=list(n), ops=list(op), torch_paths=not no_torch, torch_max_n=torch_max_n, reps=reps, progress=console.verbose)
    _report_rows(rows, as_json, "bench kernels (H200 peaks: 783 TFLOP/s bf16, 4.24 TB/s)", _KERNEL_COLUMNS)


@bench_app.command("model")
def bench_model_cmd(
    preset: Annotated[str, typer.Option("--preset", help="A model preset (healda init-ckpt --preset names).")]
    = "healda-v2",
    n: Annotated[int, typer.Option("--n", help="Observations per batch.")] = 10_000_000,
    layers: Annotated[int, typer.Option("--layers", min=1, help="num_layers override (the preset has 32).")] = 4,
    reps: Annotated[int, typer.Option("--reps", min=3, help="Timed repetitions (median reported).")] = 5,
    no_torch: Annotated[bool, typer.Option("--no-torch", help="Skip the run on the PyTorch paths.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """Whole model with and without the kernels: inference and training-step ms, obs/s, peak GiB."""
    from healda_cli import console
    from healda_core.bench.model import run

    rows = run(preset=preset, n_obs=n, layers=layers, reps=reps, torch_paths=not no_torch, progress=console.verbose)
    _report_rows(rows, as_json, f"bench model ({preset})",
                 ("preset", "layers", "impl", "N", "pass", "median_ms", "obs_per_s", "peak_GiB"))
