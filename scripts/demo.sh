#!/usr/bin/env bash
# The main job on the embedded local model: install, then generate -> clean -> summarize -> ablate.
# Extra arguments go to `tinyschool run`, e.g. `bash scripts/demo.sh --count 2000` for a bigger run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec "${PYTHON:-python3}" -m tinyschool run prompts/recipes/demo.toml "$@"
