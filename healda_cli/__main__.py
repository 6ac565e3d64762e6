"""``python -m healda_cli`` runs the ``healda`` command."""

from healda_cli.main import app

app(prog_name="healda")
