"""A helm killed with SIGKILL mid-upgrade leaves pending-upgrade; the modules recover it.

The stuck state is produced for real: plain helm runs `upgrade --wait` of pods that never become
Ready (kwok marker) and is killed with SIGKILL while it waits.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from conftest import converge
from reliability_log import history_snapshot
from test_helm_deploy import SAMPLE, configmap, deploy_args


def release_statuses(kubectl, namespace: str) -> dict[int, str]:
    secrets = json.loads(kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm", "-o", "json").stdout)
    return {int(s["metadata"]["labels"]["version"]): s["metadata"]["labels"]["status"] for s in secrets["items"]}


def kill_helm_mid_upgrade(helm: str, kubeconfig: str, kubectl, namespace: str) -> None:
    proc = subprocess.Popen([helm, "upgrade", "web", SAMPLE, "--namespace", namespace, "--kubeconfig", kubeconfig,
                             "--set", "notReady=true", "--set", "message=stuck", "--wait", "--timeout", "120s"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while release_statuses(kubectl, namespace).get(2) != "pending-upgrade":
        assert proc.poll() is None, "helm ended before it could be killed"
        assert time.monotonic() < deadline, "helm never wrote a pending-upgrade revision"
        time.sleep(0.2)
    time.sleep(1)  # let it reach the wait
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.reliability("interruption", "helm SIGKILLed mid-upgrade (helm_deploy recovers)")
def test_sigkilled_upgrade_is_reported_then_recovered(run_module, helm, kubeconfig, kubectl, namespace, reliability):
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "before"}))
    before = history_snapshot(kubectl, namespace, "web")
    kill_helm_mid_upgrade(helm, kubeconfig, kubectl, namespace)
    assert release_statuses(kubectl, namespace) == {1: "deployed", 2: "pending-upgrade"}

    status = run_module("helm_status", {"name": "web", "namespace": namespace})
    assert status["pending"]["operation"] == "upgrade" and status["pending"]["stale"] is False
    assert status["healthy"] is False and status["summary"].startswith("pending-upgrade since")

    # Not stale yet (another helm could still be running): fail fast, change nothing.
    locked = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "after"}), expect_failure=True)
    assert locked["error"]["kind"] == "release_locked"
    assert locked["error"]["pending"]["revision"] == 2
    assert release_statuses(kubectl, namespace) == {1: "deployed", 2: "pending-upgrade"}

    time.sleep(2)
    args = deploy_args(namespace, release_values={"message": "after"}, stale_pending_after=1)
    status = run_module("helm_status", {"name": "web", "namespace": namespace, "stale_pending_after": 1})
    assert status["pending"]["stale"] is True
    check = run_module("helm_deploy", args, check=True)
    assert check["changed"] and check["action"] == "upgrade"
    assert check["recovery"] == {"stuck_revision": 2, "stuck_status": "pending-upgrade", "since": check["recovery"]["since"],
                                 "action": "rollback", "to_revision": 1, "performed": False}
    assert release_statuses(kubectl, namespace) == {1: "deployed", 2: "pending-upgrade"}, "check mode changed something"

    real = run_module("helm_deploy", args)
    assert real["changed"] and real["action"] == "upgrade"
    assert real["recovery"]["performed"] is True and real["recovery"]["to_revision"] == 1
    assert real["release"]["status"] == "deployed" and real["release"]["revision"] == 4
    assert configmap(kubectl, namespace)["MESSAGE"] == "after"
    # Nothing lost: the stuck revision stays in the history, marked failed with the reason.
    assert release_statuses(kubectl, namespace) == {1: "superseded", 2: "failed", 3: "superseded", 4: "deployed"}
    history = run_module("helm_status", {"name": "web", "namespace": namespace})["history"]
    assert "pending-upgrade abandoned" in history[1]["description"]
    assert "Rollback to 1" in history[2]["description"]
    helm_history = json.loads(subprocess.run([helm, "history", "web", "-n", namespace, "--kubeconfig", kubeconfig,
                                              "-o", "json"], check=True, capture_output=True, text=True).stdout)
    assert [h["status"] for h in helm_history] == ["superseded", "failed", "superseded", "deployed"], "helm must read what we wrote"
    again = run_module("helm_deploy", args)
    assert again["changed"] is False and "recovery" not in again
    reliability.check_nothing_lost(kubectl, namespace, "web", before)


@pytest.mark.reliability("interruption", "helm SIGKILLed mid-upgrade (helm_rollback recovers)")
def test_rollback_module_unlocks_a_stale_pending_release(run_module, helm, kubeconfig, kubectl, namespace, reliability):
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "before"}))
    before = history_snapshot(kubectl, namespace, "web")
    kill_helm_mid_upgrade(helm, kubeconfig, kubectl, namespace)
    locked = run_module("helm_rollback", {"name": "web", "namespace": namespace}, expect_failure=True)
    assert locked["error"]["kind"] == "release_locked"
    time.sleep(2)
    real = converge(run_module, "helm_rollback", {"name": "web", "namespace": namespace, "stale_pending_after": 1,
                                                  "wait": True, "timeout": "60s"}, "rollback")["real"]
    assert real["recovery"]["stuck_status"] == "pending-upgrade" and real["recovery"]["performed"] is True
    assert real["to_revision"] == 1 and real["left"]["status"] == "pending-upgrade"
    assert release_statuses(kubectl, namespace)[2] == "failed"
    assert configmap(kubectl, namespace)["MESSAGE"] == "before"
    reliability.check_nothing_lost(kubectl, namespace, "web", before)
