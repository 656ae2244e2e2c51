#!/usr/bin/env bash
# Runs a command with the local cluster up and its environment exported; stops the cluster
# afterwards only if this script started it (a cluster someone else started is left running).
set -euo pipefail
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
started_here=0
if ! "$TOOLS_DIR/cluster.sh" status >/dev/null 2>&1; then
  "$TOOLS_DIR/cluster.sh" up
  started_here=1
fi
# shellcheck disable=SC2329  # reached through the EXIT trap
cleanup() { if (( started_here )); then "$TOOLS_DIR/cluster.sh" down || true; fi; }
trap cleanup EXIT
eval "$("$TOOLS_DIR/cluster.sh" env)"
set +e
"$@"
rc=$?
set -e
exit $rc
