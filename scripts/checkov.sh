#!/usr/bin/env bash
# Scans infra/ with checkov, offline, as configured in infra/checkov.yaml (which also
# lists every skipped check with its reason). Extra arguments go to checkov.
#
# checkov lives in its own virtualenv, .venv-tools/checkov: its pinned dependencies
# (packaging<24 among ~95 packages, 270 MB) clash with the test tools in .venv. It is
# installed on first use and again only when scripts/checkov-requirements.txt changes;
# with pip's cache warm that takes about 10 s.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="$root/.venv-tools/checkov"
lock="$root/scripts/checkov-requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python="$root/.venv/bin/python"
  [ -x "$python" ] || python="$(command -v python3)"
  echo "installing checkov into .venv-tools/checkov" >&2
  rm -rf "$venv"
  "$python" -m venv --without-pip "$venv"
  # The outer pip installs into the new venv: no second pip, and no byte-compiling of
  # 270 MB up front (Python compiles what checkov imports on first run).
  "$python" -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check \
    --no-compile -r "$lock" >&2
  echo "$want" >"$stamp"
fi

exec "$venv/bin/checkov" --config-file infra/checkov.yaml --directory infra "$@"
