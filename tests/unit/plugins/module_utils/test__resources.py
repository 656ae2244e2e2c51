"""Live readiness of a release's resources, and what an uninstall leaves behind, on a fake cluster."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._resources import ReadinessChecker
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, kube_client
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release as shared_release

SLICES = "/apis/discovery.k8s.io/v1/namespaces/apps/endpointslices"


def cluster(objects: dict[tuple[str, str], dict[str, t.Any]] | None = None,
            slices: list[dict[str, t.Any]] | None = None) -> FakeApi:
    """A fake cluster with these live objects, by (kind, name), and EndpointSlices in apps."""
    api = FakeApi()
    for (kind, name), obj in (objects or {}).items():
        api.put_live(kind, name, obj)
    for index, endpoint_slice in enumerate(slices or []):
        api.put(f"{SLICES}/slice-{index}", endpoint_slice)
    return api


def release(manifest: str, **fields: t.Any) -> Release:
    return shared_release(manifest=manifest, **fields)


def doc(kind: str, name: str, api_version: str = "v1", annotations: dict[str, str] | None = None, **extra: t.Any) -> str:
    lines = [f"apiVersion: {api_version}", f"kind: {kind}", "metadata:", f"  name: {name}"]
    if annotations:
        lines.append("  annotations:")
        lines += [f"    {k}: {v!r}" for k, v in annotations.items()]
    for key, value in extra.items():
        lines.append(f"{key}: {value}")
    return "---\n" + "\n".join(lines) + "\n"


def assess(kind: str, live: dict[str, t.Any] | None, api_version: str = "v1") -> dict[str, t.Any]:
    api = cluster({(kind, "x"): live} if live is not None else {})
    [entry] = ReadinessChecker(kube_client(api)).check(release(doc(kind, "x", api_version)))
    return entry


def replicated(desired: int, ready: int, updated: int, ready_field: str, *, generation: int = 1, observed: int = 1) -> dict:
    return {"metadata": {"name": "x", "namespace": "apps", "generation": generation}, "spec": {"replicas": desired},
            "status": {"observedGeneration": observed, ready_field: ready, "updatedReplicas": updated}}


# ---- Deployment / StatefulSet ----------------------------------------------------------------------

@pytest.mark.parametrize("live, ready, detail", [
    (replicated(3, 3, 3, "availableReplicas"), True, "3/3 ready, 3 updated"),
    (replicated(3, 2, 3, "availableReplicas"), False, "2/3 ready, 3 updated"),
    (replicated(3, 3, 1, "availableReplicas"), False, "3/3 ready, 1 updated"),
    (replicated(2, 0, 0, "availableReplicas"), False, "0/2 ready, 0 updated"),
    # The controller has not seen the latest spec yet: the counts describe the old one.
    (replicated(2, 2, 2, "availableReplicas", generation=2, observed=1), False, "2/2 ready, 2 updated"),
    ({"metadata": {"name": "x"}, "spec": {"replicas": 0}, "status": {}}, True, "0/0 ready, 0 updated"),
    ({"metadata": {"name": "x"}, "spec": {}, "status": {}}, False, "0/1 ready, 0 updated"),
    # A rollout in progress: the old template's pod is the one available, the new one is not.
    ({"metadata": {"name": "x", "generation": 2}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 2, "replicas": 2, "availableReplicas": 1, "updatedReplicas": 1}},
     False, "1/1 ready, 1 updated, 1 old"),
    # readyReplicas is not what a Deployment is judged by.
    (replicated(2, 2, 2, "readyReplicas"), False, "0/2 ready, 2 updated"),
])
def test_deployment(live, ready, detail):
    entry = assess("Deployment", live, "apps/v1")
    assert (entry["present"], entry["ready"], entry["detail"]) == (True, ready, detail)


@pytest.mark.parametrize("live, ready", [
    (replicated(3, 3, 3, "readyReplicas"), True),
    (replicated(3, 1, 3, "readyReplicas"), False),
    (replicated(3, 3, 3, "readyReplicas", generation=4, observed=3), False),
])
def test_statefulset(live, ready):
    entry = assess("StatefulSet", live, "apps/v1")
    assert entry["ready"] is ready


@pytest.mark.parametrize("status, generation, ready, detail", [
    ({"desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 2, "observedGeneration": 1}, 1, True, "2/2 ready"),
    ({"desiredNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2, "observedGeneration": 1}, 1, False, "1/2 ready"),
    ({"desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 0, "observedGeneration": 1}, 1, False, "2/2 ready"),
    ({"desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 2, "observedGeneration": 1}, 2, False, "2/2 ready"),
])
def test_daemonset(status, generation, ready, detail):
    entry = assess("DaemonSet", {"metadata": {"generation": generation}, "status": status}, "apps/v1")
    assert (entry["ready"], entry["detail"]) == (ready, detail)


@pytest.mark.parametrize("status, ready, detail", [
    ({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}, True, "complete"),
    ({"conditions": [{"type": "Failed", "status": "True"}]}, False, "failed"),
    # A Job that failed and is also marked complete is failed.
    ({"conditions": [{"type": "Complete", "status": "True"}, {"type": "Failed", "status": "True"}]}, False, "failed"),
    ({"active": 1}, False, "running (1 active, 0 succeeded)"),
    ({"conditions": [{"type": "Complete", "status": "False"}], "active": 1, "succeeded": 2}, False, "running (1 active, 2 succeeded)"),
])
def test_job(status, ready, detail):
    entry = assess("Job", {"status": status}, "batch/v1")
    assert (entry["ready"], entry["detail"]) == (ready, detail)


@pytest.mark.parametrize("status, ready, detail", [
    ({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}, True, "Running, ready"),
    ({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}, False, "Running, not ready"),
    ({"phase": "Pending"}, False, "Pending, not ready"),
    ({"phase": "Succeeded"}, True, "succeeded"),
    ({}, False, "Unknown, not ready"),
])
def test_pod(status, ready, detail):
    entry = assess("Pod", {"status": status})
    assert (entry["ready"], entry["detail"]) == (ready, detail)


@pytest.mark.parametrize("status, ready, detail", [
    ({"phase": "Bound"}, True, "Bound"),
    ({"phase": "Pending"}, False, "Pending"),
    ({}, False, "Pending"),
    ({"phase": "Lost"}, False, "Lost"),
])
def test_pvc(status, ready, detail):
    entry = assess("PersistentVolumeClaim", {"status": status})
    assert (entry["ready"], entry["detail"]) == (ready, detail)


def service(spec: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"metadata": {"name": "x", "namespace": "apps"}, "spec": spec}


@pytest.mark.parametrize("endpoints, ready, detail", [
    ([{"conditions": {"ready": True}}, {"conditions": {"ready": True}}], True, "2 ready endpoint(s)"),
    ([{"conditions": {"ready": False}}, {"conditions": {"ready": True}}], True, "1 ready endpoint(s)"),
    ([{"conditions": {"ready": False}}], False, "0 ready endpoint(s)"),
    ([{}], True, "1 ready endpoint(s)"),  # no conditions: ready, as the EndpointSlice API defines
    ([], False, "0 ready endpoint(s)"),
])
def test_service_with_a_selector_needs_a_ready_endpoint(endpoints, ready, detail):
    owned = {"metadata": {"labels": {"kubernetes.io/service-name": "x"}}, "endpoints": endpoints}
    other = {"metadata": {"labels": {"kubernetes.io/service-name": "y"}}, "endpoints": [{"conditions": {"ready": True}}]}
    api = cluster({("Service", "x"): service({"selector": {"app": "x"}})}, [owned, other])
    [entry] = ReadinessChecker(kube_client(api)).check(release(doc("Service", "x")))
    assert (entry["ready"], entry["detail"]) == (ready, detail)
    assert (SLICES, {"labelSelector": "kubernetes.io/service-name"}) in api.reads


def test_reads_grow_with_the_kinds_not_the_resources():
    """500 ConfigMaps, 3 Services and a Deployment: one LIST of ConfigMaps, one of Services,
    one GET of the Deployment and one EndpointSlice list for the namespace."""
    objects = {("ConfigMap", f"cm-{i}"): {"metadata": {"name": f"cm-{i}"}} for i in range(500)}
    for name in ("a", "b", "c"):
        objects[("Service", name)] = {"metadata": {"name": name, "namespace": "apps"}, "spec": {"selector": {"app": name}}}
    objects[("Deployment", "web")] = replicated(1, 1, 1, "availableReplicas")
    manifest = "".join(doc("ConfigMap", f"cm-{i}") for i in range(500)) + "".join(doc("Service", n) for n in "abc")
    manifest += doc("Deployment", "web", "apps/v1") + doc("ConfigMap", "gone")
    api = cluster(objects)
    entries = ReadinessChecker(kube_client(api)).check(release(manifest))
    assert len(entries) == 505 and len(api.requests) == 4
    assert sorted(api.reads, key=lambda read: read[0]) == [
        ("/api/v1/namespaces/apps/configmaps", {"limit": "500"}), ("/api/v1/namespaces/apps/services", {"limit": "500"}),
        ("/apis/apps/v1/namespaces/apps/deployments/web", {}), (SLICES, {"labelSelector": "kubernetes.io/service-name"})]
    assert [e["detail"] for e in entries if not e["present"]] == ["missing"]


@pytest.mark.parametrize("spec", [{"type": "ExternalName", "externalName": "example.org"}, {"ports": [{"port": 80}]}])
def test_service_without_a_selector_is_ready(spec):
    api = cluster({("Service", "x"): service(spec)})
    [entry] = ReadinessChecker(kube_client(api)).check(release(doc("Service", "x")))
    assert (entry["ready"], entry["detail"]) == (True, "no selector")
    assert api.reads == [("/api/v1/namespaces/apps/services/x", {})]


def test_service_with_no_slices_at_all_is_not_ready():
    api = cluster({("Service", "x"): service({"selector": {"app": "x"}})})
    [entry] = ReadinessChecker(kube_client(api)).check(release(doc("Service", "x")))
    assert (entry["ready"], entry["detail"]) == (False, "0 ready endpoint(s)")


def test_other_kinds_are_ready_when_present_and_every_kind_is_missing_when_absent():
    assert assess("ConfigMap", {"data": {}})["detail"] == "present"
    missing = assess("Deployment", None, "apps/v1")
    assert (missing["present"], missing["ready"], missing["detail"]) == (False, False, "missing")


def test_check_reads_each_resource_once_in_the_release_namespace():
    manifest = doc("Deployment", "web", "apps/v1") + doc("ConfigMap", "cfg") + doc("Secret", "s")
    api = cluster({("Deployment", "web"): replicated(1, 1, 1, "availableReplicas"), ("ConfigMap", "cfg"): {}})
    entries = ReadinessChecker(kube_client(api)).check(release(manifest))
    assert [(e["kind"], e["name"], e["namespace"], e["ready"]) for e in entries] == [
        ("Deployment", "web", "apps", True), ("ConfigMap", "cfg", "apps", True), ("Secret", "s", "apps", False)]
    assert api.reads == [("/apis/apps/v1/namespaces/apps/deployments/web", {}), ("/api/v1/namespaces/apps/configmaps/cfg", {}),
                         ("/api/v1/namespaces/apps/secrets/s", {})]
