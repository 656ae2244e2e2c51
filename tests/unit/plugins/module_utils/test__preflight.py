"""The preflight checks with the cluster and helm faked: every problem collected in one run."""

from __future__ import annotations

import base64
import typing as t
from datetime import datetime, timezone

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CLUSTER_UNREACHABLE,
    FORBIDDEN,
    HELM_MISSING,
    INVALID_VALUES,
    KINDS,
    RENDER_FAILED,
    RESOURCE_CONFLICT,
    HelmError,
    KubeError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm_version import HelmVersion
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import ChartSource, DeploySpec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._preflight import Preflight, failure
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rendered import (
    release_from_template,
    rendered_objects,
    shipped_crds,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import RecoveryPolicy
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, release_store
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release_json

MANIFEST = """---
apiVersion: v1
kind: ConfigMap
metadata: {name: web}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: widgets.example/v1
kind: Widget
metadata: {name: web}
"""
CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.widgets.example}
spec:
  group: widgets.example
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions: [{name: v1, served: true, storage: true}]
"""
HOOK = {"name": "web-migrate", "kind": "Job", "events": ["pre-install"],
        "manifest": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: web-migrate}\n"}
TEST_HOOK = {"name": "web-test", "kind": "Pod", "events": ["test"],
             "manifest": "apiVersion: v1\nkind: Pod\nmetadata: {name: web-test}\n"}


def release(manifest: str = MANIFEST, crds: bool = True) -> dict[str, t.Any]:
    """What a dry run renders: a pending install, with the chart's CRD among its files."""
    files = [{"name": "crds/widget.yaml", "data": base64.b64encode(CRD.encode()).decode()}] if crds else []
    return release_json(1, "pending-install", chart="web", chart_version="1.0.0", manifest=manifest,
                        hooks=[HOOK, TEST_HOOK], files=files)


LEASE_PATH = "/apis/coordination.k8s.io/v1/namespaces/apps/leases/helm-engine.web"


def cluster(*, denied: set[tuple[str, str]] = frozenset(), live: dict | None = None, namespace: bool = True,
            version_error: Exception | None = None, lease: dict | Exception | None = None) -> FakeApi:
    """A fake cluster for one preflight: which (resource, verb) RBAC denies, the objects that
    exist (kind, name), whether the namespace exists, a failing /version, a held lease."""
    api = FakeApi()
    if namespace:
        api.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})
    for (kind, name), obj in (live or {}).items():
        api.put_live(kind, name, obj)
    if isinstance(lease, dict):
        api.put(LEASE_PATH, lease)

    def hook(method: str, path: str, _query: t.Any, body: t.Any) -> t.Any:
        if path == "/version" and version_error is not None:
            raise version_error
        if path == LEASE_PATH and isinstance(lease, Exception):
            raise lease
        if method == "POST" and path.endswith("/selfsubjectaccessreviews"):
            attributes = body["spec"]["resourceAttributes"]
            return {"status": {"allowed": (attributes["resource"], attributes["verb"]) not in denied}}
        return None

    api.hooks.append(hook)
    return api


def access_reviews(api: FakeApi) -> list[dict]:
    return [body for method, _path, body in api.writes if method == "POST"]


class FakeHelm:
    def __init__(self, rendered: dict | None = None, error: Exception | None = None, template: str = "") -> None:
        self.rendered = rendered or release()
        self.error = error
        self.template_text = template
        self.version = HelmVersion.parse("v4.3.1")

    def render(self, spec):
        if self.error and not (spec.skip_schema_validation and "schema" in self.error.msg):
            raise self.error
        return self.rendered

    def template(self, spec):
        return self.template_text


def spec(**extra) -> DeploySpec:
    return DeploySpec(release="web", namespace="apps", chart=ChartSource("./chart"), **extra)


def run(api=None, helm=None, **spec_extra) -> dict:
    api = api or cluster()
    helm = helm or FakeHelm()
    report = Preflight(release_store(api), lambda: helm, spec(**spec_extra), RecoveryPolicy()).run()
    # A preflight only reads; its one kind of POST asks a question (SelfSubjectAccessReview).
    assert all(method == "POST" and path.endswith("/selfsubjectaccessreviews") for method, path, _ in api.writes)
    return report


def test_all_checks_pass_and_crds_shipped_in_the_chart_count():
    report = run()
    assert report["passed"] and report["problems"] == []
    assert [c["status"] for c in report["checks"]] == ["passed"] * 8
    kinds = {(r["kind"], r["hook"]) for r in report["resources"]}
    assert kinds == {("ConfigMap", False), ("Deployment", False), ("Widget", False), ("Job", True)}  # no test hook


def test_missing_crd_is_a_problem_unless_shipped():
    report = run(helm=FakeHelm(rendered=release(crds=False)))
    assert [(p["check"], p["kind"]) for p in report["problems"]] == [("crds", "render_failed")]
    assert "Widget" in report["problems"][0]["message"]
    # skip_crds: the chart's crds/ are not installed, so they do not count.
    assert not run(skip_crds=True)["passed"]


def test_one_rbac_problem_per_kind_with_the_denied_verbs():
    api = cluster(denied={("deployments", "create"), ("deployments", "patch"), ("jobs", "create"), ("secrets", "create")})
    report = run(api)
    problems = report["problems"]
    assert [(p["check"], p["kind"], p["resource_kind"]) for p in problems] == [
        ("rbac", FORBIDDEN, "Secret"), ("rbac", FORBIDDEN, "Deployment"), ("rbac", FORBIDDEN, "Job")]
    assert problems[1]["verbs"] == ["create", "patch"] and problems[1]["namespace"] == "apps"
    assert all(b["kind"] == "SelfSubjectAccessReview" for b in access_reviews(api))


def test_namespace_missing_without_create_namespace_and_cluster_scoped_create_with_it():
    report = run(cluster(namespace=False))
    assert [(p["check"], p["status"]) for p in report["problems"]] == [("namespace", 404)]
    api = cluster(namespace=False, denied={("namespaces", "create")})
    report = run(api, create_namespace=True)
    assert [(p["check"], p["resource_kind"], p["namespace"]) for p in report["problems"]] == [("rbac", "Namespace", None)]
    reviews = [b["spec"]["resourceAttributes"] for b in access_reviews(api) if b["spec"]["resourceAttributes"]["resource"] == "namespaces"]
    assert reviews == [{"verb": "create", "group": "", "resource": "namespaces"}]  # cluster-scoped: no namespace


def test_unowned_resources_are_conflicts_or_adoptable():
    live = {("ConfigMap", "web"): {"metadata": {"labels": {}}},
            ("Deployment", "web"): {"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"},
                                                 "annotations": {"meta.helm.sh/release-name": "web",
                                                                 "meta.helm.sh/release-namespace": "apps"}}}}
    report = run(cluster(live=live))
    assert [(p["check"], p["kind"], p["resource_kind"], p["name"]) for p in report["problems"]] == [
        ("ownership", RESOURCE_CONFLICT, "ConfigMap", "web")]
    adopting = run(cluster(live=live), take_ownership=True)
    assert adopting["passed"] and [a["kind"] for a in adopting["adoptable"]] == ["ConfigMap"]


def test_every_problem_is_collected_in_one_run_and_fails_once():
    api = cluster(namespace=False, denied={("configmaps", "create")})
    helm = FakeHelm(error=HelmError(INVALID_VALUES, "values don't meet the specifications of the schema(s)",
                                    stderr="Error: values don't meet the specifications of the schema(s) in the following chart(s):\nweb:\n- at '/replicaCount': got string, want integer"))
    report = run(api, helm)
    # The schema refused the values, yet the resources were rendered without it, so the same
    # run also names what RBAC denies.
    assert [p["check"] for p in report["problems"]] == ["namespace", "render", "rbac"]
    assert "values.schema.json of chart web" in report["problems"][1]["message"]
    assert "/replicaCount" in report["problems"][1]["message"]
    assert report["problems"][2]["resource_kind"] == "ConfigMap"
    error = failure(report)
    assert error.kind == report["problems"][0]["kind"] and "3 problem(s)" in error.msg
    assert error.to_result()["problems"] == report["problems"]
    assert all(p["kind"] in KINDS for p in report["problems"])


def test_unreachable_cluster_and_missing_helm_are_both_reported():
    def no_helm():
        raise HelmError(HELM_MISSING, "helm was not found")

    api = cluster(version_error=KubeError(CLUSTER_UNREACHABLE, "GET /version: connection refused"))
    report = Preflight(release_store(api), no_helm, spec(), RecoveryPolicy()).run()
    assert [(p["check"], p["kind"]) for p in report["problems"]] == [("cluster", CLUSTER_UNREACHABLE), ("helm", HELM_MISSING)]
    assert {c["check"]: c["status"] for c in report["checks"]}["render"] == "skipped"


@pytest.mark.parametrize("kind", [FORBIDDEN, RESOURCE_CONFLICT])
def test_a_dry_run_refused_on_the_resources_falls_back_to_helm_template(kind):
    template = MANIFEST.replace("---\napiVersion: widgets.example/v1\nkind: Widget\nmetadata: {name: web}\n", "") + \
        "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-migrate\n  annotations: {helm.sh/hook: 'pre-install,pre-upgrade'}\n"
    helm = FakeHelm(error=HelmError(kind, "refused"), template=template)
    report = run(cluster(denied={("configmaps", "patch")}), helm)
    assert [(p["check"], p["resource_kind"]) for p in report["problems"]] == [("rbac", "ConfigMap")]
    assert "helm template" in {c["check"]: c["detail"] for c in report["checks"]}["render"]
    # Refused for a reason no check explains: the refusal itself is the problem.
    report = run(cluster(), helm)
    assert [(p["check"], p["kind"]) for p in report["problems"]] == [("render", kind)]


def test_an_unknown_kind_in_the_dry_run_is_named_by_the_crds_check():
    helm = FakeHelm(error=HelmError(RENDER_FAILED, 'unable to build kubernetes objects from release manifest: no matches for kind "Widget" in version "widgets.example/v1"'),
                    template=MANIFEST)
    report = run(cluster(), helm)
    assert [(p["check"], p["resource_kind"]) for p in report["problems"]] == [("crds", "Widget")]


def test_release_from_template_splits_hooks_and_keeps_crds():
    doc = release_from_template(CRD + "---\n" + MANIFEST + "---\n" + HOOK["manifest"].replace(
        "metadata: {name: web-migrate}", "metadata: {name: web-migrate, annotations: {helm.sh/hook: pre-install}}"))
    assert [h["events"] for h in doc["hooks"]] == [["pre-install"]]
    assert ("widgets.example/v1", "Widget") in shipped_crds(doc, skip_crds=False)
    assert {o.kind for o in rendered_objects(doc, "apps")} == {"CustomResourceDefinition", "ConfigMap", "Deployment", "Widget", "Job"}


def test_a_lease_held_by_another_run_is_a_release_locked_problem():
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lease = {"metadata": {"name": "helm-engine.web", "annotations": {"helm-engine.ai-mesh.io/operation": "helm_deploy"}},
             "spec": {"holderIdentity": "ci-7/pid-1/ab", "acquireTime": now, "renewTime": now, "leaseDurationSeconds": 300}}
    report = run(cluster(lease=lease))
    (problem,) = report["problems"]
    assert (problem["check"], problem["kind"]) == ("lock", "release_locked")
    assert "ci-7/pid-1/ab (helm_deploy) holds Lease helm-engine.web since" in problem["message"]
    assert problem["lock"]["holder"] == "ci-7/pid-1/ab"
    # Expired (its holder was killed): the deploy would take it over.
    expired = dict(lease, spec=dict(lease["spec"], renewTime="2020-01-01T00:00:00.000000Z"))
    assert run(cluster(lease=expired))["passed"]
    # Not readable by this identity: not a lock problem (the deploy names the missing rights).
    assert run(cluster(lease=KubeError(FORBIDDEN, "GET leases: forbidden (403)", details={"status": 403})))["passed"]
