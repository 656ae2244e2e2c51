"""The monitoring web service example on the local cluster, on helm 3 and helm 4: its plain
manifests match the chart, helm_deploy installs it and it becomes healthy, and `helm test`
passes or fails by the kwok marker."""

from __future__ import annotations

import json
import subprocess

import yaml

from conftest import REPO

EXAMPLE = REPO / "examples" / "monitoring-web-service"
CHART = str(EXAMPLE / "helm-chart")
# helm sets this label through the chart; a kubectl-applied install never had it.
MANAGED_BY = "app.kubernetes.io/managed-by"


def helm_template(helm: str, *args: str) -> list[dict]:
    out = subprocess.run([helm, "template", "monitoring-web-service", CHART, "--namespace", "monitoring", *args],
                         check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def key(doc: dict) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def test_plain_manifests_are_the_chart_without_helm_ownership(helm):
    rendered = helm_template(helm, "--no-hooks", "--skip-tests")
    for doc in rendered:
        assert doc["metadata"]["labels"].pop(MANAGED_BY) == "Helm", key(doc)
    plain = [yaml.safe_load(p.read_text()) for p in sorted((EXAMPLE / "k8s").glob("*.yaml"))]
    assert sorted(plain, key=key) == sorted(rendered, key=key)
    for doc in plain:
        annotations = doc["metadata"].get("annotations") or {}
        assert not any(k.startswith("meta.helm.sh/") for k in annotations), key(doc)
    kinds = sorted(k for k, _ in map(key, plain))
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Role",
                     "RoleBinding", "Secret", "Service", "ServiceAccount"]


def test_chart_hooks_tests_and_labels_from_values(helm):
    docs = helm_template(helm, "--set", "podLabels.tier=web", "--set", "hooks.podLabels.hook=yes",
                         "--set", "tests.podLabels.test=yes")
    by_key = {key(d): d for d in docs}
    deployment = by_key[("Deployment", "monitoring-web-service")]
    assert deployment["spec"]["template"]["metadata"]["labels"]["tier"] == "web"
    migrate = by_key[("Job", "monitoring-web-service-migrate")]
    assert migrate["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert migrate["spec"]["template"]["metadata"]["labels"]["hook"] == "yes"
    smoke = by_key[("Job", "monitoring-web-service-smoke-test")]
    assert smoke["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert smoke["spec"]["template"]["metadata"]["labels"]["hook"] == "yes"
    test_pod = by_key[("Pod", "monitoring-web-service-test-connection")]
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert test_pod["spec"]["restartPolicy"] == "Never" and test_pod["metadata"]["labels"]["test"] == "yes"
    assert by_key[("Service", "monitoring-web-service")]["spec"]["type"] == "ClusterIP"
    assert not any(d["kind"] == "PersistentVolumeClaim" for d in docs)


def test_schema_rejects_wrong_types(helm):
    for bad in (["--set", "replicaCount=three"], ["--set", "replicaCount=0"], ["--set-json", "image.tag=1"]):
        proc = subprocess.run([helm, "template", "x", CHART, *bad], capture_output=True, text=True)
        assert proc.returncode != 0, bad
        assert "schema" in proc.stderr.lower() or "want" in proc.stderr, proc.stderr


def test_deploy_becomes_healthy_and_helm_test_follows_the_marker(run_module, namespace, helm, kubeconfig, kubectl):
    args = {"name": "monitoring-web-service", "namespace": namespace, "create_namespace": True,
            "chart_ref": CHART, "wait": True, "timeout": "90s"}
    deployed = run_module("helm_deploy", args)
    assert deployed["changed"] and deployed["release"]["status"] == "deployed"
    assert sorted((h["name"], h["phase"]) for h in deployed["hooks"]) == [
        ("monitoring-web-service-migrate", "Succeeded"), ("monitoring-web-service-smoke-test", "Succeeded")]
    status = run_module("helm_status", {"name": "monitoring-web-service", "namespace": namespace,
                                        "wait_for": "healthy", "timeout": 60})
    assert status["healthy"] is True, status["summary"]

    def helm_test() -> subprocess.CompletedProcess:
        return subprocess.run([helm, "test", "monitoring-web-service", "--namespace", namespace, "--timeout", "60s",
                               "--kubeconfig", kubeconfig], capture_output=True, text=True)

    passed = helm_test()
    assert passed.returncode == 0, passed.stderr
    assert "Succeeded" in passed.stdout

    failing = dict(args, release_values={"tests": {"podLabels": {"helm-engine.test/test-fail": "true"}}})
    assert run_module("helm_deploy", failing)["changed"] is True
    failed = helm_test()
    assert failed.returncode != 0
    assert "failed" in (failed.stderr + failed.stdout).lower()
    pod = json.loads(kubectl("-n", namespace, "get", "pod", "monitoring-web-service-test-connection", "-o", "json").stdout)
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
