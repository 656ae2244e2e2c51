"""Uninstall on the local cluster, every case on helm 3 and helm 4: every leftover named, cleanup
removes only what is provably the release's, check mode deletes nothing, wait sees everything go
(or names what a finalizer keeps), and failed or stale pending releases uninstall."""

from __future__ import annotations

import json
import subprocess
import time
import typing as t
import uuid

from conftest import CHARTS

LEFTOVERS = str(CHARTS / "leftovers")
SAMPLE = str(CHARTS / "sample")


def install(run_module, namespace: str, *, keep: bool = True, create_namespace: bool = True) -> None:
    run_module("helm_deploy", {"name": "web", "namespace": namespace, "create_namespace": create_namespace,
                               "chart_ref": LEFTOVERS, "release_values": {"keepConfig": keep}, "timeout": "90s"})


def claims_made(kubectl, namespace: str, count: int = 2) -> None:
    """The StatefulSet controller makes the claims shortly after the install."""
    deadline = time.monotonic() + 60
    while len(names(kubectl, namespace, "persistentvolumeclaims")) < count:
        assert time.monotonic() < deadline, "the StatefulSet made no claims"
        time.sleep(0.5)


def names(kubectl, namespace: str, kind: str) -> list[str]:
    found = kubectl("-n", namespace, "get", kind, "-o", "json", check=False)
    if found.returncode != 0:
        return []
    return sorted(i["metadata"]["name"] for i in json.loads(found.stdout)["items"]
                  if not i["metadata"].get("deletionTimestamp"))


def described(entries: list[dict[str, t.Any]]) -> list[tuple[str, str]]:
    return sorted((e["kind"], e["name"]) for e in entries)


EVERY_LEFTOVER = [("ConfigMap", "web-settings"), ("Job", "web-migrate"),
                  ("PersistentVolumeClaim", "data-web-db-0"), ("PersistentVolumeClaim", "data-web-db-1")]


def test_a_default_uninstall_names_every_leftover_and_deletes_nothing_more(run_module, namespace, kubectl):
    install(run_module, namespace)
    claims_made(kubectl, namespace)
    result = run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent"})
    assert result["changed"] is True and result["cleaned"] == []
    # The namespace create_namespace made is named too, with why it stays.
    assert described(result["left_behind"]) == sorted(EVERY_LEFTOVER + [("Namespace", namespace)])
    reasons = {(e["kind"], e["name"]): e["reason"] for e in result["left_behind"]}
    assert reasons[("Job", "web-migrate")] == "hook (pre-install) helm does not track; delete policy: none"
    assert reasons[("PersistentVolumeClaim", "data-web-db-0")] == "volume claim of StatefulSet web-db (volumeClaimTemplates)"
    assert reasons[("ConfigMap", "web-settings")] == "resource-policy: keep"
    assert names(kubectl, namespace, "jobs") == ["web-migrate"]
    assert names(kubectl, namespace, "persistentvolumeclaims") == ["data-web-db-0", "data-web-db-1"]
    assert "web-settings" in names(kubectl, namespace, "configmaps")
    assert names(kubectl, namespace, "statefulsets") == []


def test_cleanup_in_a_namespace_made_for_the_release_leaves_nothing(run_module, namespace, kubectl):
    install(run_module, namespace, keep=False)
    claims_made(kubectl, namespace)
    args = {"name": "web", "namespace": namespace, "state": "absent", "wait": True, "timeout": "90s",
            "cleanup": ["hooks", "volume_claims", "namespace"]}
    check = run_module("helm_deploy", args, check=True)
    assert names(kubectl, namespace, "persistentvolumeclaims") == ["data-web-db-0", "data-web-db-1"], "check mode deleted"
    assert names(kubectl, namespace, "jobs") == ["web-migrate"] and names(kubectl, namespace, "statefulsets") == ["web-db"]
    real = run_module("helm_deploy", args)
    assert described(check["cleaned"]) == described(real["cleaned"]) == sorted(
        [("Job", "web-migrate"), ("PersistentVolumeClaim", "data-web-db-0"), ("PersistentVolumeClaim", "data-web-db-1"),
         ("Namespace", namespace)])
    assert check["left_behind"] == real["left_behind"] == []
    # wait: the namespace (and with it everything) is gone when the task ends.
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0


def test_cleanup_in_someone_elses_namespace_keeps_it_and_what_is_kept(run_module, namespace, kubectl):
    kubectl("create", "namespace", namespace)
    install(run_module, namespace, create_namespace=False)
    claims_made(kubectl, namespace)
    args = {"name": "web", "namespace": namespace, "state": "absent", "wait": True, "timeout": "90s",
            "cleanup": ["hooks", "volume_claims", "namespace"]}
    result = run_module("helm_deploy", args)
    assert described(result["cleaned"]) == [("Job", "web-migrate"), ("PersistentVolumeClaim", "data-web-db-0"),
                                            ("PersistentVolumeClaim", "data-web-db-1")]
    assert described(result["left_behind"]) == [("ConfigMap", "web-settings")]
    assert names(kubectl, namespace, "jobs") == [] and names(kubectl, namespace, "persistentvolumeclaims") == []
    assert "web-settings" in names(kubectl, namespace, "configmaps")
    assert kubectl("get", "namespace", namespace).returncode == 0


def test_a_namespace_made_for_the_release_that_holds_more_stays_with_the_reason(run_module, namespace, kubectl):
    install(run_module, namespace)  # the ConfigMap is kept
    claims_made(kubectl, namespace)
    result = run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent",
                                        "cleanup": ["hooks", "volume_claims", "namespace"]})
    left = {(e["kind"], e["name"]): e["reason"] for e in result["left_behind"]}
    assert left[("Namespace", namespace)].endswith("not deleted: it still holds ConfigMap/web-settings")
    assert kubectl("get", "namespace", namespace).returncode == 0


def test_a_finalizer_that_never_clears_is_a_timeout_naming_the_object(run_module, namespace, kubectl):
    install(run_module, namespace, keep=False)
    claims_made(kubectl, namespace)
    kubectl("-n", namespace, "patch", "persistentvolumeclaim", "data-web-db-0", "--type=merge",
            "-p", json.dumps({"metadata": {"finalizers": ["helm-engine.test/never"]}}))
    try:
        result = run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent", "wait": True,
                                            "timeout": "5s", "cleanup": ["volume_claims"]}, expect_failure=True)
        assert result["error"]["kind"] == "timeout" and result["changed"] is True
        assert "PersistentVolumeClaim/data-web-db-0" in result["msg"]
        assert [e["name"] for e in result["error"]["remaining"]] == ["data-web-db-0"]
    finally:
        kubectl("-n", namespace, "patch", "persistentvolumeclaim", "data-web-db-0", "--type=merge",
                "-p", json.dumps({"metadata": {"finalizers": None}}), check=False)


def test_a_failed_release_uninstalls(run_module, namespace, kubectl):
    base = {"name": "web", "namespace": namespace, "create_namespace": True, "chart_ref": SAMPLE, "timeout": "60s"}
    run_module("helm_deploy", dict(base, wait=True))
    failed = run_module("helm_deploy", dict(base, release_values={"hooks": {"failPreUpgrade": True}}), expect_failure=True)
    assert failed["release"]["status"] == "failed"
    result = run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent"})
    assert result["changed"] is True and result["action"] == "uninstall"
    assert kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm,name=web", "-o", "name").stdout.strip() == ""


def test_a_pending_release_is_refused_while_fresh_and_uninstalled_once_stale(run_module, namespace, kubectl, helm, kubeconfig):
    base = {"name": "web", "namespace": namespace, "create_namespace": True, "chart_ref": SAMPLE, "timeout": "60s"}
    run_module("helm_deploy", dict(base, wait=True))
    proc = subprocess.Popen([helm, "upgrade", "web", SAMPLE, "--namespace", namespace, "--kubeconfig", kubeconfig,
                             "--set", "notReady=true", "--wait", "--timeout", "120s"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while "pending-upgrade" not in kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm",
                                               "-o", "jsonpath={.items[*].metadata.labels.status}").stdout:
            assert time.monotonic() < deadline, "helm never wrote a pending revision"
            time.sleep(0.2)
        proc.kill()  # a helm that dies: its revision stays pending
        proc.wait()
        time.sleep(1.5)  # older than the stale_pending_after below
        absent = {"name": "web", "namespace": namespace, "state": "absent"}
        locked = run_module("helm_deploy", absent, expect_failure=True)
        assert locked["error"]["kind"] == "release_locked" and locked["changed"] is False
        result = run_module("helm_deploy", dict(absent, stale_pending_after=1))
        assert result["changed"] is True and result["recovery"]["stuck_status"] == "pending-upgrade"
        assert kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm,name=web", "-o", "name").stdout.strip() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_uninstall_of_nothing_is_a_no_op_with_nothing_left(run_module, kubectl):
    namespace = f"it-{uuid.uuid4().hex[:8]}"
    result = run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent",
                                        "cleanup": ["hooks", "volume_claims", "namespace"]})
    assert (result["changed"], result["left_behind"], result["cleaned"]) == (False, [], [])
