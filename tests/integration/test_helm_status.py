"""helm_status against the local cluster, on helm 3 and helm 4 (pending releases:
test_behaviour_recovery.py)."""

from __future__ import annotations

import subprocess

from test_helm_deploy import SAMPLE, deploy_args


def status_args(namespace: str, **extra) -> dict:
    return dict({"name": "web", "namespace": namespace}, **extra)


def test_status_of_a_healthy_release(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"replicaCount": 3}))
    run_module("helm_deploy", deploy_args(namespace, release_values={"replicaCount": 2}))
    status = run_module("helm_status", status_args(namespace))
    assert status["changed"] is False and status["helm_processes"] == 0
    assert status["exists"] and status["healthy"] is True
    assert status["release_status"] == "deployed" and status["revision"] == 2
    # kubernetes.core.helm_info's shape, values included (nothing secret in these).
    assert {k: status["status"][k] for k in ("name", "namespace", "revision", "status", "chart", "values")} == {
        "name": "web", "namespace": namespace, "revision": "2", "status": "deployed", "chart": "sample-0.1.0",
        "values": {"replicaCount": 2},
    }
    assert status["summary"] == "deployed, revision 2 (sample-0.1.0): 3/3 resources ready"
    assert [(h["revision"], h["status"]) for h in status["history"]] == [(1, "superseded"), (2, "deployed")]
    by_kind = {r["kind"]: r for r in status["resources"]}
    assert by_kind["Deployment"]["detail"] == "2/2 ready, 2 updated"
    assert by_kind["Service"]["ready"] and "ready endpoint" in by_kind["Service"]["detail"]
    assert [(h["name"], h["phase"]) for h in status["hooks"] if h["phase"]] == [("web-pre-upgrade", "Succeeded")]


def test_status_of_a_not_ready_release(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace, release_values={"notReady": True}, wait=False))
    status = run_module("helm_status", status_args(namespace))
    assert status["release_status"] == "deployed" and status["healthy"] is False
    assert status["summary"].startswith("deployed, revision 1 (sample-0.1.0): 1/3 resources ready; not ready: ")
    assert "Deployment/web-web (0/2 ready" in status["summary"]
    assert "Service/web-web (0 ready endpoint(s))" in status["summary"]
    # A Deployment deleted behind helm's back is reported missing.
    kubectl("-n", namespace, "delete", "deployment", "web-web")
    status = run_module("helm_status", status_args(namespace))
    assert {"kind": "Deployment", "present": False, "detail": "missing"}.items() <= \
        next(r for r in status["resources"] if r["kind"] == "Deployment").items()


def test_status_of_a_missing_release(run_module, namespace):
    status = run_module("helm_status", status_args(namespace))
    assert status["exists"] is False and status["healthy"] is False
    assert "does not exist" in status["summary"]
    failed = run_module("helm_status", status_args(namespace, fail_on_missing=True), expect_failure=True)
    assert failed["error"]["kind"] == "release_not_found"


def test_status_of_a_release_installed_by_plain_helm(run_module, namespace, helm, kubeconfig):
    subprocess.run([helm, "install", "web", SAMPLE, "--namespace", namespace, "--create-namespace", "--wait",
                    "--kubeconfig", kubeconfig], check=True, capture_output=True)
    status = run_module("helm_status", status_args(namespace))
    assert status["healthy"] is True and status["revision"] == 1


def test_wait_for_healthy_reports_a_timeline(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"notReady": True}, wait=False))
    waited = run_module("helm_status", status_args(namespace, wait_for="healthy", timeout=3, poll_interval=0.5),
                        expect_failure=True)
    assert waited["error"]["kind"] == "timeout"
    assert len(waited["timeline"]) >= 3
    assert all(step["healthy"] is False for step in waited["timeline"])
    run_module("helm_deploy", deploy_args(namespace, release_values={"notReady": False}))
    ready = run_module("helm_status", status_args(namespace, wait_for="healthy", timeout=30))
    assert ready["healthy"] and ready["timeline"][-1]["healthy"] is True


def test_status_reads_grow_with_kinds_not_resources(run_module, namespace, tmp_path):
    """One release of 1 ConfigMap, then of 60: the same number of API requests (one GET, then
    one LIST of the kind), and every ConfigMap found live."""
    chart = tmp_path / "many"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: many\nversion: 0.1.0\n")
    (chart / "templates" / "cms.yaml").write_text(
        "{{- range $i := until (int .Values.count) }}\n---\napiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: cm-{{ $i }}\ndata:\n  index: \"{{ $i }}\"\n{{- end }}\n")
    requests = {}
    for count in (1, 60):
        run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart), release_values={"count": count}))
        status = run_module("helm_status", status_args(namespace))
        assert len(status["resources"]) == count
        assert all(r["present"] and r["ready"] for r in status["resources"]), status["summary"]
        requests[count] = status["kube_requests"]
    assert requests[1] == requests[60] == 2, requests  # the history, then one read of the kind
