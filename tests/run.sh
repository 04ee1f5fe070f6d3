#!/usr/bin/env bash
# The test suite, from a fresh machine: creates .venv, installs the pinned
# requirements, installs Chromium for the browser test when it is missing and
# this user may, then runs pytest (which starts and stops the emulators and the
# Google sandbox itself). Extra arguments go to pytest.
#
#   ./tests/run.sh           everything, as CI runs it; prints the 15 slowest tests
#   ./tests/run.sh --fast    everything but the tests marked slow or browser
#
# Tests run on TEST_WORKERS pytest-xdist workers (default: the CPU count, at most 4;
# 0 runs them in this one process). Each worker starts its own Firestore and Pub/Sub
# emulators and its own sandbox, so no two tests ever share state.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
workers="${TEST_WORKERS:-$(python -c 'import os; print(min(4, os.cpu_count() or 1))')}"
parallel=()
if [ "$workers" -gt 1 ]; then
  parallel=(-n "$workers")
fi
if [ "${1:-}" = "--fast" ]; then
  shift
  exec python -m pytest "${parallel[@]}" -m "not slow and not browser" "$@"
fi
scripts/install-browser.sh || echo "warning: no Chromium; the browser test will say why it cannot run" >&2
exec python -m pytest "${parallel[@]}" --durations=15 "$@"
