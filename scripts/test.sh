#!/usr/bin/env bash
# Install tinyschool with its test dependencies and run the whole test suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test bash scripts/install.sh
exec "${PYTHON:-python3}" -m pytest -q "$@"
