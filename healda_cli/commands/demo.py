"""``healda demo``: the embedded default — an OSSE end to end, verified on an independent realisation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from healda_cli import console
from healda_cli.main import app

ROWS = ("z500", "t850", "wind250", "q700", "t2m", "msl", "u@850", "u@250", "v@500", "t@500", "z@850", "z@250")
METHODS = ("healda", "climatology", "oi")


def _table(summary: dict, n_seeds: int) -> Table:
    title = f"RMSE against the nature run, independent realisation (mean ± std over {n_seeds} seed(s))"
    table = Table(title=title, title_justify="left")
    for col in ("score", "HealDA", "climatology", "OI"):
        table.add_column(col, justify="left" if col == "score" else "right")
    ind = summary["independent"]
    for row in ROWS:
        means = [ind[m][row]["mean"] for m in METHODS]
        cells = [f"{ind[m][row]['mean']:.4g} ± {ind[m][row]['std']:.2g}" for m in METHODS]
        best = min(means)
        table.add_row(row, *(f"[bold]{c}[/bold]" if v == best else c for c, v in zip(cells, means, strict=True)))
    return table


def _seeds(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None


@app.command("demo")
def demo_cmd(
    workdir: Annotated[str, typer.Option("--workdir", help="Where to write everything (reused, files replaced).")]
    = "healda-demo",
    seeds: Annotated[str, typer.Option("--seeds", "--seed", help="Experiment seed(s), comma-separated (0,1,2).")]
    = "0",
    recipe: Annotated[str, typer.Option("--recipe", help="cpu (2 cores, 10 min per seed) or gpu (one GPU, "
                                                         "about 4 min per seed).")] = "cpu",
    minutes: Annotated[float | None, typer.Option("--minutes", help="Training wall-clock budget per seed "
                                                                    "(default: the recipe's).")] = None,
    days: Annotated[float | None, typer.Option("--days", help="Days per training realisation (default: the "
                                                              "recipe's).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda (default: the recipe's).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON on stdout.")] = False,
) -> None:
    """Observing-system simulation: synth → pack-obs → init-ckpt → train → assimilate → evaluate, per seed.

    HealDA trains on several nature-run realisations and analyses an independent one (own spectrum, own
    observations, never seen in training or climatology); it is compared with climatology and an
    optimal-interpolation analysis of the same observations. Writes WORKDIR/scores.json and WORKDIR/report.md
    with charts and maps. Prints the report path (or --json).
    """
    from healda_core.synth.demo import DemoSettings, headline_table, run_demo

    settings = DemoSettings(Path(workdir), seeds=_seeds(seeds), recipe=recipe, minutes=minutes, days=days,
                            device=device)
    with console.progress() as bar:
        task = bar.add_task("demo", total=3 * len(settings.seeds) + 1)
        res = run_demo(settings, log=console.info,
                       stage=lambda name: (bar.update(task, description=name, advance=1), console.verbose(name)))
    if console.state.verbosity >= 0:
        console.err.print(_table(res.summary, len(settings.seeds)))
    console.info(f"report: {res.report}")
    if json_out:
        console.emit_json({"report": str(res.report), "headline": headline_table(res.summary), "wins": res.wins,
                           "summary": res.summary, "scores_json": str(Path(workdir) / "scores.json")})
    else:
        console.emit_path(res.report)
