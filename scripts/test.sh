#!/usr/bin/env bash
# The project's test command: sets up .venv (see env.sh) and runs the test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh
exec .venv/bin/python -m pytest -q "$@"
