#!/usr/bin/env bash
# The main job: bring up the local cluster (building it the first time) and run the demo
# playbook with helm 4. Leaves the cluster running so you can look around; stop it with
# `make cluster-down`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/cluster.sh" up
eval "$("$ROOT/tools/cluster.sh" env)"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections"
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-0}"
cd "$ROOT"
exec "$ROOT/.venv/bin/ansible-playbook" -i localhost, -c local \
  -e "ansible_python_interpreter=$ROOT/.venv/bin/python" \
  -e "helm_engine_binary=$HELM_ENGINE_HELM4" -e "helm_engine_kubeconfig=$KUBECONFIG" \
  playbooks/demo.yml "$@"
