"""The built tarball, installed into an empty collections path, runs against the local cluster:
the demo playbook by its FQCN, and a playbook through ansible-runner laid out as AWX lays out a
job (private data dir with project/, env/extravars, env/envvars), with the audit callback on."""

from __future__ import annotations

import json
import os
import re
import subprocess
import typing as t
import uuid

import pytest
import yaml

from conftest import BIN, REPO, clean_env


def _cluster() -> dict[str, str]:
    status = subprocess.run([str(REPO / "tools" / "cluster.sh"), "status"], check=False, capture_output=True, text=True)
    if status.returncode != 0:
        pytest.skip("the local cluster is not running (make test starts it)")
    out = subprocess.run([str(REPO / "tools" / "cluster.sh"), "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        key, _sep, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'\"")
    return env


@pytest.fixture
def namespace_named() -> t.Iterator[t.Callable[[str], str]]:
    """A unique namespace name per call, each deleted after the test (without waiting)."""
    names: list[str] = []

    def name(prefix: str) -> str:
        names.append(f"{prefix}-{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield name
    cluster = _cluster()
    for namespace in names:
        subprocess.run([cluster["HELM_ENGINE_KUBECTL"], "--kubeconfig", cluster["KUBECONFIG"], "delete", "namespace",
                        namespace, "--wait=false", "--ignore-not-found"], check=False, capture_output=True)


def test_the_demo_runs_from_the_installed_collection(installed, tmp_path, namespace_named):
    cluster = _cluster()
    namespace = namespace_named("pkg-demo")
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "ai_mesh.helm_engine.demo",
         "-e", f"ansible_python_interpreter={BIN / 'python'}", "-e", f"helm_engine_binary={cluster['HELM_ENGINE_HELM4']}",
         "-e", f"helm_engine_kubeconfig={cluster['KUBECONFIG']}", "-e", f"demo_namespace={namespace}"],
        check=False, capture_output=True, text=True, cwd=tmp_path,
        env=clean_env(ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_HOME=str(tmp_path / "home")))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # The play ran from the installed copy, not from this checkout.
    assert str(REPO) not in proc.stdout
    # The demo's expected failures are rescued; nothing else fails.
    assert re.search(r"failed=0 .*rescued=[1-9]", proc.stdout), proc.stdout[-2000:]


PLAYBOOK = """\
- name: A job as AWX runs it
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/ai_mesh.helm_engine.helm_engine:
      binary_path: "{{ helm_binary }}"
  tasks:
    - name: Deploy the release
      ai_mesh.helm_engine.helm_deploy:
        name: "{{ release }}"
        namespace: "{{ release_namespace }}"
        create_namespace: true
        chart_ref: "{{ chart }}"
        release_values: {replicaCount: 1}
        wait: true
        timeout: 2m
    - name: Read its status
      ai_mesh.helm_engine.helm_status:
        name: "{{ release }}"
        namespace: "{{ release_namespace }}"
        wait_for: healthy
        timeout: 60
    - name: Remove it
      ai_mesh.helm_engine.helm_deploy:
        name: "{{ release }}"
        namespace: "{{ release_namespace }}"
        state: absent
        wait: true
"""


def test_a_job_through_ansible_runner_as_awx_passes_it(installed, tmp_path, monkeypatch, namespace_named):
    import ansible_runner

    cluster = _cluster()
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ.get('PATH', '')}")  # ansible-runner starts ansible-playbook from PATH
    private = tmp_path / "job"
    (private / "project").mkdir(parents=True)
    (private / "env").mkdir()
    (private / "inventory").mkdir()
    (private / "project" / "site.yml").write_text(PLAYBOOK)
    (private / "inventory" / "hosts").write_text("localhost ansible_connection=local\n")
    namespace = namespace_named("pkg-runner")
    audit_log = private / "artifacts-audit" / "audit.log"
    audit_log.parent.mkdir()
    # AWX writes the job's extra vars (survey answers included) and its credential's environment here.
    extravars = {
        "release": "runner", "release_namespace": namespace, "chart": str(REPO / "tests" / "charts" / "sample"),
        "helm_binary": cluster["HELM_ENGINE_HELM3"], "ansible_python_interpreter": str(BIN / "python"),
        "awx_job_id": 4242, "awx_user_name": "alice",
    }
    envvars = {
        "K8S_AUTH_KUBECONFIG": cluster["KUBECONFIG"],
        "ANSIBLE_CALLBACKS_ENABLED": "ai_mesh.helm_engine.audit_log",
        "HELM_ENGINE_AUDIT_LOG": str(audit_log),
        "ANSIBLE_COLLECTIONS_PATH": str(installed),
        "ANSIBLE_HOME": str(tmp_path / "home"),
    }
    (private / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    (private / "env" / "envvars").write_text(yaml.safe_dump(envvars))

    result = ansible_runner.run(private_data_dir=str(private), playbook="site.yml", quiet=True)
    assert result.status == "successful", (result.rc, result.stdout.read()[-4000:])
    assert result.rc == 0
    ok_tasks = [e["event_data"]["task"] for e in result.events if e["event"] == "runner_on_ok"]
    assert ok_tasks == ["Deploy the release", "Read its status", "Remove it"]
    actions = [e["event_data"]["task_action"] for e in result.events if e["event"] == "runner_on_ok"]
    assert actions == ["ai_mesh.helm_engine.helm_deploy", "ai_mesh.helm_engine.helm_status", "ai_mesh.helm_engine.helm_deploy"]

    records = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert any(r.get("awx_job_id") == "4242" or r.get("awx_job_id") == 4242 for r in records), records[:3]
    verify = subprocess.run(
        [str(BIN / "ansible-playbook"), "ai_mesh.helm_engine.audit_verify", "-e", f"audit_log={audit_log}*",
         "-e", f"ansible_python_interpreter={BIN / 'python'}"],
        check=False, capture_output=True, text=True, cwd=tmp_path,
        env=clean_env(ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_HOME=str(tmp_path / "home")))
    assert verify.returncode == 0, verify.stdout[-3000:]
    assert "audit log intact" in verify.stdout
