#!/usr/bin/env bash
# Install tinyschool with its test dependencies and run the whole test suite (slow tests included):
# the tests in two processes at once (pytest-xdist; TEST_WORKERS=N for another count, 0 for one
# process), then the `serial` ones alone (wall-clock limits and checks of the whole machine, which
# another test's load or files could upset). Arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=test bash scripts/install.sh
PY=${PYTHON:-python3}
workers=${TEST_WORKERS:-2}
parallel=()
if [ "$workers" != "0" ]; then parallel=(-n "$workers" --dist loadgroup); fi
status=0
"$PY" -m pytest -q "${parallel[@]}" -m "not serial" "$@" || status=$?
rc=0
"$PY" -m pytest -q -m serial "$@" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=$rc; fi  # 5: no serial test among the ones asked for
if [ "$status" -eq 5 ]; then status=0; fi  # only serial tests were asked for
exit "$status"
