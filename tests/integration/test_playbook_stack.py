"""playbooks/stack.yml on the local cluster, helm 3 and helm 4: the monitoring stack planned in check
mode, deployed in dependency order, repeated without change, and deleted in the reverse order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import COLLECTIONS, REPO

PLAYBOOK = REPO / "playbooks" / "stack.yml"
DB_PASSWORD = "Stack-Db-Password-9b7e"


def stack(tmp_path: Path, helm: str, kubeconfig: str, namespace: str, *args: str, state: str = "present") -> subprocess.CompletedProcess:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    extra = {"stack_namespace": namespace, "stack_state": state, "binary_path": helm, "kubeconfig": kubeconfig,
             "db_password": DB_PASSWORD, "timeout": "90s", "web_values": "replicaCount: 1"}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    bindir = Path(sys.executable).parent
    return subprocess.run([str(bindir / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOK), "-e", json.dumps(extra),
                           *args], capture_output=True, text=True, env=env, cwd=tmp_path)


def report(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert DB_PASSWORD not in proc.stdout + proc.stderr
    return next(line for line in proc.stdout.splitlines() if "metrics-db:" in line and "groups:" in line)


def test_the_stack_is_planned_deployed_repeated_and_deleted_in_order(tmp_path, helm, kubeconfig, namespace, kubectl):
    planned = report(stack(tmp_path, helm, kubeconfig, namespace, "--check", "--diff"))
    assert f"{namespace}/metrics-db: install" in planned and f"{namespace}/metrics-exporter: install" in planned
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0, "check mode created the namespace"

    deployed = report(stack(tmp_path, helm, kubeconfig, namespace))
    assert f"groups: {namespace}/metrics-db | {namespace}/monitoring-web-service | {namespace}/metrics-exporter" in deployed
    for name in ("metrics-db", "monitoring-web-service", "metrics-exporter"):
        assert f"{namespace}/{name}: install -> revision 1" in deployed, deployed

    again = report(stack(tmp_path, helm, kubeconfig, namespace))
    assert again.count(": none") == 3, again

    deleted = report(stack(tmp_path, helm, kubeconfig, namespace, state="absent"))
    assert f"groups: {namespace}/metrics-exporter | {namespace}/monitoring-web-service | {namespace}/metrics-db" in deleted
    assert deleted.count(": uninstall") == 3, deleted
    secrets = kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm", "-o", "name").stdout.strip()
    assert secrets == ""
