#!/usr/bin/env bash
# The main job on its embedded default: set up .venv, then run the OSSE demo (about 10 minutes on 2 CPU cores).
# Extra arguments go to `healda demo` (e.g. --minutes 2 --workdir /tmp/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/env.sh
exec .venv/bin/healda demo "$@"
