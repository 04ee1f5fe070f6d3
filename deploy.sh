#!/usr/bin/env bash
# classcal's one entry point for running and deploying:
#   ./deploy.sh local [--once]   the whole backend on this machine (emulators + Google sandbox)
#   ./deploy.sh package          build/<function>/ and build/<function>.zip for every function
#   ./deploy.sh plan | apply     package, then Terraform against $GOOGLE_CLOUD_PROJECT
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

[ $# -ge 1 ] || usage
command="$1"
shift

case "$command" in
  local)
    . scripts/venv.sh
    exec python -m localstack "$@"
    ;;
  package | plan | apply)
    echo "deploy.sh $command: not written yet" >&2
    exit 1
    ;;
  *)
    usage
    ;;
esac
