"""The ``healda`` Typer app: root callback (global options), error handling, subcommand registry.

Exit codes: 0 success; 1 runtime failure; 2 usage error (bad option, output exists without ``-O``);
3 bad input data or checkpoint; 4 accelerator or kernel unavailable. Expected failures print one
``error:`` line on stderr; ``--debug`` (or ``HEALDA_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import inspect
import re
import signal
import traceback
from typing import Annotated

import typer
from typer.core import TyperGroup

from healda_cli import console
from healda_core.errors import HealdaError
from healda_core.fileio import terminate

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 bad input data or checkpoint, "
    "4 accelerator unavailable. Data goes to files; stdout carries only paths or --json; "
    "messages and progress go to stderr."
)


class _HealdaGroup(TyperGroup):
    """Turns :class:`HealdaError` into a one-line message and its documented exit code."""

    def invoke(self, ctx):  # noqa: ANN001 - click signature
        try:
            return super().invoke(ctx)
        except HealdaError as exc:
            if console.state.debug:
                console.err.print(traceback.format_exc(), markup=False)
            console.error(re.sub(r"\s*\n\s*", " ", str(exc).strip()))  # one line, whatever a library said
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    name="healda",
    cls=_HealdaGroup,
    no_args_is_help=True,
    help="HealDA v2 data assimilation: pack observations, convert checkpoints, assimilate, benchmark.\n\n"
    + EXIT_CODES_HELP,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def version_string() -> str:
    """``healda X (torch A, triton B|absent, CUDA C|cpu)`` for bug reports."""
    import torch

    from healda_core import __version__
    from healda_core.kernels import triton_version

    cuda = f"CUDA {torch.version.cuda}" if torch.cuda.is_available() else "cpu"
    return f"healda {__version__} (torch {torch.__version__}, triton {triton_version() or 'absent'}, {cuda})"


def _version(value: bool) -> None:
    if value:
        typer.echo(version_string())
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version and environment.")
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail on stderr (-vv).")] = 0,
    debug: Annotated[
        bool, typer.Option("--debug", envvar="HEALDA_DEBUG", help="Show tracebacks for expected errors.")
    ] = False,
) -> None:
    """Global options come before the subcommand."""
    console.state.verbosity = -1 if quiet else verbose
    console.state.debug = debug
    # a batch scheduler's SIGTERM (SLURM time limit) unwinds like an exception, so atomic writers remove their
    # temporary files and no partial output is left (fileio.terminate also covers a swallowed exit)
    signal.signal(signal.SIGTERM, lambda *_: terminate(143))


def _register() -> None:
    """Import command modules (each registers itself on ``app``)."""
    import importlib
    import pkgutil

    from healda_cli import commands

    for mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"healda_cli.commands.{mod}")
    for info in app.registered_commands:
        info.callback.__doc__ = reflow(info.callback.__doc__ or "")


def reflow(doc: str) -> str:
    """Join the wrapped lines of each prose paragraph of a docstring, so the terminal wraps them.

    Typer's rich help keeps single line breaks; a docstring wrapped at 110 columns would break mid-sentence in
    an 80-column terminal. Paragraphs with an indented line (examples, lists) are kept as written.
    """
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(p if re.search(r"\n\s", p) else p.replace("\n", " ") for p in paragraphs)


_register()
