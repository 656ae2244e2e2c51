from __future__ import annotations

import datetime

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rollout import (
    RolloutWatcher,
    current_pods,
    diagnose,
    resources_from_helm,
    rollout_monitor,
    summarize,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import FailFastPolicy
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, kube_client

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
POLICY = FailFastPolicy(enabled=True, restarts=3, grace=30)


def deployment(revision: str = "2", uid: str = "dep-uid", conditions: list | None = None, observed: int = 2) -> dict:
    return {"kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": uid, "generation": 2,
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
            "status": {"conditions": conditions or [], "observedGeneration": observed}}


def replicaset(name: str, revision: str, template_hash: str, owner: str = "dep-uid") -> dict:
    return {"metadata": {"name": name, "labels": {"pod-template-hash": template_hash},
                         "annotations": {"deployment.kubernetes.io/revision": revision},
                         "ownerReferences": [{"uid": owner}]}}


def pod(name: str, template_hash: str, *, waiting: str | None = None, restarts: int = 0, message: str = "",
        unschedulable_since: str | None = None, labels: dict | None = None) -> dict:
    status: dict = {"containerStatuses": [{"name": "app", "restartCount": restarts,
                                           "state": {"waiting": {"reason": waiting, "message": message}} if waiting else {"running": {}},
                                           "lastState": {"terminated": {"exitCode": 1}} if restarts else {}}]}
    if unschedulable_since:
        status = {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                  "message": "0/1 nodes are available", "lastTransitionTime": unschedulable_since}]}
    return {"metadata": {"name": name, "namespace": "ns",
                         "labels": dict({"app": "web", "pod-template-hash": template_hash}, **(labels or {}))},
            "status": status}


RS = [replicaset("web-old", "1", "old"), replicaset("web-new", "2", "new")]


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "InvalidImageName"])
def test_a_container_that_cannot_start_fails_at_once(reason):
    failures = diagnose([deployment()], [pod("web-new-1", "new", waiting=reason, message="nope")], RS, POLICY, NOW)
    assert [(f.kind, f.name, f.pod, f.container, f.reason, f.message) for f in failures] == [
        ("Deployment", "web", "web-new-1", "app", reason, "nope")]


def test_a_crash_loop_fails_only_at_the_restart_threshold():
    below = pod("web-new-1", "new", waiting="CrashLoopBackOff", restarts=2)
    assert diagnose([deployment()], [below], RS, POLICY, NOW) == []
    at = pod("web-new-1", "new", waiting="CrashLoopBackOff", restarts=3)
    [failure] = diagnose([deployment()], [at], RS, POLICY, NOW)
    assert failure.reason == "CrashLoopBackOff" and failure.message == "restarted 3 times, last exit code 1"


def test_pods_an_upgrade_replaces_are_not_judged():
    # The old template's pods crash-loop; the upgrade is what fixes them.
    old = pod("web-old-1", "old", waiting="CrashLoopBackOff", restarts=9)
    healthy_new = pod("web-new-1", "new")
    assert diagnose([deployment()], [old, healthy_new], RS, POLICY, NOW) == []


def test_before_the_controller_sees_the_new_template_nothing_is_judged():
    # An upgrade that fixes a crash loop: the Deployment still names the old ReplicaSet.
    old = pod("web-old-1", "old", waiting="CrashLoopBackOff", restarts=9)
    assert diagnose([deployment(revision="1", observed=1)], [old], RS, POLICY, NOW) == []


def test_a_workload_helm_has_not_changed_yet_is_not_judged():
    # While a pre-upgrade hook runs, or when only a ConfigMap changes: the old pods are not
    # what this operation rolls out.
    crashing = pod("web-new-1", "new", waiting="CrashLoopBackOff", restarts=9)
    dep = deployment()
    unchanged = {("Deployment", "web"): ("dep-uid", 2)}
    assert diagnose([dep], [crashing], RS, POLICY, NOW, unchanged) == []
    changed = {("Deployment", "web"): ("dep-uid", 1)}
    assert len(diagnose([dep], [crashing], RS, POLICY, NOW, changed)) == 1
    assert len(diagnose([dep], [crashing], RS, POLICY, NOW, {})) == 1  # created by this operation


def test_before_the_new_replicaset_exists_nothing_is_judged():
    old = pod("web-old-1", "old", waiting="ImagePullBackOff")
    assert current_pods(deployment(revision="3"), [old], RS) == []


def test_a_replicaset_of_another_deployment_does_not_count():
    foreign = [replicaset("x-new", "2", "foreign", owner="other-uid")]
    bad = pod("x-1", "foreign", waiting="ImagePullBackOff")
    assert diagnose([deployment()], [bad], foreign, POLICY, NOW) == []


def test_unschedulable_fails_after_the_grace_period():
    recent = pod("web-new-1", "new", unschedulable_since="2026-01-01T11:59:50Z")
    assert diagnose([deployment()], [recent], RS, POLICY, NOW) == []
    old = pod("web-new-1", "new", unschedulable_since="2026-01-01T11:59:00Z")
    [failure] = diagnose([deployment()], [old], RS, POLICY, NOW)
    assert failure.reason == "Unschedulable" and "0/1 nodes" in failure.message


def test_a_deployment_past_its_progress_deadline_fails():
    dep = deployment(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                  "message": "ReplicaSet web-new has timed out progressing."}])
    [failure] = diagnose([dep], [], RS, POLICY, NOW)
    assert (failure.kind, failure.reason) == ("Deployment", "ProgressDeadlineExceeded")


def test_a_job_past_its_backoff_limit_fails():
    job = {"kind": "Job", "metadata": {"name": "migrate", "namespace": "ns", "uid": "j"},
           "spec": {"selector": {"matchLabels": {"job": "j"}}},
           "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                      "message": "Job has reached the specified backoff limit"}]}}
    [failure] = diagnose([job], [], [], POLICY, NOW)
    assert (failure.kind, failure.name, failure.reason) == ("Job", "migrate", "BackoffLimitExceeded")


def test_a_slow_pod_is_never_a_failure():
    slow = pod("web-new-1", "new", waiting="ContainerCreating")
    assert diagnose([deployment()], [slow], RS, POLICY, NOW) == []


def test_statefulset_pods_of_the_update_revision_only():
    sts = {"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "ns", "generation": 1},
           "spec": {"selector": {"matchLabels": {"app": "db"}}}, "status": {"updateRevision": "db-2", "observedGeneration": 1}}
    old = pod("db-0", "x", waiting="ImagePullBackOff", labels={"app": "db", "controller-revision-hash": "db-1"})
    new = pod("db-1", "x", waiting="ImagePullBackOff", labels={"app": "db", "controller-revision-hash": "db-2"})
    assert [f.pod for f in diagnose([sts], [old, new], [], POLICY, NOW)] == ["db-1"]


def test_summary_names_resource_container_and_reason():
    failures = diagnose([deployment()], [pod("web-new-1", "new", waiting="ErrImagePull", message="not found")], RS, POLICY, NOW)
    assert summarize(failures) == "Deployment/web container app: ErrImagePull (not found)"


DEPLOYMENTS = "/apis/apps/v1/namespaces/ns/deployments"
PODS = "/api/v1/namespaces/ns/pods"
REPLICASETS = "/apis/apps/v1/namespaces/ns/replicasets"
EVENTS = "/api/v1/namespaces/ns/events"


def cluster(**collections: list[dict]) -> FakeApi:
    """A fake cluster with these objects in namespace ns: ``deployments=[...]``, ``pods=[...]``,
    ``replicasets=[...]``, ``events=[...]`` (events by their place in the list)."""
    where = {"deployments": DEPLOYMENTS, "pods": PODS, "replicasets": REPLICASETS, "events": EVENTS}
    api = FakeApi()
    for plural, objects in collections.items():
        for index, obj in enumerate(objects):
            api.put(f"{where[plural]}/{(obj.get('metadata') or {}).get('name') or f'{plural}-{index}'}", obj)
    return api


def paths(api: FakeApi) -> list[str]:
    return [path for _method, path in api.requests]


MANIFEST = """
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: config
"""


def test_watcher_lists_once_per_kind_and_gathers_redacted_evidence():
    crashing = pod("web-new-1", "new", waiting="CrashLoopBackOff", restarts=5)
    events = [
        {"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container, token=s3cr3t-value",
         "involvedObject": {"kind": "Pod", "name": "web-new-1"}, "lastTimestamp": "2026-01-01T11:59:59Z"},
        {"type": "Normal", "reason": "Pulled", "message": "ok", "involvedObject": {"kind": "Pod", "name": "web-new-1"}},
        {"type": "Warning", "reason": "BackOff", "message": "other", "involvedObject": {"kind": "Pod", "name": "unrelated"}},
    ]
    api = cluster(deployments=[deployment()], pods=[crashing], replicasets=RS, events=events)
    api.put_text(f"{PODS}/web-new-1/log", "boom: password s3cr3t-value rejected\n")
    watcher = RolloutWatcher(kube_client(api), "ns", MANIFEST, POLICY,
                             redact=lambda text: text.replace("s3cr3t-value", "********"), timeout=300)
    [failure] = watcher.poll(NOW)
    [step] = watcher.timeline
    assert (step["resource"], step["state"], step["detail"]) == ("Deployment/web", "failing", "CrashLoopBackOff")
    assert 299 <= step["seconds_left"] <= 300
    assert paths(api)[:3] == ["/apis/apps/v1/namespaces/ns/deployments", "/api/v1/namespaces/ns/pods",
                              "/apis/apps/v1/namespaces/ns/replicasets"]
    assert failure.events == [{"reason": "BackOff", "message": "Back-off restarting failed container, token=********",
                               "count": 1, "object": "Pod/web-new-1"}]
    assert failure.logs == "boom: password ******** rejected\n"
    assert "s3cr3t-value" not in repr(failure.as_dict())


def test_watcher_without_workloads_makes_no_request():
    api = cluster()
    watcher = RolloutWatcher(kube_client(api), "ns", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n", POLICY)
    assert not watcher.has_workloads
    assert watcher.poll(NOW) == [] and paths(api) == []


def test_monitor_judges_only_what_changed_after_it_started():
    crashing = pod("web-new-1", "new", waiting="CrashLoopBackOff", restarts=5)
    dep = deployment()
    api = cluster(deployments=[dep], pods=[crashing], replicasets=RS)
    check = rollout_monitor(RolloutWatcher(kube_client(api), "ns", MANIFEST, POLICY))
    assert check() is None  # helm has not applied the new template yet
    dep["metadata"]["generation"] = dep["status"]["observedGeneration"] = 3
    api.put(f"{DEPLOYMENTS}/web", dep)
    error = check()
    assert error.kind == "rollout_failed"
    assert error.details["resources"][0]["reason"] == "CrashLoopBackOff"
    assert error.msg == "The rollout cannot succeed: Deployment/web container app: CrashLoopBackOff (restarted 5 times, last exit code 1)."


def test_a_first_install_is_watched_from_the_manifest_helm_records():
    """Not rendered before: nothing is read until helm has recorded the revision, then its
    workloads are judged (no baseline: nothing of a first install existed before it)."""
    crashing = pod("web-new-1", "new", waiting="CrashLoopBackOff", restarts=5)
    api = cluster(deployments=[deployment()], pods=[crashing], replicasets=RS)
    recorded: list[str | None] = [None]
    watcher = RolloutWatcher(kube_client(api), "ns", lambda: recorded[0], POLICY)
    check = rollout_monitor(watcher)
    assert watcher.has_workloads and check is not None and watcher.baseline is None
    assert check() is None and paths(api) == []  # helm has not recorded the release yet
    recorded[0] = MANIFEST
    error = check()
    assert error.kind == "rollout_failed" and error.details["resources"][0]["name"] == "web"
    assert watcher.names == {"Deployment": {"web"}}


def test_no_monitor_when_fail_fast_is_off_or_nothing_to_watch():
    api = cluster()
    assert rollout_monitor(RolloutWatcher(kube_client(api), "ns", MANIFEST, FailFastPolicy(enabled=False))) is None
    assert rollout_monitor(RolloutWatcher(kube_client(api), "ns", "", POLICY)) is None
    assert paths(api) == []


def test_helm_4s_waiter_verdict_becomes_error_resources():
    stderr = ('level=WARN msg="upgrade failed" error="resource Deployment/apps/web-web not ready. status: Failed, '
              'message: Progress deadline exceeded"\nError: UPGRADE FAILED: release web failed, and has been rolled back due to '
              'rollback-on-failure being set: resource Deployment/apps/web-web not ready. status: Failed, message: '
              'Progress deadline exceeded\n')
    assert resources_from_helm(stderr) == [{"kind": "Deployment", "namespace": "apps", "name": "web-web",
                                            "reason": "ProgressDeadlineExceeded", "message": "Progress deadline exceeded",
                                            "events": []}]
    assert resources_from_helm("Error: context deadline exceeded") == []
