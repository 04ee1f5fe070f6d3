#!/usr/bin/env bash
# The test suite, from a fresh machine: creates .venv, installs the pinned
# requirements, installs Chromium for the browser test when it is missing and
# this user may, then runs pytest (which starts and stops the emulators and the
# Google sandbox itself). Extra arguments go to pytest.
#
#   ./tests/run.sh           everything, as CI runs it; prints the 15 slowest tests
#   ./tests/run.sh --fast    everything but the tests marked slow or browser
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
if [ "${1:-}" = "--fast" ]; then
  shift
  exec python -m pytest -m "not slow and not browser" "$@"
fi
scripts/install-browser.sh || echo "warning: no Chromium; the browser test will say why it cannot run" >&2
exec python -m pytest --durations=15 "$@"
