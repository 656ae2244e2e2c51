"""Drift on the local cluster, every case on helm 3 and helm 4: objects edited with kubectl are
seen in check mode and put back by the same task; detect and ignore change nothing; ignore rules,
the opt-out annotation and fields the chart leaves out are never drift; no chart the tests use
reports drift right after a deploy."""

from __future__ import annotations

import base64
import json
import typing as t

import pytest

from conftest import CHARTS, REPO, converge

SAMPLE = str(CHARTS / "sample")
WIDGET = str(CHARTS / "widget")
SECRET = "Drift-It-Secret-4a1b"
HAND_EDIT = "Edited-By-Hand-7c2d"


@pytest.fixture
def widget_crd(kubectl) -> None:
    """The widget chart's CRD, served before its first install: helm installs a chart's crds/
    only in the real run, so the server-side dry run that decides could not map the kind."""
    kubectl("apply", "-f", str(CHARTS / "widget" / "crds" / "widget.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/widgets.test.helm-engine.ai-mesh.io", "--timeout=30s")


def deploy_args(namespace: str, chart: str = SAMPLE, **extra: t.Any) -> dict[str, t.Any]:
    args = {"name": "web", "namespace": namespace, "create_namespace": True, "chart_ref": chart, "wait": True,
            "timeout": "90s", "release_values": {"auth": {"password": SECRET}}}
    args.update(extra)
    return args


def live(kubectl, namespace: str, kind: str, name: str) -> dict[str, t.Any] | None:
    found = kubectl("-n", namespace, "get", kind, name, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def edit_by_hand(kubectl, namespace: str) -> None:
    """What people do: scale, patch one key, delete a Service, change a Secret."""
    kubectl("-n", namespace, "scale", "deployment", "web-web", "--replicas=5")
    kubectl("-n", namespace, "patch", "configmap", "web-config", "-p", json.dumps({"data": {"MESSAGE": "edited"}}))
    kubectl("-n", namespace, "delete", "service", "web-web")
    encoded = base64.b64encode(HAND_EDIT.encode()).decode()
    kubectl("-n", namespace, "patch", "secret", "web-auth", "-p", json.dumps({"data": {"password": encoded}}))


EXPECTED_DRIFT = sorted([
    ("ConfigMap", "web-config", "modified", ["/data/MESSAGE"]),
    ("Deployment", "web-web", "modified", ["/spec/replicas"]),
    ("Secret", "web-auth", "modified", ["/data/password"]),
    ("Service", "web-web", "missing", []),
])


def drift_of(result: dict[str, t.Any]) -> list[tuple[str, str, str, list[str]]]:
    return sorted((d["kind"], d["name"], d["reason"], d["paths"]) for d in result["drift"])


def test_edits_are_seen_in_check_mode_and_put_back_four_ways(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace))
    assert run_module("helm_deploy", deploy_args(namespace))["changed"] is False
    edit_by_hand(kubectl, namespace)
    result = converge(run_module, "helm_deploy", deploy_args(namespace), "correct_drift")
    check, real = result["check"], result["real"]
    assert drift_of(check) == drift_of(real) == EXPECTED_DRIFT
    assert [r for r in real["reasons"] if r.startswith("drift:")] == real["reasons"]
    # No helm process changed anything: the correction is server-side applies, no new revision.
    assert all("--dry-run=server" in c for c in real["commands"] if " upgrade " in c)
    assert real["release"]["revision"] == 1 and result["again"]["release"]["revision"] == 1
    assert live(kubectl, namespace, "deployment", "web-web")["spec"]["replicas"] == 2
    assert live(kubectl, namespace, "configmap", "web-config")["data"]["MESSAGE"] == "hello"
    assert live(kubectl, namespace, "service", "web-web") is not None
    secret = live(kubectl, namespace, "secret", "web-auth")
    assert base64.b64decode(secret["data"]["password"]).decode() == SECRET
    # The diff shows live against declared; a Secret's data never.
    text = json.dumps([check, real])
    assert SECRET not in text and HAND_EDIT not in text
    diff = {d["after_header"]: d for d in real["diff"]}
    configmap = next(d for header, d in diff.items() if "ConfigMap/" in header)
    assert "MESSAGE: edited" in configmap["before"] and "MESSAGE: hello" in configmap["after"]
    assert any("Secret/" in header and "<redacted: changed>" in d["after"] for header, d in diff.items())
    # The history is helm's, untouched; the next run finds nothing.
    assert result["again"]["drift"] == [] and result["again_check"]["drift"] == []


def test_detect_reports_with_a_warning_and_changes_nothing(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace))
    edit_by_hand(kubectl, namespace)
    for check in (True, False):
        result = run_module("helm_deploy", deploy_args(namespace, drift="detect"), check=check)
        assert (result["changed"], result["action"]) == (False, "none")
        assert drift_of(result) == EXPECTED_DRIFT
        assert any("has drifted from revision 1" in str(w) for w in result.get("warnings", [])), result.get("warnings")
    assert live(kubectl, namespace, "deployment", "web-web")["spec"]["replicas"] == 5
    assert live(kubectl, namespace, "service", "web-web") is None


def test_ignore_neither_looks_nor_changes(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace))
    edit_by_hand(kubectl, namespace)
    detected = run_module("helm_deploy", deploy_args(namespace, drift="detect"))
    ignored = run_module("helm_deploy", deploy_args(namespace, drift="ignore"))
    assert (ignored["changed"], ignored["drift"]) == (False, [])
    assert ignored["kube_requests"] < detected["kube_requests"]
    assert live(kubectl, namespace, "deployment", "web-web")["spec"]["replicas"] == 5


def test_ignore_rules_and_the_opt_out_annotation(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace))
    kubectl("-n", namespace, "scale", "deployment", "web-web", "--replicas=5")
    kubectl("-n", namespace, "patch", "configmap", "web-config", "-p", json.dumps({"data": {"MESSAGE": "edited"}}))
    kubectl("-n", namespace, "annotate", "configmap", "web-config", "helm-engine.ai-mesh.io/drift=ignore")
    rules = [{"kind": "Deployment", "name": "web-web", "paths": ["/spec/replicas"]}]
    result = run_module("helm_deploy", deploy_args(namespace, drift_ignore=rules))
    assert (result["changed"], result["drift"]) == (False, [])
    assert live(kubectl, namespace, "deployment", "web-web")["spec"]["replicas"] == 5
    # Without the rule the scale is drift again, and only that.
    corrected = run_module("helm_deploy", deploy_args(namespace))
    assert [(d["kind"], d["paths"]) for d in corrected["drift"]] == [("Deployment", ["/spec/replicas"])]
    assert live(kubectl, namespace, "configmap", "web-config")["data"]["MESSAGE"] == "edited"


def test_a_custom_resource_field_is_drift_and_is_put_back(run_module, namespace, kubectl, widget_crd):
    result = run_module("helm_deploy", deploy_args(namespace, chart=WIDGET, release_values={}))
    assert result["changed"] is True
    kubectl("-n", namespace, "patch", "widget", "web-widget", "--type=merge", "-p", json.dumps({"spec": {"color": "red"}}))
    kubectl("-n", namespace, "patch", "widget", "web-widget", "--type=merge", "-p", json.dumps({"spec": {"owner": "ops"}}))
    converged = converge(run_module, "helm_deploy", deploy_args(namespace, chart=WIDGET, release_values={}), "correct_drift")
    assert [(d["kind"], d["paths"]) for d in converged["real"]["drift"]] == [("Widget", ["/spec/color"])]
    widget = live(kubectl, namespace, "widget", "web-widget")
    assert widget["spec"]["color"] == "blue" and widget["spec"]["owner"] == "ops"  # what the chart leaves out stays


def test_an_upgrade_over_a_kubectl_scale_takes_the_field_back(run_module, namespace, kubectl, helm):
    """helm 4 applies server-side: without drift=correct the scale's manager owns .spec.replicas and
    the upgrade fails with a conflict. Check mode predicts the same upgrade the real run makes."""
    run_module("helm_deploy", deploy_args(namespace))
    kubectl("-n", namespace, "scale", "deployment", "web-web", "--replicas=5")
    args = deploy_args(namespace, release_values={"auth": {"password": SECRET}, "message": "bye"})
    result = converge(run_module, "helm_deploy", args, "upgrade")
    assert [(d["kind"], d["paths"]) for d in result["real"]["drift"]] == [("Deployment", ["/spec/replicas"])]
    assert result["real"]["release"]["revision"] == 2 and result["real"]["release"]["status"] == "deployed"
    assert live(kubectl, namespace, "deployment", "web-web")["spec"]["replicas"] == 2
    if "helm4" in helm:
        assert all("--force-conflicts" in c for c in result["real"]["commands"] if " upgrade " in c)


def test_an_autoscaled_deployment_whose_chart_sets_no_replicas_is_not_drift(run_module, namespace, kubectl):
    chart = str(REPO / "examples" / "monitoring-web-service" / "helm-chart")
    run_module("helm_deploy", deploy_args(namespace, chart=chart, release_values={}))
    deployment = kubectl("-n", namespace, "get", "deployment", "-o", "name").stdout.split()[0]
    kubectl("-n", namespace, "scale", deployment, "--replicas=4")  # what its HorizontalPodAutoscaler does
    result = run_module("helm_deploy", deploy_args(namespace, chart=chart, release_values={}, drift="detect"))
    assert (result["changed"], result["drift"]) == (False, [])


def test_helm_status_check_drift_reports_and_changes_nothing(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace))
    status = run_module("helm_status", {"name": "web", "namespace": namespace, "check_drift": True})
    assert (status["in_sync"], status["drift"]) == (True, [])
    kubectl("-n", namespace, "patch", "configmap", "web-config", "-p", json.dumps({"data": {"MESSAGE": "edited"}}))
    status = run_module("helm_status", {"name": "web", "namespace": namespace, "check_drift": True})
    assert status["in_sync"] is False and status["changed"] is False
    assert [(d["kind"], d["paths"]) for d in status["drift"]] == [("ConfigMap", ["/data/MESSAGE"])]
    assert live(kubectl, namespace, "configmap", "web-config")["data"]["MESSAGE"] == "edited"


GUARDED_CHARTS = {
    "sample": (SAMPLE, {"auth": {"password": SECRET}}),
    "monitoring-web-service": (str(REPO / "examples" / "monitoring-web-service" / "helm-chart"), {}),
    "node-exporter": (str(CHARTS / "node-exporter"), {}),
    "ordered-store": (str(CHARTS / "ordered-store"), {}),
    "secret-copy": (str(CHARTS / "secret-copy"), {}),
    "widget": (WIDGET, {}),
}


@pytest.mark.parametrize("chart", sorted(GUARDED_CHARTS))
def test_no_chart_reports_drift_right_after_a_deploy(run_module, namespace, chart, widget_crd):
    path, values = GUARDED_CHARTS[chart]
    args = deploy_args(namespace, chart=path, release_values=values, drift="detect")
    assert run_module("helm_deploy", args)["changed"] is True
    again = run_module("helm_deploy", args)
    assert (again["changed"], again["drift"]) == (False, []), again["drift"]
    assert not again.get("warnings")


def test_no_generated_chart_of_many_configmaps_reports_drift(run_module, namespace, tmp_path):
    import sys

    sys.path.insert(0, str(REPO))
    from bench.harness import generated_chart

    chart = str(generated_chart(tmp_path, 60))
    args = deploy_args(namespace, chart=chart, release_values={}, drift="detect")
    run_module("helm_deploy", args)
    again = run_module("helm_deploy", args)
    assert (again["changed"], again["drift"]) == (False, [])
    # One read for the 60 ConfigMaps: requests grow with kinds, not objects.
    assert again["kube_requests"] <= 4, again["kube_requests"]


def test_a_namespace_of_several_releases_is_read_by_label_and_a_relabeled_object_still_counts(
        run_module, namespace, kubectl, tmp_path):
    """Each release's objects are listed by the labels they share, not the whole namespace; an
    object someone took out of that label (and edited) is read by name, seen and put back."""
    import sys

    sys.path.insert(0, str(REPO))
    from bench.harness import generated_chart

    chart = str(generated_chart(tmp_path, 10))
    web = deploy_args(namespace, chart=chart, release_values={})
    other = dict(web, name="other")
    run_module("helm_deploy", web)
    run_module("helm_deploy", other)
    kubectl("-n", namespace, "label", "configmap", "web-cm-3", "app.kubernetes.io/instance-")
    kubectl("-n", namespace, "patch", "configmap", "web-cm-3", "-p", json.dumps({"data": {"index": HAND_EDIT}}))
    result = converge(run_module, "helm_deploy", web, "correct_drift")
    assert [(d["name"], d["reason"]) for d in result["check"]["drift"]] == [("web-cm-3", "modified")]
    assert "/data/index" in result["check"]["drift"][0]["paths"]
    fixed = live(kubectl, namespace, "configmap", "web-cm-3")
    assert fixed["data"]["index"] == "3" and fixed["metadata"]["labels"]["app.kubernetes.io/instance"] == "web"
    # The other release's objects were neither read as this release's nor touched.
    assert run_module("helm_deploy", other)["changed"] is False
