"""helm_status as a whole, with the cluster faked: health, missing and pending releases, the
kubernetes.core ``status`` shape, release_state, get_all_values, wait_for and its timeline.

The same behaviours run on the local cluster in tests/integration/test_helm_status.py.
"""

from __future__ import annotations

import json
import time
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _task
from ansible_collections.ai_mesh.helm_engine.plugins.modules import helm_status
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, FakeKube
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release_json

SECRET = "Status-Unit-Secret-0c4d"

MANIFEST = """---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  MESSAGE: hello
"""


def revision(number: int, status: str, *, config: dict | None = None, updated: str = "2026-11-25T10:00:00Z",
             defaults: dict | None = None) -> dict[str, t.Any]:
    document = release_json(number, status, config=config if config is not None else {"message": "hi"}, manifest=MANIFEST,
                            updated=updated, description=f"revision {number}",
                            values=defaults if defaults is not None else {"replicaCount": 2, "message": "hello",
                                                                          "image": {"tag": "1.0"}})
    document["info"]["notes"] = "see docs"
    return document


def deployment(ready: int, desired: int = 2) -> dict[str, t.Any]:
    return {"metadata": {"name": "web", "namespace": "apps", "generation": 1}, "spec": {"replicas": desired},
            "status": {"observedGeneration": 1, "availableReplicas": ready, "updatedReplicas": desired}}


def run(monkeypatch, capsys, kubeconfig: str, args: dict[str, t.Any], history: list[dict[str, t.Any]], *,
        objects: dict[tuple[str, str], dict[str, t.Any]] | None = None,
        script: list[list[dict[str, t.Any]]] | None = None) -> dict[str, t.Any]:
    def no_helm(argv: list[str], **kwargs: t.Any) -> t.NoReturn:
        raise AssertionError(f"helm_status ran a helm process: {argv}")

    monkeypatch.setattr(_task, "run_process", no_helm)
    api = FakeApi()
    api.set_releases(history)
    api.script_releases(script or [])
    for (kind, name), obj in ({("Deployment", "web"): deployment(2), ("ConfigMap", "web-config"): {"data": {}}}
                              if objects is None else objects).items():
        api.put_live(kind, name, obj)
    monkeypatch.setattr(_task, "KubeClient", FakeKube.bind(api))
    full_args = dict({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig,
                      "_ansible_check_mode": False, "_ansible_diff": False}, **args)
    with patch_module_args(full_args), pytest.raises(SystemExit):
        helm_status.main()
    return json.loads(capsys.readouterr().out)


# ---- health --------------------------------------------------------------------------------------

def test_a_ready_deployed_release_is_healthy(monkeypatch, capsys, kubeconfig):
    result = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "superseded"), revision(2, "deployed")])
    assert result["changed"] is False and result["exists"] is True and result["healthy"] is True
    assert result["helm_processes"] == 0 and result["commands"] == []
    assert result["kube_requests"] >= 3
    assert (result["release_status"], result["revision"]) == ("deployed", 2)
    assert result["summary"] == "deployed, revision 2 (sample-0.1.0): 2/2 resources ready"
    assert [(h["revision"], h["status"]) for h in result["history"]] == [(1, "superseded"), (2, "deployed")]
    by_kind = {r["kind"]: r for r in result["resources"]}
    assert by_kind["Deployment"] == {"api_version": "apps/v1", "kind": "Deployment", "namespace": "apps", "name": "web",
                                     "present": True, "ready": True, "detail": "2/2 ready, 2 updated"}
    assert "pending" not in result


def test_a_not_ready_deployment_makes_it_unhealthy(monkeypatch, capsys, kubeconfig):
    objects = {("Deployment", "web"): deployment(0), ("ConfigMap", "web-config"): {"data": {}}}
    result = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "deployed")], objects=objects)
    assert result["exists"] is True and result["healthy"] is False
    assert result["summary"] == "deployed, revision 1 (sample-0.1.0): 1/2 resources ready; not ready: Deployment/web (0/2 ready, 2 updated)"


def test_a_missing_resource_is_reported(monkeypatch, capsys, kubeconfig):
    objects = {("ConfigMap", "web-config"): {"data": {}}}
    result = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "deployed")], objects=objects)
    assert result["healthy"] is False
    deployment_entry = next(r for r in result["resources"] if r["kind"] == "Deployment")
    assert (deployment_entry["present"], deployment_entry["ready"], deployment_entry["detail"]) == (False, False, "missing")


def test_a_failed_release_is_unhealthy_even_when_ready(monkeypatch, capsys, kubeconfig):
    result = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "superseded"), revision(2, "failed")])
    assert result["healthy"] is False and result["release_status"] == "failed"
    assert result["summary"].startswith("failed, revision 2")


# ---- missing --------------------------------------------------------------------------------------

def test_a_missing_release(monkeypatch, capsys, kubeconfig):
    result = run(monkeypatch, capsys, kubeconfig, {}, [])
    assert (result["exists"], result["healthy"], result["changed"]) == (False, False, False)
    assert result["summary"] == "release apps/web does not exist"
    assert "status" not in result and "release" not in result


def test_fail_on_missing_is_release_not_found(monkeypatch, capsys, kubeconfig):
    result = run(monkeypatch, capsys, kubeconfig, {"fail_on_missing": True}, [])
    assert result["failed"] and result["error"]["kind"] == "release_not_found"
    assert "does not exist" in result["msg"] and result["changed"] is False


def test_an_uninstalled_release_kept_in_history_is_missing_unless_asked(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "uninstalled")]
    assert run(monkeypatch, capsys, kubeconfig, {}, history)["exists"] is False
    asked = run(monkeypatch, capsys, kubeconfig, {"release_state": ["uninstalled"]}, history)
    assert asked["exists"] is True and asked["status"]["status"] == "uninstalled"
    assert asked["resources"] == []


# ---- pending --------------------------------------------------------------------------------------

def test_a_fresh_pending_release_is_not_stale(monkeypatch, capsys, kubeconfig):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "deployed"), revision(2, "pending-upgrade", updated=now)])
    pending = result["pending"]
    assert (pending["operation"], pending["status"], pending["revision"], pending["stale"]) == ("upgrade", "pending-upgrade", 2, False)
    assert pending["stale_after_seconds"] == 360
    assert result["healthy"] is False
    assert result["summary"].startswith(f"pending-upgrade since {now}; pending-upgrade, revision 2")


def test_an_old_pending_release_is_stale(monkeypatch, capsys, kubeconfig):
    result = run(monkeypatch, capsys, kubeconfig, {"stale_pending_after": "1m"},
                 [revision(1, "pending-install", updated="2020-01-01T00:00:00Z")])
    assert result["pending"]["stale"] is True and result["pending"]["stale_after_seconds"] == 60
    assert result["pending"]["operation"] == "install"
    assert "(stale)" in result["summary"]


# ---- the kubernetes.core status shape --------------------------------------------------------------

def test_status_has_the_helm_info_shape_with_secrets_redacted(monkeypatch, capsys, kubeconfig):
    config = {"message": "hi", "auth": {"password": SECRET}}
    result = run(monkeypatch, capsys, kubeconfig, {}, [revision(3, "deployed", config=config)])
    status = result["status"]
    assert status["revision"] == "3" and isinstance(status["revision"], str)
    assert {k: status[k] for k in ("name", "namespace", "status", "chart", "app_version", "updated", "notes")} == {
        "name": "web", "namespace": "apps", "status": "deployed", "chart": "sample-0.1.0", "app_version": "1.0.0",
        "updated": "2026-11-25T10:00:00Z", "notes": "see docs"}
    assert status["values"] == status["release_values"] == {"message": "hi", "auth": {"password": "<redacted>"}}
    assert status["hooks"] == []
    assert SECRET not in json.dumps(result)


def test_sensitive_values_hides_a_path_that_does_not_look_secret_in_values_and_notes(monkeypatch, capsys, kubeconfig):
    """As helm_deploy's sensitive_values: without it, a value under app.greeting is plain data."""
    release = revision(2, "deployed", config={"message": "hi", "app": {"greeting": SECRET}})
    release["info"]["notes"] = f"greeting: {SECRET}"
    plain = run(monkeypatch, capsys, kubeconfig, {}, [release])
    assert plain["status"]["values"]["app"]["greeting"] == SECRET
    hidden = run(monkeypatch, capsys, kubeconfig, {"sensitive_values": ["app.greeting"]}, [release])
    assert hidden["status"]["values"] == {"message": "hi", "app": {"greeting": "<redacted>"}}
    assert hidden["status"]["notes"] == "greeting: ********"
    assert SECRET not in json.dumps(hidden)


@pytest.mark.parametrize("states, current, reported", [
    ([], "deployed", True),
    (["all"], "failed", True),
    (["deployed"], "deployed", True),
    (["failed"], "deployed", False),
    (["deployed", "failed"], "failed", True),
    (["pending"], "pending-upgrade", True),
    (["deployed"], "pending-upgrade", False),
])
def test_release_state_filters_status(monkeypatch, capsys, kubeconfig, states, current, reported):
    result = run(monkeypatch, capsys, kubeconfig, {"release_state": states},
                 [revision(1, "superseded"), revision(2, current, updated="2099-01-01T00:00:00Z")])
    assert result["exists"] is True and result["release_status"] == current
    assert ("status" in result) is reported


def test_an_unknown_release_state_is_refused(monkeypatch, capsys, kubeconfig):
    result = run(monkeypatch, capsys, kubeconfig, {"release_state": ["happy"]}, [revision(1, "deployed")])
    assert result["failed"] and result["error"]["kind"] == "invalid_arguments"
    assert "release_state 'happy'" in result["msg"] and result["error"]["option"] == "release_state"


def test_get_all_values_merges_the_chart_defaults(monkeypatch, capsys, kubeconfig):
    config = {"message": "hi", "image": {"repository": "mine"}, "auth": {"password": SECRET}}
    defaults = {"replicaCount": 2, "message": "hello", "image": {"repository": "theirs", "tag": "1.0"}, "auth": {"password": ""}}
    only_user = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "deployed", config=config, defaults=defaults)])
    assert only_user["status"]["values"] == {"message": "hi", "image": {"repository": "mine"}, "auth": {"password": "<redacted>"}}
    merged = run(monkeypatch, capsys, kubeconfig, {"get_all_values": True}, [revision(1, "deployed", config=config, defaults=defaults)])
    assert merged["status"]["values"] == {"replicaCount": 2, "message": "hi", "image": {"repository": "mine", "tag": "1.0"},
                                          "auth": {"password": "<redacted>"}}


# ---- wait_for --------------------------------------------------------------------------------------

def test_wait_for_that_times_out_returns_the_timeline(monkeypatch, capsys, kubeconfig):
    objects = {("Deployment", "web"): deployment(0), ("ConfigMap", "web-config"): {"data": {}}}
    started = time.monotonic()
    result = run(monkeypatch, capsys, kubeconfig, {"wait_for": "healthy", "timeout": 0.7, "poll_interval": 0.2},
                 [revision(1, "deployed")], objects=objects)
    assert time.monotonic() - started < 5
    assert result["failed"] and result["error"]["kind"] == "timeout"
    assert "did not become healthy within 0.7s" in result["msg"]
    timeline = result["timeline"]
    assert len(timeline) >= 3
    assert all(step["healthy"] is False and step["status"] == "deployed" for step in timeline)
    assert [s["seconds"] for s in timeline] == sorted(s["seconds"] for s in timeline)
    assert result["changed"] is False and result["exists"] is True


def test_wait_for_deployed_stops_when_reached(monkeypatch, capsys, kubeconfig):
    pending = [revision(1, "superseded"), revision(2, "pending-upgrade", updated="2099-01-01T00:00:00Z")]
    done = [revision(1, "superseded"), revision(2, "deployed")]
    result = run(monkeypatch, capsys, kubeconfig, {"wait_for": "deployed", "timeout": 10, "poll_interval": 0.2}, done,
                 script=[pending, pending, done])
    assert result["changed"] is False and result["release_status"] == "deployed"
    assert [s["status"] for s in result["timeline"]] == ["pending-upgrade", "pending-upgrade", "deployed"]


# ---- refused inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, option, needle", [
    ({"poll_interval": 0}, "poll_interval", "between 0.2 and 300"),
    ({"poll_interval": -1}, "poll_interval", "between 0.2 and 300"),
    ({"poll_interval": 301}, "poll_interval", "between 0.2 and 300"),
    ({"timeout": "abc"}, "timeout", "is not a duration"),
    ({"timeout": "-5s"}, "timeout", "must be positive"),
    ({"timeout": "0"}, "timeout", "positive"),
    ({"timeout": 0}, "timeout", "positive"),
    ({"timeout": ""}, "timeout", "is empty"),
    ({"timeout": True}, "timeout", "not a boolean"),
    ({"timeout": "30d"}, "timeout", "is not a duration"),
    ({"stale_pending_after": "x"}, "stale_pending_after", "is not a duration"),
])
def test_bad_inputs_are_invalid_arguments(monkeypatch, capsys, kubeconfig, args, option, needle):
    result = run(monkeypatch, capsys, kubeconfig, args, [revision(1, "deployed")])
    assert result["failed"] and result["error"]["kind"] == "invalid_arguments", result
    assert result["error"].get("option") == option
    assert needle in result["msg"] and option in result["msg"]


def test_a_poll_interval_that_is_not_a_number_is_invalid_arguments(monkeypatch, capsys, kubeconfig):
    result = run(monkeypatch, capsys, kubeconfig, {"poll_interval": "often"}, [revision(1, "deployed")])
    assert result["failed"] and result["error"]["kind"] == "invalid_arguments"
    assert "poll_interval" in result["msg"]


# ---- check_drift ---------------------------------------------------------------------------------

IN_SYNC = {("Deployment", "web"): deployment(2), ("ConfigMap", "web-config"): {"data": {"MESSAGE": "hello"}}}


def test_check_drift_reads_nothing_more_and_reports_in_sync(monkeypatch, capsys, kubeconfig):
    plain = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "deployed")], objects=IN_SYNC)
    checked = run(monkeypatch, capsys, kubeconfig, {"check_drift": True}, [revision(1, "deployed")], objects=IN_SYNC)
    assert "drift" not in plain and "in_sync" not in plain
    assert (checked["drift"], checked["in_sync"], checked["changed"]) == ([], True, False)
    assert checked["kube_requests"] == plain["kube_requests"]  # the readiness reads serve the drift check


def test_check_drift_names_what_changed_and_changes_nothing(monkeypatch, capsys, kubeconfig):
    objects = {("Deployment", "web"): deployment(2, desired=5), ("ConfigMap", "web-config"): {"data": {"MESSAGE": "hello"}}}
    result = run(monkeypatch, capsys, kubeconfig, {"check_drift": True}, [revision(1, "deployed")], objects=objects)
    assert result["in_sync"] is False and result["changed"] is False
    assert result["drift"] == [{"api_version": "apps/v1", "kind": "Deployment", "namespace": "apps", "name": "web",
                                "reason": "modified", "paths": ["/spec/replicas"]}]
    assert result["summary"].endswith("; drifted: Deployment/web (/spec/replicas)")
    ignored = run(monkeypatch, capsys, kubeconfig, {"check_drift": True, "drift_ignore": [{"paths": ["/spec/replicas"]}]},
                  [revision(1, "deployed")], objects=objects)
    assert (ignored["drift"], ignored["in_sync"]) == ([], True)


def test_a_failed_revision_is_not_in_sync_and_not_compared(monkeypatch, capsys, kubeconfig):
    result = run(monkeypatch, capsys, kubeconfig, {"check_drift": True}, [revision(1, "failed")], objects={})
    assert (result["drift"], result["in_sync"]) == ([], False)
