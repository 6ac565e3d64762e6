"""The ``healda`` command-line interface (Typer). Parses, calls one ``healda_core`` function, reports."""
