"""Fail fast: a rollout that cannot succeed ends helm's wait in seconds, with its cause.

The failures are the cluster's own (kwok Stages, see tools/cluster/kwok-stages.yaml): a container
that crash-loops with a growing restart count, an image that cannot be pulled, and a nodeSelector
no node matches (the real scheduler marks those pods Unschedulable). Every upgrade runs with
`timeout: 5m` and `atomic`, so without fail-fast each would wait five minutes.
"""

from __future__ import annotations

import json
import time

import pytest
from reliability_log import history_snapshot
from test_helm_deploy import configmap, deploy_args

FAIL_FAST_LIMIT = 60  # seconds from the start of the doomed upgrade to the previous revision deployed again

DOOMED = {
    "crash loop": ({"crashLoop": True}, "CrashLoopBackOff", {}),
    "image pull": ({"unpullableImage": True}, "ImagePullBackOff", {}),
    "unschedulable": ({"nodeSelector": {"helm-engine.test/no-such-node": "true"}}, "Unschedulable",
                      {"fail_fast_grace": "3s"}),
    # Pods that never get ready (no crash): the Deployment controller itself gives up.
    "progress deadline": ({"notReady": True, "progressDeadlineSeconds": 5}, "ProgressDeadlineExceeded", {}),
}


def helm_history(helm: str, kubeconfig: str, namespace: str) -> list[dict]:
    import subprocess

    out = subprocess.run([helm, "history", "web", "-n", namespace, "--kubeconfig", kubeconfig, "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.mark.parametrize("case", sorted(DOOMED))
def test_a_doomed_upgrade_fails_fast_and_rolls_back(case, run_module, helm, kubeconfig, kubectl, namespace):
    values, reason, options = DOOMED[case]
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "good", "replicaCount": 1}))
    before = history_snapshot(kubectl, namespace, "web")

    args = deploy_args(namespace, release_values=dict(values, message="doomed", replicaCount=1),
                       timeout="5m", atomic=True, **options)
    started = time.monotonic()
    failed = run_module("helm_deploy", args, expect_failure=True)
    elapsed = time.monotonic() - started

    assert failed["error"]["kind"] == "rollout_failed", failed["msg"]
    assert elapsed < FAIL_FAST_LIMIT, f"{case}: {elapsed:.1f}s"
    [resource] = [r for r in failed["error"]["resources"] if r["reason"] == reason][:1]
    assert (resource["kind"], resource["name"]) == ("Deployment", "web-web")
    assert f"Deployment/web-web" in failed["msg"] and reason in failed["msg"]
    if case in ("crash loop", "image pull"):
        assert resource["container"] == "web" and resource["pod"].startswith("web-web-")
    elif case == "unschedulable":
        assert "didn't match" in resource["message"] or "node" in resource["message"]
        assert any(e["reason"] == "FailedScheduling" for e in resource["events"]), resource["events"]
    else:
        # The controller's words when fail-fast saw it first, helm 4's when its own waiter did.
        assert "timed out progressing" in resource["message"] or resource["message"] == "Progress deadline exceeded", resource
    if case == "crash loop":
        assert "kwok plays the kubelet" in resource["logs"]  # the crashing container's log tail

    # helm was stopped gently: it marked the upgrade failed and rolled back to revision 1 itself.
    statuses = [h["status"] for h in helm_history(helm, kubeconfig, namespace)]
    assert statuses == ["superseded", "failed", "deployed"], statuses
    assert failed["changed"] is True and failed["release"]["revision"] == 3 and failed["release"]["status"] == "deployed"
    assert "rolled back" in failed["msg"]
    assert configmap(kubectl, namespace)["MESSAGE"] == "good"
    if "helm gave up" not in failed["msg"]:  # fail-fast saw it first (else helm 4's own waiter did)
        assert any(step["state"] == "failing" for step in failed["timeline"]), failed["timeline"]
    else:
        assert "status: Failed" in failed["error"]["stderr"]
    after = history_snapshot(kubectl, namespace, "web")
    assert set(before) <= set(after) and after[1]["config"] == before[1]["config"]

    # helm_status explains it right after: the live Deployment is fine again (rolled back),
    # and the failed revision stays in the history with helm's reason.
    status = run_module("helm_status", {"name": "web", "namespace": namespace})
    assert status["release"]["revision"] == 3 and status["history"][1]["status"] == "failed"


def test_without_atomic_the_failed_revision_stays_and_status_names_the_cause(run_module, helm, kubeconfig, kubectl,
                                                                             namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"replicaCount": 1}))
    args = deploy_args(namespace, release_values={"crashLoop": True, "replicaCount": 1}, timeout="5m")
    started = time.monotonic()
    failed = run_module("helm_deploy", args, expect_failure=True)
    assert time.monotonic() - started < FAIL_FAST_LIMIT
    assert failed["error"]["kind"] == "rollout_failed"
    assert failed["release"]["revision"] == 2 and failed["release"]["status"] == "failed"
    assert "revision 2 is failed" in failed["msg"]

    status = run_module("helm_status", {"name": "web", "namespace": namespace})
    failing = [r for r in status["resources"] if r.get("reason")]
    assert [(r["kind"], r["reason"]) for r in failing] == [("Deployment", "CrashLoopBackOff")], status["resources"]
    assert status["healthy"] is False


def test_fail_fast_off_waits_as_helm_does(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"replicaCount": 1}))
    args = deploy_args(namespace, release_values={"crashLoop": True, "replicaCount": 1}, timeout="8s", fail_fast=False)
    started = time.monotonic()
    failed = run_module("helm_deploy", args, expect_failure=True)
    assert failed["error"]["kind"] == "timeout"
    assert time.monotonic() - started >= 8
    assert "timeline" not in failed


def test_a_slow_but_healthy_rollout_is_never_cut_short(run_module, kubectl, namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"replicaCount": 1}))
    args = deploy_args(namespace, release_values={"readyAfter": "10s", "replicaCount": 2, "message": "slow"},
                       timeout="60s", atomic=True, fail_fast_grace="1s")
    started = time.monotonic()
    done = run_module("helm_deploy", args)
    assert time.monotonic() - started >= 10
    assert done["release"]["status"] == "deployed" and done["release"]["revision"] == 2
    assert configmap(kubectl, namespace)["MESSAGE"] == "slow"
    states = [step["state"] for step in done["timeline"] if step["resource"] == "Deployment/web-web"]
    # Watched while the new pods were pending, and never judged failing.
    assert "waiting" in states and "failing" not in states, done["timeline"]


def test_a_rollback_to_a_doomed_revision_fails_fast(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"crashLoop": True, "replicaCount": 1}, wait=False))
    run_module("helm_deploy", deploy_args(namespace, release_values={"replicaCount": 1}))
    started = time.monotonic()
    failed = run_module("helm_rollback", {"name": "web", "namespace": namespace, "revision": 1, "wait": True,
                                          "timeout": "5m"}, expect_failure=True)
    assert time.monotonic() - started < FAIL_FAST_LIMIT
    assert failed["error"]["kind"] == "rollout_failed"
    assert failed["error"]["resources"][0]["reason"] == "CrashLoopBackOff"


def test_status_waiting_for_healthy_fails_fast_with_the_cause(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"unpullableImage": True, "replicaCount": 1},
                                          wait=False))
    started = time.monotonic()
    failed = run_module("helm_status", {"name": "web", "namespace": namespace, "wait_for": "healthy", "timeout": "5m"},
                        expect_failure=True)
    assert time.monotonic() - started < FAIL_FAST_LIMIT
    assert failed["error"]["kind"] == "rollout_failed"
    assert [r["reason"] for r in failed["error"]["resources"]] == ["ImagePullBackOff"]
    assert failed["timeline"] and failed["changed"] is False
    # Without fail_fast it polls until its timeout, as before.
    slow = run_module("helm_status", {"name": "web", "namespace": namespace, "wait_for": "healthy", "timeout": "3s",
                                      "fail_fast": False}, expect_failure=True)
    assert slow["error"]["kind"] == "timeout"
