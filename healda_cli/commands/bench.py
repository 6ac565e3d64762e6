"""``healda bench``: benchmarks (never timed unit tests). Each subcommand calls one core function
in ``healda_core.bench`` and prints a Rich table on stderr, or JSON lines on stdout with ``--json``."""

from __future__ import annotations

import typer

from healda_cli.main import app

bench_app = typer.Typer(help="Benchmarks: obs/s, tokens/s, TFLOP/s, GB/s, peak memory.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
