#!/usr/bin/env bash
# The main job: bring up the local cluster (building it the first time) and run the demo
# playbook with helm 4, with the audit log on; then verify the audit log. Leaves the cluster
# running so you can look around; stop it with `make cluster-down`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/tools/cluster.sh" up
eval "$("$ROOT/tools/cluster.sh" env)"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections"
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-0}"
# A fresh audit log per demo run, so its verification covers this run only.
AUDIT_LOG=${HELM_ENGINE_AUDIT_LOG:-$ROOT/build/demo-audit.log}
mkdir -p "$(dirname "$AUDIT_LOG")"
rm -f "$AUDIT_LOG" "$AUDIT_LOG".[0-9][0-9][0-9][0-9][0-9][0-9]
cd "$ROOT"
PLAYBOOK=("$ROOT/.venv/bin/ansible-playbook" -i "localhost," -c local -e "ansible_python_interpreter=$ROOT/.venv/bin/python")
HELM_ENGINE_AUDIT_LOG="$AUDIT_LOG" ANSIBLE_CALLBACKS_ENABLED=ai_mesh.helm_engine.audit_log \
  "${PLAYBOOK[@]}" -e "helm_engine_binary=$HELM_ENGINE_HELM4" -e "helm_engine_kubeconfig=$KUBECONFIG" \
  playbooks/demo.yml "$@"
# Verified by a run that does not write to the log it reads.
"${PLAYBOOK[@]}" -e "audit_log=$AUDIT_LOG*" playbooks/audit_verify.yml
