"""The single stderr console, verbosity state, progress factory and stdout helpers.

stdout carries only machine-readable results (written paths, or JSON with ``--json``); every human
message, warning and progress bar goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True, highlight=False)


@dataclass
class State:
    """Global options of the root callback."""

    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    debug: bool = False


state = State(debug=os.environ.get("HEALDA_DEBUG", "") not in ("", "0"))


def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) or 0)


def _talks() -> bool:
    return _rank() == 0 or os.environ.get("HEALDA_LOG_ALL_RANKS", "") not in ("", "0")


def info(msg: str) -> None:
    """A normal message on stderr (suppressed by ``-q`` and on ranks other than 0)."""
    if state.verbosity >= 0 and _talks():
        err.print(msg)


def verbose(msg: str) -> None:
    """A ``-v`` message on stderr."""
    if state.verbosity >= 1 and _talks():
        err.print(f"[dim]{msg}[/dim]")


def warn(msg: str) -> None:
    """A warning on stderr (suppressed by ``-q``, which keeps only errors)."""
    if state.verbosity >= 0 and _talks():
        err.print(f"[yellow]warning:[/yellow] {msg}")


def error(msg: str, hint: str | None = None) -> None:
    """A one-line error (always shown)."""
    err.print(f"[bold red]error:[/bold red] {msg}", soft_wrap=True)
    if hint:
        err.print(f"hint: {hint}", soft_wrap=True)


def progress(disable: bool = False) -> Progress:
    """A transient Rich progress bar on stderr, shown only on a TTY, on rank 0, without ``-q``."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=disable or state.verbosity < 0 or not err.is_terminal or not _talks(),
    )


def emit_json(obj: object) -> None:
    """One JSON object on stdout."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def emit_path(path: object) -> None:
    """One written path on stdout."""
    sys.stdout.write(f"{path}\n")
    sys.stdout.flush()
