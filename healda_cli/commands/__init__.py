"""One module per ``healda`` subcommand."""
