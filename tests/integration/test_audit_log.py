# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit_log callback in real ansible-playbook runs on the local cluster, helm 3 and helm 4."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import typing as t
from pathlib import Path

from conftest import CHARTS, COLLECTIONS, run_playbook

SAMPLE = str(CHARTS / "sample")
SECRET = "Tr0ub4dor-audit-s3cret-9f1c"


def audit_env(log: Path, **extra: str) -> dict[str, str]:
    return dict({"ANSIBLE_CALLBACKS_ENABLED": "ai_mesh.helm_engine.audit_log", "HELM_ENGINE_AUDIT_LOG": str(log)},
                **extra)


def play(kubeconfig: str, helm: str, tasks: str, *, header: str = "") -> str:
    """A play on localhost with helm and the cluster set once for the whole module group."""
    return f"""
- hosts: localhost
  gather_facts: false
  {header}
  module_defaults:
    group/ai_mesh.helm_engine.helm_engine:
      kubeconfig: {kubeconfig}
      binary_path: {helm}
  tasks:
{tasks}
"""


def deploy_task(name: str, namespace: str, values: dict[str, t.Any] | None = None, *, timeout: str = "60s",
                indent: int = 4, extra: str = "") -> str:
    pad = " " * indent
    return (f"{pad}- name: {name}\n"
            f"{pad}  ai_mesh.helm_engine.helm_deploy:\n"
            f"{pad}    name: web\n{pad}    namespace: {namespace}\n{pad}    create_namespace: true\n"
            f"{pad}    chart_ref: {SAMPLE}\n{pad}    wait: true\n{pad}    timeout: {timeout}\n"
            f"{pad}    release_values: {json.dumps(values or {})}\n{extra}")


def read_log(log: Path) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in log.read_bytes().splitlines()]


def results(log: Path) -> list[dict[str, t.Any]]:
    return [r for r in read_log(log) if r["event"] == "task_result"]


def verify_playbook(log_glob: str, tmp_path: Path) -> subprocess.CompletedProcess:
    bindir = Path(sys.executable).parent
    env = {"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS), "ANSIBLE_NOCOLOR": "1", "PATH": str(bindir) + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run([str(bindir / "ansible-playbook"), "ai_mesh.helm_engine.audit_verify",
                           "-e", f"audit_log={log_glob}", "-e", f"ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, env=dict(os.environ, **env), cwd=tmp_path)


def assert_ran(proc: subprocess.CompletedProcess, rc: int = 0) -> None:
    assert proc.returncode == rc, f"rc={proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"


def test_a_release_lifecycle_is_logged_in_order_and_verifies(helm, kubeconfig, namespace, tmp_path):
    log = tmp_path / "audit" / "audit.log"
    tasks = "\n".join([
        deploy_task("install", namespace, {"message": "one"}),
        deploy_task("upgrade", namespace, {"message": "two"}),
        "    - name: upgrade that never becomes ready\n      block:\n"
        + deploy_task("failing upgrade", namespace, {"message": "three", "notReady": True}, timeout="6s", indent=8)
        + "      rescue:\n"
        "        - name: roll back\n"
        "          helm_rollback: {name: web, namespace: " + namespace + ", wait: true, timeout: 60s}\n",
        "    - name: delete\n"
        "      ai_mesh.helm_engine.helm_deploy: {name: web, namespace: " + namespace + ", state: absent, wait: true}\n",
    ])
    # helm_rollback by its short name, through the collections keyword
    proc = run_playbook(play(kubeconfig, helm, tasks, header="collections: [ai_mesh.helm_engine]"),
                        tmp_path=tmp_path, env=audit_env(log))
    assert_ran(proc)

    records = read_log(log)
    assert [r["event"] for r in records][:2] == ["genesis", "playbook_start"]
    assert records[-1]["event"] == "playbook_end"
    assert len({r["run_id"] for r in records if "run_id" in r}) == 1
    steps = [(r["task"], r["module"], r["status"], r.get("action"), r.get("revision_before"), r.get("revision_after"))
             for r in results(log)]
    # A failed helm_deploy still says what it attempted and from which revision.
    failed_action, failed_before = steps[2][3:5]
    assert (failed_action, failed_before) == ("upgrade", 2), steps[2]
    assert steps == [
        ("install", "ai_mesh.helm_engine.helm_deploy", "changed", "install", None, 1),
        ("upgrade", "ai_mesh.helm_engine.helm_deploy", "changed", "upgrade", 1, 2),
        ("failing upgrade", "ai_mesh.helm_engine.helm_deploy", "failed", failed_action, failed_before, 3),
        ("roll back", "ai_mesh.helm_engine.helm_rollback", "changed", "rollback", 3, 4),
        ("delete", "ai_mesh.helm_engine.helm_deploy", "changed", "uninstall", 4, None),
    ], steps
    install, upgrade, failed, rollback, delete = results(log)
    assert install["changes"]["added"] and "Deployment/web-web" in install["changes"]["added"]
    assert upgrade["changes"]["changed"], upgrade
    assert failed["error"]["kind"] == "timeout" and failed["status_after"] == "failed"
    assert rollback["rollback"]["from_revision"] == 3 and rollback["rollback"]["to_revision"] == 2
    assert rollback["rollback"]["left"]["revision"] == 3 and rollback["rollback"]["left"]["values_digest"]
    assert all(r["helm_processes"] >= 1 and r["duration"] > 0 for r in (install, upgrade, failed, rollback, delete))
    assert all(r["namespace"] == namespace and r["release"] == "web" for r in results(log))
    assert all(r["check_mode"] is False for r in results(log))

    intact = verify_playbook(str(log) + "*", tmp_path)
    assert_ran(intact)
    assert f"audit log intact: {len(records)} records in 1 file(s)" in " ".join(intact.stdout.split())

    # Each kind of damage, on a copy of this real log, is found at the right line.
    lines = log.read_bytes().splitlines(keepends=True)
    middle = next(i for i, r in enumerate(records) if r.get("task") == "upgrade" and r["event"] == "task_result")
    edited = lines[middle].replace(b'"revision_after":2', b'"revision_after":7')
    assert edited != lines[middle]
    damages = {
        "torn": (lines[:-1] + [lines[-1][:40]], len(lines), "is not a whole record"),
        "edited": (lines[:middle] + [edited] + lines[middle + 1:], middle + 1, f"line {middle + 1} was changed"),
        "deleted": (lines[:middle] + lines[middle + 1:], middle + 1, "missing (deleted)"),
        "swapped": (lines[:middle] + [lines[middle + 1], lines[middle]] + lines[middle + 2:], middle + 1, "out of order"),
    }
    for kind, (content, bad_line, words) in damages.items():
        damaged = tmp_path / kind / "audit.log"
        damaged.parent.mkdir()
        damaged.write_bytes(b"".join(content))
        proc = verify_playbook(str(damaged), tmp_path)
        output = " ".join(proc.stdout.split())
        assert proc.returncode == 2, (kind, proc.stdout)
        assert f"audit log NOT intact: {damaged} line {bad_line}:" in output, (kind, output)
        assert words in output, (kind, output)


def test_check_mode_and_ok_runs_are_marked(helm, kubeconfig, namespace, tmp_path):
    log = tmp_path / "audit.log"
    tasks = deploy_task("install", namespace) + deploy_task("again", namespace) + deploy_task(
        "check", namespace, {"message": "predicted"}, extra="      check_mode: true\n")
    assert_ran(run_playbook(play(kubeconfig, helm, tasks), tmp_path=tmp_path, env=audit_env(log)))
    install, again, check = results(log)
    assert (install["status"], again["status"], again["action"]) == ("changed", "ok", "none")
    assert again["revision_before"] == again["revision_after"] == 1
    assert (check["check_mode"], check["status"], check["action"], check["revision_after"]) == (True, "changed", "upgrade", 1)


def test_two_concurrent_runs_share_one_valid_chain(helm, kubeconfig, namespace, tmp_path):
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._audit import verify

    log = tmp_path / "shared" / "audit.log"
    status = "".join(
        f"    - name: status {i}\n      ai_mesh.helm_engine.helm_status: {{name: web, namespace: {namespace}}}\n"
        for i in range(6))
    procs: dict[str, subprocess.CompletedProcess] = {}

    def run(which: str) -> None:
        workdir = tmp_path / which
        workdir.mkdir()
        tasks = deploy_task(f"install {which}", namespace).replace("name: web\n", f"name: web-{which}\n", 1) + status
        procs[which] = run_playbook(play(kubeconfig, helm, tasks), tmp_path=workdir, env=audit_env(log))

    threads = [threading.Thread(target=run, args=(which,)) for which in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for proc in procs.values():
        assert_ran(proc)
    verification = verify(str(log) + "*")
    assert verification.ok, verification.reason
    records = read_log(log)
    assert verification.records == len(records)
    runs = {r["run_id"] for r in records if r["event"] == "playbook_start"}
    assert len(runs) == 2
    for run_id in runs:
        mine = [r for r in records if r.get("run_id") == run_id]
        assert [r["event"] for r in mine].count("task_result") == 7
        assert [r["event"] for r in mine].count("task_start") == 7
        assert mine[-1]["event"] == "playbook_end"
    assert [r["seq"] for r in records] == list(range(len(records)))


def test_a_secret_never_reaches_the_log_even_at_vvv(helm, kubeconfig, namespace, tmp_path):
    log = tmp_path / "audit.log"
    tasks = (deploy_task("install with a password", namespace, {"auth": {"password": SECRET}, "message": "hi"})
             + deploy_task("failing with the secret in values", namespace,
                           {"auth": {"password": SECRET}, "notReady": True}, timeout="5s",
                           extra="      ignore_errors: true\n")
             + "    - name: a no_log step\n      ai_mesh.helm_engine.helm_status: {name: web, namespace: "
             + namespace + "}\n      no_log: true\n")
    proc = run_playbook(play(kubeconfig, helm, tasks), tmp_path=tmp_path, env=audit_env(log), extra_args=["-vvv"])
    assert_ran(proc)
    text = log.read_text()
    assert len(results(log)) == 3 and results(log)[0]["action"] == "install"
    assert results(log)[2]["no_log"] is True and "release" not in results(log)[2]
    assert SECRET not in text
    assert SECRET[4:-4] not in text  # not even a fragment


def test_an_unwritable_log_warns_by_default(helm, kubeconfig, namespace, tmp_path, kubectl):
    (tmp_path / "not-a-directory").write_text("")
    log = tmp_path / "not-a-directory" / "audit.log"
    proc = run_playbook(play(kubeconfig, helm, deploy_task("install", namespace)), tmp_path=tmp_path, env=audit_env(log))
    assert_ran(proc)
    output = " ".join((proc.stdout + proc.stderr).split())
    assert output.count("helm_engine audit log NOT written") >= 3  # playbook start, task start, result
    assert "audit log NOT written for task 'install' on localhost" in output
    assert kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm", "-o", "name").stdout.strip()


def test_a_required_log_that_cannot_be_written_stops_before_any_helm_operation(helm, kubeconfig, namespace, tmp_path,
                                                                                kubectl):
    (tmp_path / "not-a-directory").write_text("")
    log = tmp_path / "not-a-directory" / "audit.log"
    marker = tmp_path / "after.txt"
    tasks = ("    - name: before\n      ansible.builtin.debug: {msg: before}\n"
             + deploy_task("install", namespace)
             + f"    - name: after\n      ansible.builtin.copy: {{dest: {marker}, content: ran}}\n")
    proc = run_playbook(play(kubeconfig, helm, tasks), tmp_path=tmp_path,
                        env=audit_env(log, HELM_ENGINE_AUDIT_REQUIRED="true"))
    assert_ran(proc, 3)
    output = " ".join((proc.stdout + proc.stderr).split())
    assert '"msg": "before"' in output
    assert "stopping before task 'install'" in output
    assert not marker.exists()
    # No helm operation: no release Secret, and not even the namespace helm would have created.
    assert kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm", "-o", "name").stdout.strip() == ""
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0
    assert "helm_processes" not in output


EXAMPLE_CHART = str(Path(__file__).resolve().parents[2] / "examples" / "monitoring-web-service" / "helm-chart")


def test_the_role_s_automatic_rollback_is_logged_and_verifies(helm, kubeconfig, namespace, tmp_path):
    """The role's steps through the callback: install, upgrade, an upgrade whose pods never
    become ready (rolled back by the role's handler), delete; the log verifies."""
    log = tmp_path / "audit" / "audit.log"

    def role_task(name: str, **role_vars: t.Any) -> str:
        variables = dict({"helm_release_name": "web", "helm_release_namespace": namespace,
                          "helm_release_chart_ref": EXAMPLE_CHART, "helm_release_binary_path": helm,
                          "helm_release_kubeconfig": kubeconfig, "helm_release_run_tests": False,
                          "helm_release_validate_timeout": "15s"}, **role_vars)
        return (f"    - name: {name}\n      ansible.builtin.include_role:\n        name: ai_mesh.helm_engine.helm_release\n"
                f"      vars: {json.dumps(variables)}\n")

    tasks = "".join([
        role_task("install", helm_release_values={"podLabels": {"tier": "one"}}),
        role_task("upgrade", helm_release_values={"podLabels": {"tier": "two"}}),
        "    - name: broken upgrade\n      block:\n"
        + role_task("broken", helm_release_values={"podLabels": {"helm-engine.test/ready": "false"}}).replace("\n    ", "\n        ").replace("    - name", "        - name", 1)
        + "      rescue:\n        - name: the role failed as expected\n          ansible.builtin.debug: {msg: expected}\n",
        role_task("delete", helm_release_state="absent"),
    ])
    proc = run_playbook(play(kubeconfig, helm, tasks), tmp_path=tmp_path, env=audit_env(log))
    assert_ran(proc)

    changes = [(r["module"].rsplit(".", 1)[-1], r["status"], r.get("action"), r.get("revision_before"), r.get("revision_after"))
               for r in results(log) if r["module"].endswith(("helm_deploy", "helm_rollback")) and r["status"] != "skipped"]
    # The handler that uninstalls a failed first install did not apply, and says so.
    assert [r["task"] for r in results(log) if r["status"] == "skipped" and r["module"].endswith("helm_deploy")] == \
        ["ai_mesh.helm_engine.helm_release : Uninstall the failed first install (helm_release rollback)"]
    assert changes == [
        ("helm_deploy", "changed", "install", None, 1),
        ("helm_deploy", "changed", "upgrade", 1, 2),
        ("helm_deploy", "changed", "upgrade", 2, 3),
        ("helm_rollback", "changed", "rollback", 3, 4),
        ("helm_deploy", "changed", "uninstall", 4, None),
    ], changes
    # The readiness step that failed is in the log with its kind, between the upgrade and the rollback.
    failures = [r for r in results(log) if r["status"] == "failed"]
    assert [r["module"] for r in failures] == ["ai_mesh.helm_engine.helm_status", "ansible.builtin.fail"], failures
    assert failures[0]["error"]["kind"] == "timeout"
    # The role's own failure, a step of this collection's role, is in the log with its cause.
    assert "step readiness failed" in json.dumps(failures[1]), failures[1]
    rollback = next(r for r in results(log) if r["module"].endswith("helm_rollback"))
    assert rollback["rollback"]["to_revision"] == 2

    intact = verify_playbook(str(log) + "*", tmp_path)
    assert_ran(intact)
    assert f"audit log intact: {len(read_log(log))} records in 1 file(s)" in " ".join(intact.stdout.split())
