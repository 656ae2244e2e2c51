"""helm_preflight against the local cluster, on helm 3 and helm 4: every problem in one run, and
the cluster unchanged afterwards."""

from __future__ import annotations

import shutil
import typing as t
from pathlib import Path

import pytest
import yaml

from conftest import REPO, helm_work

EXAMPLE = REPO / "examples" / "monitoring-web-service"
CHART = str(EXAMPLE / "helm-chart")
RELEASE = "monitoring-web-service"
CHART_KINDS = {"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Role", "RoleBinding",
               "Secret", "Service", "ServiceAccount"}


def args(namespace: str, **extra: t.Any) -> dict[str, t.Any]:
    return dict({"name": RELEASE, "namespace": namespace, "chart_ref": CHART}, **extra)


def assert_untouched(kubectl, namespace: str, *, namespace_created: bool) -> None:
    """No release Secret in the test's namespace, and the namespace only if the test created it.
    (Other tests deploy the same release name into their own namespaces at the same time.)"""
    exists = kubectl("get", "namespace", namespace, check=False).returncode == 0
    assert exists is namespace_created
    if exists:
        assert kubectl("-n", namespace, "get", "secrets", "-l", f"owner=helm,name={RELEASE}", "-o", "name").stdout.strip() == ""


def test_example_chart_passes_as_cluster_admin(run_module, namespace, kubectl):
    for check in (True, False):
        result = run_module("helm_preflight", args(namespace, create_namespace=True), check=check)
        assert result["passed"] is True and result["problems"] == [] and result["changed"] is False
        assert [c["status"] for c in result["checks"]] == ["passed"] * 8, result["checks"]
        assert result["namespace_exists"] is False and result["cluster_version"].startswith("v1.")
        assert {r["kind"] for r in result["resources"] if not r["hook"]} == CHART_KINDS
        assert {r["name"] for r in result["resources"] if r["hook"]} == {f"{RELEASE}-migrate", f"{RELEASE}-smoke-test"}
        assert helm_work(result) == ["upgrade"]  # the dry run (and `helm version` unless cached)
        assert "--dry-run=server" in result["commands"][-1]
    assert_untouched(kubectl, namespace, namespace_created=False)


def test_every_problem_in_one_run(run_module, namespace, kubectl):
    failed = run_module("helm_preflight", args(namespace, release_values={"replicaCount": "three"}), expect_failure=True)
    by_check = {p["check"]: p for p in failed["problems"]}
    assert set(by_check) == {"namespace", "render"}, failed["problems"]
    assert by_check["namespace"]["kind"] == "kubernetes_api_error"
    assert by_check["render"]["kind"] == "invalid_values"
    assert "values.schema.json of chart monitoring-web-service" in by_check["render"]["message"]
    assert "/replicaCount" in by_check["render"]["message"]
    assert failed["error"]["kind"] == "kubernetes_api_error" and failed["error"]["problems"] == 2
    assert "2 problem(s)" in failed["msg"] and "replicaCount" in failed["msg"] and namespace in failed["msg"]
    assert failed["changed"] is False
    assert_untouched(kubectl, namespace, namespace_created=False)


def test_custom_kind_without_crd(run_module, namespace, kubectl, tmp_path):
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "widget.yaml").write_text(
        "apiVersion: widgets.helm-engine.test/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}\nspec: {size: 1}\n")
    kubectl("create", "namespace", namespace)
    failed = run_module("helm_preflight", args(namespace, chart_ref=str(chart)), expect_failure=True)
    assert len(failed["problems"]) == 1, failed["problems"]
    problem = failed["problems"][0]
    # helm's dry run stops at the unknown kind; the crds check names it after helm template.
    assert (problem["check"], problem["kind"], problem["resource_kind"]) == ("crds", "render_failed", "Widget")
    assert "not served by the cluster" in problem["message"]
    assert_untouched(kubectl, namespace, namespace_created=True)


@pytest.fixture
def restricted_token(kubectl, namespace) -> str:
    """A ServiceAccount of the test namespace that may only read Secrets there."""
    kubectl("create", "namespace", namespace)
    kubectl("-n", namespace, "create", "serviceaccount", "reader")
    kubectl("-n", namespace, "create", "role", "read-secrets", "--verb=get,list,watch", "--resource=secrets")
    kubectl("-n", namespace, "create", "rolebinding", "read-secrets", "--role=read-secrets",
            f"--serviceaccount={namespace}:reader")
    return kubectl("-n", namespace, "create", "token", "reader", "--duration=10m").stdout.strip()


def test_restricted_identity_gets_one_problem_per_forbidden_kind(run_module, namespace, kubectl, kubeconfig, restricted_token):
    config = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    failed = run_module("helm_preflight", args(namespace, api_key=restricted_token, host=cluster["server"],
                                               ca_cert=cluster["certificate-authority"]), expect_failure=True)
    problems = failed["problems"]
    assert {p["check"] for p in problems} == {"rbac"}, problems
    assert all(p["kind"] == "forbidden" for p in problems)
    kinds = [p["resource_kind"] for p in problems]
    assert sorted(kinds) == sorted(CHART_KINDS | {"Job"}), kinds  # Job: the hooks
    secret = next(p for p in problems if p["resource_kind"] == "Secret")
    assert "get" not in secret["verbs"] and "create" in secret["verbs"]
    assert restricted_token not in failed["_stdout"]
    assert failed["error"]["kind"] == "forbidden" and failed["error"]["problems"] == len(CHART_KINDS) + 1
    assert_untouched(kubectl, namespace, namespace_created=True)


def kubectl_applied(kubectl, namespace: str) -> None:
    """The k8s/ manifests as kubectl applied them before helm, in the test namespace."""
    kubectl("create", "namespace", namespace)
    docs = []
    for path in sorted((EXAMPLE / "k8s").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for subject in doc.get("subjects") or []:
            subject["namespace"] = namespace
        docs.append(doc)
    kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump_all(docs))


def test_kubectl_applied_resources_are_conflicts_or_adoptable(run_module, namespace, kubectl):
    kubectl_applied(kubectl, namespace)
    failed = run_module("helm_preflight", args(namespace), expect_failure=True)
    problems = failed["problems"]
    assert {p["check"] for p in problems} == {"ownership"}, problems
    assert all(p["kind"] == "resource_conflict" for p in problems)
    assert sorted(p["resource_kind"] for p in problems) == sorted(CHART_KINDS)
    assert all(p["owner"] is None and "label app.kubernetes.io/managed-by=Helm" in p["missing"] for p in problems)

    adopting = run_module("helm_preflight", args(namespace, take_ownership=True))
    assert adopting["passed"] is True and adopting["problems"] == []
    assert sorted(a["kind"] for a in adopting["adoptable"]) == sorted(CHART_KINDS)
    assert_untouched(kubectl, namespace, namespace_created=True)
    # Nothing was adopted: the preflight only reads.
    labels = yaml.safe_load(kubectl("-n", namespace, "get", "configmap", RELEASE, "-o", "yaml").stdout)["metadata"].get("labels") or {}
    assert "app.kubernetes.io/managed-by" not in labels
