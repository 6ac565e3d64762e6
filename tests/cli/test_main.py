"""Root CLI behaviour: version, help, error handling and exit codes."""

from __future__ import annotations

import subprocess
import sys

import typer
from typer.testing import CliRunner

from healda_cli import main as cli_main
from healda_core.errors import AcceleratorError, InputError, UsageError

runner = CliRunner()


def test_version_on_stdout():
    res = runner.invoke(cli_main.app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout.startswith("healda 0.") and "torch" in res.stdout


def test_bare_command_prints_help():
    res = runner.invoke(cli_main.app, [])
    assert "Usage" in res.output and "Exit codes" in res.output


def test_help_paragraphs_are_reflowed_to_the_terminal_width():
    # docstrings are wrapped at 110 columns; the help joins each prose paragraph and keeps example lines
    res = runner.invoke(cli_main.app, ["demo", "--help"], terminal_width=200, env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "an independent one (own spectrum, own observations, never seen" in res.output
    res = runner.invoke(cli_main.app, ["assimilate", "--help"], terminal_width=200, env={"COLUMNS": "200"})
    assert "\n   healda assimilate obs.packed.nc --ckpt" in res.output  # example kept on its own line
    assert cli_main.reflow("a\nb\n\nExamples:\n  x\n  y") == "a b\n\nExamples:\n  x\n  y"


def _app_raising(exc: Exception) -> typer.Typer:
    app = typer.Typer(cls=cli_main._HealdaGroup)

    @app.callback()
    def root(debug: bool = typer.Option(False, "--debug")) -> None:
        cli_main.console.state.debug = debug

    @app.command()
    def boom() -> None:
        raise exc

    return app


def test_expected_errors_are_one_line_with_documented_exit_codes():
    for exc, code in ((InputError("raw.nc: variable 'lat': missing"), 3), (UsageError("x"), 2),
                      (AcceleratorError("no GPU"), 4)):
        res = runner.invoke(_app_raising(exc), ["boom"])
        assert res.exit_code == code
        assert res.stdout == ""
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert lines == [f"error: {exc}"]


def test_debug_adds_traceback():
    res = runner.invoke(_app_raising(InputError("bad")), ["--debug", "boom"])
    assert res.exit_code == 3 and "Traceback" in res.stderr


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "healda_cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("healda ")


def test_sigterm_leaves_no_partial_output(tmp_path):
    """A killed `healda synth` (SIGTERM, as a SLURM time limit sends) removes its temporary file."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "healda_cli", "synth", "-o", str(tmp_path), "--days", "30",
                             "--level", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not any(tmp_path.glob(".*.tmp.*")):
        time.sleep(0.05)
    assert any(tmp_path.glob(".*.tmp.*")), "synth never started writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert not list(tmp_path.iterdir())


def test_terminate_removes_open_temporaries_when_the_exit_is_swallowed(tmp_path):
    """If C code swallows the SystemExit of a SIGTERM, the grace timer still removes the temp and exits 143."""
    script = f"""
import time
from pathlib import Path
from healda_core.fileio import atomic_output, terminate
with atomic_output(Path({str(tmp_path)!r}) / "out.nc") as tmp:
    tmp.write_text("partial")
    try:
        terminate(143, grace_s=0.5)
    except SystemExit:
        pass  # what an extension that swallows the exception does
    time.sleep(30)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 143, proc.stderr
    assert not list(tmp_path.iterdir())
