"""``healda demo``: the embedded default — an OSSE end to end on a CPU in under 10 minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from healda_cli import console
from healda_cli.main import app

ROWS = ("z500", "t850", "wind250", "q700", "t2m", "msl", "u@850", "u@250", "v@500", "t@500", "z@850", "z@250")


def _table(scores: dict[str, dict[str, float]]) -> Table:
    table = Table(title="RMSE against the nature run (held-out analysis times)", title_justify="left")
    for col in ("score", "HealDA", "climatology", "OI"):
        table.add_column(col, justify="left" if col == "score" else "right")
    for row in ROWS:
        vals = [scores[m][row] for m in ("healda", "climatology", "oi")]
        best = min(vals)
        table.add_row(row, *(f"[bold]{v:.4g}[/bold]" if v == best else f"{v:.4g}" for v in vals))
    return table


@app.command("demo")
def demo_cmd(
    workdir: Annotated[str, typer.Option("--workdir", help="Where to write everything (reused, files replaced).")]
    = "healda-demo",
    minutes: Annotated[float, typer.Option("--minutes", help="Training budget in minutes.")] = 8.5,
    days: Annotated[float, typer.Option("--days", help="Length of the nature run in days.")] = 12.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON on stdout.")] = False,
) -> None:
    """Observing-system simulation: synth → pack-obs → init-ckpt → train → assimilate → evaluate.

    Compares HealDA's analyses of held-out times with climatology and an optimal-interpolation analysis of
    the same observations, and writes WORKDIR/report.md with maps. Prints the report path (or --json).
    """
    from healda_core.synth.demo import DemoSettings, headline_table, run_demo

    settings = DemoSettings(Path(workdir), minutes=minutes, days=days, seed=seed)
    with console.progress() as bar:
        task = bar.add_task("demo", total=7)
        res = run_demo(settings, log=console.info,
                       stage=lambda name: (bar.update(task, description=name, advance=1), console.verbose(name)))
    if console.state.verbosity >= 0:
        console.err.print(_table(res.scores))
    console.info(f"report: {res.report}")
    if json_out:
        console.emit_json({"report": str(res.report), "scores": res.scores, "headline": headline_table(res.scores),
                           "timings_s": res.timings, "train_steps": res.train_steps, "test_times": res.test_times})
    else:
        console.emit_path(res.report)
