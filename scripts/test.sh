#!/usr/bin/env bash
# The project's test command: sets up .venv (see env.sh), runs `ruff check`, then the test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q "$@"
