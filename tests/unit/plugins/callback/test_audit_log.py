# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The audit_log callback, fed with fake playbooks, tasks and results of every kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.callback import audit_log
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._audit import AuditWriter, verify

REPO = Path(__file__).resolve().parents[4]
SECRET = "s3cr3t-Hunter2-value"


class FakeDisplay:
    verbosity = 0

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def warning(self, msg: str, *args: t.Any, **kwargs: t.Any) -> None:
        self.warnings.append(msg)

    def error(self, msg: str, *args: t.Any, **kwargs: t.Any) -> None:
        self.errors.append(msg)


class FakeRole:
    def __init__(self, collection: str | None, name: str, path: str) -> None:
        self._role_collection = collection
        self._role_name = name
        self._role_path = path

    def get_name(self, include_role_fqcn: bool = True) -> str:
        return f"{self._role_collection}.{self._role_name}" if include_role_fqcn and self._role_collection else self._role_name


class FakeTask:
    def __init__(self, action: str, name: str = "a task", *, role: FakeRole | None = None, check_mode: bool = False,
                 no_log: bool = False) -> None:
        self.action = action
        self._resolved_action = action if "." in action else None
        self._role = role
        self.check_mode = check_mode
        self.no_log = no_log
        self.name = name
        self._uuid = uuid.uuid4().hex

    @property
    def resolved_action(self) -> str:
        return self.action

    def get_name(self) -> str:
        return self.name


class FakeHost:
    def get_name(self) -> str:
        return "web-1"


class FakeResult:
    def __init__(self, task: FakeTask, result: dict[str, t.Any]) -> None:
        self._task = task
        self._host = FakeHost()
        self._result = result


class FakePlaybook:
    _file_name = "/srv/site.yml"
    _loader = None


class FakePlay:
    def get_name(self) -> str:
        return "Deploy web"


class FakeStats:
    processed = {"web-1": 1}

    def summarize(self, host: str) -> dict[str, int]:
        return {"ok": 3, "changed": 1, "failures": 0}


DEPLOY_RESULT = {
    "changed": True,
    "action": "upgrade",
    "release": {"name": "web", "namespace": "prod", "revision": 4, "status": "deployed", "chart": "web",
                "chart_version": "1.4.0", "app_version": "2.1", "description": "Upgrade complete"},
    "previous_revision": 3,
    "values_digest": "sha256:" + "ab" * 32,
    "changes": [
        {"kind": "Deployment", "name": "web", "namespace": "prod", "api_version": "apps/v1", "change": "changed"},
        {"kind": "ConfigMap", "name": "web-extra", "namespace": "prod", "api_version": "v1", "change": "added"},
        {"kind": "Secret", "name": "old", "namespace": "prod", "api_version": "v1", "change": "removed"},
    ],
    "diff": [{"before": "password: " + SECRET, "after": "x"}],
    "duration": 1.25,
    "helm_processes": 3,
    "helm_version": "v4.3.1",
    "commands": ["helm upgrade web ./web --set auth.password=" + SECRET],
    "invocation": {"module_args": {"name": "web", "namespace": "prod", "release_values": {"auth": {"password": SECRET}},
                                   "api_key": SECRET}},
}


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "audit" / "audit.log"


@pytest.fixture
def callback(log: Path) -> audit_log.CallbackModule:
    cb = audit_log.CallbackModule(display=FakeDisplay())
    cb.writer = AuditWriter(str(log))
    cb.v2_playbook_on_start(FakePlaybook())
    cb.v2_playbook_on_play_start(FakePlay())
    return cb


def records(log: Path, event: str | None = None) -> list[dict[str, t.Any]]:
    found = [json.loads(line) for line in log.read_bytes().splitlines()]
    return [r for r in found if event is None or r["event"] == event]


def run_task(cb: audit_log.CallbackModule, task: FakeTask, outcome: str, result: dict[str, t.Any]) -> None:
    cb.v2_playbook_on_task_start(task, is_conditional=False)
    getattr(cb, f"v2_runner_on_{outcome}")(FakeResult(task, result))


def test_a_changed_upgrade_keeps_the_picked_fields(callback, log):
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy", "Deploy web"), "ok", dict(DEPLOY_RESULT))
    record = records(log, "task_result")[0]
    assert record["status"] == "changed" and record["changed"] is True and record["failed"] is False
    assert record["check_mode"] is False
    assert (record["module"], record["release"], record["namespace"], record["action"]) == (
        "ai_mesh.helm_engine.helm_deploy", "web", "prod", "upgrade")
    assert (record["revision_before"], record["revision_after"]) == (3, 4)
    assert (record["chart"], record["chart_version"]) == ("web", "1.4.0")
    assert record["values_digest"] == "sha256:" + "ab" * 32
    assert record["changes"] == {"added": ["ConfigMap/web-extra"], "changed": ["Deployment/web"], "removed": ["Secret/old"]}
    assert (record["duration"], record["helm_processes"]) == (1.25, 3)
    assert (record["playbook"], record["play"], record["task"], record["host"]) == (
        "/srv/site.yml", "Deploy web", "Deploy web", "web-1")
    assert record["run_id"] == callback.run_id and record["controller_user"]
    assert "task_seconds" in record
    for never in ("diff", "commands", "invocation", "module_args"):
        assert never not in record
    assert SECRET not in log.read_text()
    assert verify(str(log)).ok


def test_a_task_start_record_precedes_each_helm_engine_task(callback, log):
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_status", "Status"), "ok", {"changed": False})
    assert [r["event"] for r in records(log)] == ["genesis", "playbook_start", "task_start", "task_result"]
    assert records(log, "task_start")[0]["task"] == "Status"


def test_values_digest_falls_back_to_the_release_and_is_never_computed(callback, log):
    result = dict(DEPLOY_RESULT, release=dict(DEPLOY_RESULT["release"], values_digest="sha256:" + "cd" * 32))
    del result["values_digest"]
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy"), "ok", result)
    assert records(log, "task_result")[0]["values_digest"] == "sha256:" + "cd" * 32
    result["release"] = DEPLOY_RESULT["release"]
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy"), "ok", result)
    assert "values_digest" not in records(log, "task_result")[1]


def test_check_mode_runs_are_marked(callback, log):
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy", check_mode=True), "ok", dict(DEPLOY_RESULT))
    start, result = records(log, "task_start")[0], records(log, "task_result")[0]
    assert start["check_mode"] is True and result["check_mode"] is True
    assert result["status"] == "changed"


def test_a_failed_upgrade_records_the_error_kind_and_message(callback, log):
    result = {"failed": True, "changed": True, "action": "upgrade", "msg": f"UPGRADE FAILED: timeout ({SECRET})",
              "error": {"kind": "timeout", "message": f"context deadline exceeded {SECRET}", "stderr": "long stderr"},
              "release": dict(DEPLOY_RESULT["release"], revision=5, status="failed"), "previous_revision": 4,
              "invocation": DEPLOY_RESULT["invocation"]}
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy"), "failed", result)
    record = records(log, "task_result")[0]
    assert record["status"] == "failed" and record["failed"] is True
    assert record["error"] == {"kind": "timeout", "message": "context deadline exceeded ********"}
    assert (record["revision_before"], record["revision_after"], record["status_after"]) == (4, 5, "failed")
    assert "long stderr" not in log.read_text() and SECRET not in log.read_text()


def test_a_rollback_records_from_to_and_the_state_left(callback, log):
    result = {"changed": True, "action": "rollback", "from_revision": 5, "previous_revision": 5, "to_revision": 4, "revision": 6,
              "release": dict(DEPLOY_RESULT["release"], revision=6),
              "left": {"revision": 5, "status": "failed", "user_values": {"auth": {"password": "<redacted>"}},
                       "values_digest": "sha256:11", "manifest_digest": "sha256:22"},
              "recovery": {"stuck_revision": 5, "stuck_status": "pending-upgrade", "action": "rollback",
                           "to_revision": 4, "performed": True, "stderr": "x"},
              "changes": [], "helm_processes": 2, "duration": 0.5}
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_rollback"), "ok", result)
    record = records(log, "task_result")[0]
    assert (record["revision_before"], record["revision_after"]) == (5, 6)
    assert record["rollback"] == {"from_revision": 5, "to_revision": 4,
                                  "left": {"revision": 5, "status": "failed", "values_digest": "sha256:11",
                                           "manifest_digest": "sha256:22"}}
    assert record["recovery"] == {"stuck_revision": 5, "stuck_status": "pending-upgrade", "action": "rollback",
                                  "to_revision": 4, "performed": True}
    assert "user_values" not in log.read_text()


def test_a_drift_correction_records_what_drifted_and_no_value(callback, log):
    drift = [{"api_version": "v1", "kind": "ConfigMap", "namespace": "web", "name": "web-config", "reason": "modified",
              "paths": ["/data/MESSAGE"]},
             {"api_version": "v1", "kind": "Service", "namespace": "web", "name": "web", "reason": "missing", "paths": []}]
    result = dict(DEPLOY_RESULT, action="correct_drift", changed=True, previous_revision=4, drift=drift,
                  diff=[{"before": f"MESSAGE: {SECRET}", "after": "MESSAGE: hello"}])
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy"), "ok", result)
    record = records(log, "task_result")[0]
    assert record["action"] == "correct_drift"
    assert record["drift"] == [{"kind": "ConfigMap", "namespace": "web", "name": "web-config", "reason": "modified",
                                "paths": ["/data/MESSAGE"]},
                               {"kind": "Service", "namespace": "web", "name": "web", "reason": "missing", "paths": []}]
    assert SECRET not in log.read_text()


def test_an_uninstall_records_what_cleanup_deleted_and_what_was_left(callback, log):
    cleaned = [{"api_version": "batch/v1", "kind": "Job", "namespace": "web", "name": "web-migrate",
                "reason": "hook (pre-install) helm does not track; delete policy: none"}]
    left = [{"api_version": "v1", "kind": "ConfigMap", "namespace": "web", "name": "web-settings",
             "reason": "resource-policy: keep"}]
    result = {"changed": True, "action": "uninstall", "previous_revision": 3, "cleaned": cleaned, "left_behind": left,
              "helm_processes": 1, "duration": 1.2}
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy"), "ok", result)
    record = records(log, "task_result")[0]
    assert record["cleaned"] == [{"kind": "Job", "namespace": "web", "name": "web-migrate",
                                  "reason": "hook (pre-install) helm does not track; delete policy: none"}]
    assert record["left_behind"] == [{"kind": "ConfigMap", "namespace": "web", "name": "web-settings",
                                      "reason": "resource-policy: keep"}]


def test_helm_releases_records_each_release_after_the_task(callback, log):
    outcomes = [
        {"name": "db", "namespace": "mon", "state": "present", "action": "install", "changed": True, "previous_revision": None,
         "revision": 1, "changes": [{"kind": "StatefulSet", "name": "db", "change": "added"}], "drift": [], "duration": 3.1,
         "release": {"name": "db", "namespace": "mon", "revision": 1, "status": "deployed", "chart": "db"}},
        {"name": "web", "namespace": "mon", "state": "present", "action": "upgrade", "changed": True, "previous_revision": 4,
         "revision": 5, "changes": [], "drift": [], "error": {"kind": "rollout_failed", "message": f"crash {SECRET} default-s3cret"},
         "rolled_back": True},
        {"name": "exporter", "namespace": "mon", "state": "present", "action": "skipped", "changed": False,
         "previous_revision": None, "revision": None, "changes": [], "drift": [],
         "skipped": "needs mon/web, which failed or was skipped"},
    ]
    result = {"changed": True, "failed": True, "msg": "1 of 3 release(s) failed", "releases": outcomes,
              "order": [["mon/db"], ["mon/web"], ["mon/exporter"]], "error": {"kind": "rollout_failed", "message": "x"},
              "invocation": {"module_args": {"defaults": {"release_values": {"token": "default-s3cret"}},
                                             "releases": [{"name": "web", "release_values": {"password": SECRET}}]}}}
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_releases"), "failed", result)
    [task] = records(log, "task_result")
    assert task["module"] == "ai_mesh.helm_engine.helm_releases" and task["error"]["kind"] == "rollout_failed"
    db, web, exporter = records(log, "release_result")
    assert (db["release"], db["namespace"], db["action"], db["revision_after"], db["status"]) == ("db", "mon", "install", 1, "ok")
    assert "revision_before" not in db  # a first install has none
    assert db["changes"]["added"] == ["StatefulSet/db"] and db["task"] == task["task"]
    assert (web["status"], web["error"]["kind"], web["revision_before"], web["revision_after"]) == ("failed", "rollout_failed", 4, 5)
    assert (exporter["status"], exporter["skip_reason"]) == ("skipped", "needs mon/web, which failed or was skipped")
    assert SECRET not in log.read_text() and "default-s3cret" not in log.read_text()


def test_skipped_and_unreachable_results(callback, log):
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy"), "skipped",
             {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"})
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_status"), "unreachable",
             {"unreachable": True, "msg": "Failed to connect to the host via ssh"})
    skipped, unreachable = records(log, "task_result")
    assert skipped["status"] == "skipped" and skipped["skip_reason"] == "Conditional result was False"
    assert skipped["failed"] is False and skipped["changed"] is False
    assert unreachable["status"] == "unreachable" and unreachable["failed"] is True
    assert unreachable["error"]["message"] == "Failed to connect to the host via ssh"


def test_no_log_results_keep_only_who_what_and_status(callback, log):
    task = FakeTask("ai_mesh.helm_engine.helm_deploy", no_log=True)
    run_task(callback, task, "ok", {"changed": True, "censored": "the output has been hidden", "_ansible_no_log": True,
                                    "action": SECRET})
    record = records(log, "task_result")[0]
    assert record["no_log"] is True and record["status"] == "changed"
    assert "action" not in record and "release" not in record
    assert SECRET not in log.read_text()


def test_tasks_of_other_collections_are_not_logged_but_this_collections_roles_are(callback, log):
    run_task(callback, FakeTask("ansible.builtin.debug"), "ok", {"changed": False, "msg": "hi"})
    role = FakeRole("ai_mesh.helm_engine", "helm_release", "/c/ansible_collections/ai_mesh/helm_engine/roles/helm_release")
    run_task(callback, FakeTask("ansible.builtin.set_fact", "record last good", role=role), "ok", {"changed": False})
    other_role = FakeRole("acme.web", "deploy", "/c/ansible_collections/acme/web/roles/deploy")
    run_task(callback, FakeTask("ansible.builtin.fail", role=other_role), "failed", {"failed": True, "msg": "no"})
    results = records(log, "task_result")
    assert len(results) == 1
    assert results[0]["role"] == "ai_mesh.helm_engine.helm_release" and results[0]["module"] == "ansible.builtin.set_fact"
    assert len(records(log, "task_start")) == 1


def test_a_role_task_failure_records_the_message(callback, log):
    role = FakeRole(None, "helm_release", "/c/ansible_collections/ai_mesh/helm_engine/roles/helm_release")
    run_task(callback, FakeTask("ansible.builtin.fail", role=role), "failed",
             {"failed": True, "msg": "deploy failed (timeout)"})
    record = records(log, "task_result")[0]
    assert record["role"] == "ai_mesh.helm_engine.helm_release"
    assert record["error"] == {"kind": None, "message": "deploy failed (timeout)"}


def test_loops_log_each_item_not_the_summary(callback, log):
    task = FakeTask("ai_mesh.helm_engine.helm_status")
    callback.v2_playbook_on_task_start(task, is_conditional=False)
    callback.v2_runner_item_on_ok(FakeResult(task, {"changed": False, "_ansible_item_label": SECRET}))
    callback.v2_runner_item_on_failed(FakeResult(task, {"failed": True, "msg": "x"}))
    callback.v2_runner_on_failed(FakeResult(task, {"failed": True, "results": [{}, {}]}))
    results = records(log, "task_result")
    assert [(r["status"], r["loop_item"]) for r in results] == [("ok", True), ("failed", True)]
    assert SECRET not in log.read_text()


def test_unknown_helm_engine_modules_are_logged_generically(callback, log):
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_preflight"), "ok",
             {"changed": False, "duration": 0.1, "helm_processes": 1, "checks": [{"password": SECRET}]})
    record = records(log, "task_result")[0]
    assert record["module"] == "ai_mesh.helm_engine.helm_preflight"
    assert (record["duration"], record["helm_processes"]) == (0.1, 1)
    assert "checks" not in record


def test_playbook_start_and_end(callback, log):
    callback.v2_playbook_on_stats(FakeStats())
    start, end = records(log, "playbook_start")[0], records(log, "playbook_end")[0]
    assert start["playbook"] == end["playbook"] == "/srv/site.yml"
    assert start["run_id"] == end["run_id"] == callback.run_id
    assert "check_mode" in start
    assert end["hosts"] == {"web-1": {"ok": 3, "changed": 1, "failures": 0}} and end["records_lost"] == 0


def test_awx_job_and_user_come_from_the_extra_vars(callback, log, monkeypatch):
    monkeypatch.setattr(audit_log, "load_extra_vars", lambda loader: {"tower_job_id": 17, "awx_user_name": "ops"})
    playbook = FakePlaybook()
    playbook._loader = object()
    callback.v2_playbook_on_start(playbook)
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_status"), "ok", {"changed": False})
    record = records(log, "task_result")[0]
    assert (record["awx_job_id"], record["awx_user"]) == ("17", "ops")


def test_an_unwritable_log_warns_on_every_record_by_default(tmp_path):
    (tmp_path / "a-file").write_text("")
    cb = audit_log.CallbackModule(display=FakeDisplay())
    cb.writer = AuditWriter(str(tmp_path / "a-file" / "audit.log"))
    cb.v2_playbook_on_start(FakePlaybook())
    for name in ("one", "two"):
        run_task(cb, FakeTask("ai_mesh.helm_engine.helm_deploy", name), "ok", dict(DEPLOY_RESULT))
    warnings = cb._display.warnings
    assert len(warnings) == 5  # playbook start, and start + result of each task
    assert all("audit log NOT written" in w for w in warnings)
    assert any("'two'" in w for w in warnings)
    assert cb.records_lost == 5


def test_required_stops_the_run_before_the_next_helm_engine_task(tmp_path):
    (tmp_path / "a-file").write_text("")
    cb = audit_log.CallbackModule(display=FakeDisplay())
    cb.writer = AuditWriter(str(tmp_path / "a-file" / "audit.log"))
    cb.required = True
    cb.v2_playbook_on_start(FakePlaybook())  # warns, does not stop: no helm operation yet
    cb.v2_playbook_on_task_start(FakeTask("ansible.builtin.debug"), is_conditional=False)  # not ours: runs
    with pytest.raises(SystemExit) as stopped:
        cb.v2_playbook_on_task_start(FakeTask("ai_mesh.helm_engine.helm_deploy", "Deploy"), is_conditional=False)
    assert stopped.value.code == audit_log.EXIT_AUDIT_REQUIRED
    assert "stopping before task 'Deploy'" in cb._display.errors[0]


def test_required_with_a_writable_log_lets_tasks_run(callback, log):
    callback.required = True
    run_task(callback, FakeTask("ai_mesh.helm_engine.helm_deploy"), "ok", dict(DEPLOY_RESULT))
    assert len(records(log, "task_result")) == 1


def test_the_documentation_renders_with_ansible_doc():
    bindir = Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"))
    # Under ansible-test units, PYTHONPATH holds a module-only stub of ansible; the CLI needs the real one.
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(bindir / "ansible-doc"), "-t", "callback", "--json", "ai_mesh.helm_engine.audit_log"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["ai_mesh.helm_engine.audit_log"]["doc"]
    options = doc["options"]
    assert set(options) == {"log_path", "required", "max_bytes"}
    assert options["log_path"]["env"] == [{"name": "HELM_ENGINE_AUDIT_LOG"}]
    assert options["required"]["env"] == [{"name": "HELM_ENGINE_AUDIT_REQUIRED"}]
    assert all(o["ini"][0]["section"] == "helm_engine_audit" for o in options.values())
    assert doc["type"] == "notification"
