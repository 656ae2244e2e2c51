# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What an uninstall leaves behind, and what cleanup removes, on a fake cluster."""

from __future__ import annotations

import base64
import typing as t

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._cleanup import (
    CREATED_FOR,
    Cleanup,
    Leftover,
    Leftovers,
    delete,
    namespace_content,
    wait_gone,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import TIMEOUT, EngineError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, kube_client
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release as shared_release

CLAIMS = "/api/v1/namespaces/apps/persistentvolumeclaims"
# What helm's StatefulSet volume claims carry (the chart's labels on the claim template).
CLAIM = {"metadata": {"labels": {"app.kubernetes.io/instance": "web"}}}
STATEFULSET = """---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  volumeClaimTemplates:
    - metadata: {name: data}
"""
HOOK_JOB = {"name": "web-migrate", "kind": "Job", "events": ["pre-install"], "last_run": {"phase": "Succeeded"},
            "manifest": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: web-migrate}\n"}
HOOK_CLEANED = {"name": "web-check", "kind": "Job", "events": ["post-install"],
                "manifest": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-check\n  annotations:\n"
                            "    helm.sh/hook-delete-policy: hook-succeeded\n"}
CRD = ("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.io}\n"
       "spec: {group: example.io, names: {kind: Widget, plural: widgets}, scope: Namespaced, versions: []}\n")


def doc(kind: str, name: str, api_version: str = "v1", annotations: dict[str, str] | None = None) -> str:
    lines = [f"apiVersion: {api_version}", f"kind: {kind}", "metadata:", f"  name: {name}"]
    if annotations:
        lines.append("  annotations:")
        lines += [f"    {k}: {v!r}" for k, v in annotations.items()]
    return "---\n" + "\n".join(lines) + "\n"


def release(manifest: str, **fields: t.Any) -> Release:
    return shared_release(manifest=manifest, **fields)


def cluster(objects: dict[tuple[str, str], dict[str, t.Any]] | None = None, *, namespace: dict | None = None) -> FakeApi:
    api = FakeApi()
    for (kind, name), obj in (objects or {}).items():
        api.put_live(kind, name, obj)
    if namespace is not None:
        api.put_live("Namespace", "apps", namespace)
    return api


def found(api: FakeApi, rel: Release) -> list[tuple[str, str, str, str]]:
    return [(i.category, i.kind, i.name, i.reason) for i in Leftovers(kube_client(api), rel).find()]


# ---- what is left (as kept_resources reported it) --------------------------------------------

def test_nothing_is_left_by_default():
    api = cluster({("ConfigMap", "cfg"): {}})
    assert Leftovers(kube_client(api), release(doc("ConfigMap", "cfg"))).find() == []


def test_resource_policy_keep_that_still_exists_is_kept():
    manifest = (doc("ConfigMap", "kept", annotations={"helm.sh/resource-policy": "keep"})
                + doc("ConfigMap", "gone", annotations={"helm.sh/resource-policy": "keep"})
                + doc("ConfigMap", "plain")
                + doc("Secret", "other-policy", annotations={"helm.sh/resource-policy": "delete"}))
    api = cluster({("ConfigMap", "kept"): {}, ("ConfigMap", "plain"): {}, ("Secret", "other-policy"): {}})
    assert [i.as_dict() for i in Leftovers(kube_client(api), release(manifest)).find()] == [
        {"api_version": "v1", "kind": "ConfigMap", "namespace": "apps", "name": "kept", "reason": "resource-policy: keep"}]


def test_the_release_volume_claims_are_left():
    api = cluster({("PersistentVolumeClaim", "data-web-0"): CLAIM, ("PersistentVolumeClaim", "data-web-1"): CLAIM,
                   ("PersistentVolumeClaim", "someone-elses"): {}})
    assert [i.as_dict() for i in Leftovers(kube_client(api), release(doc("ConfigMap", "cfg"))).find()] == [
        {"api_version": "v1", "kind": "PersistentVolumeClaim", "namespace": "apps", "name": "data-web-0",
         "reason": "volume claim of the release"},
        {"api_version": "v1", "kind": "PersistentVolumeClaim", "namespace": "apps", "name": "data-web-1",
         "reason": "volume claim of the release"},
    ]


def test_a_kept_claim_is_listed_once():
    manifest = doc("PersistentVolumeClaim", "data", annotations={"helm.sh/resource-policy": "keep"})
    api = cluster({("PersistentVolumeClaim", "data"): CLAIM})
    assert found(api, release(manifest)) == [("kept", "PersistentVolumeClaim", "data", "resource-policy: keep")]


def test_claims_are_listed_in_an_escaped_namespace_path():
    api = cluster()
    assert Leftovers(kube_client(api), release("", namespace="a/b")).volume_claims() == []
    assert api.reads == [("/api/v1/namespaces/a%2Fb/persistentvolumeclaims", {})]
    assert api.writes == []


# ---- hooks, StatefulSet claims, CRDs, the namespace ------------------------------------------

def test_statefulset_claims_are_found_by_template_and_name_without_labels():
    api = cluster({("PersistentVolumeClaim", "data-db-0"): {}, ("PersistentVolumeClaim", "data-db-1"): {},
                   ("PersistentVolumeClaim", "data-db-x"): {}, ("PersistentVolumeClaim", "data-dbx-0"): {},
                   ("PersistentVolumeClaim", "data-db-2"): {"metadata": {"deletionTimestamp": "2026-12-04T10:00:00Z"}}})
    assert found(api, release(STATEFULSET)) == [
        ("volume_claim", "PersistentVolumeClaim", "data-db-0", "volume claim of StatefulSet db (volumeClaimTemplates)"),
        ("volume_claim", "PersistentVolumeClaim", "data-db-1", "volume claim of StatefulSet db (volumeClaimTemplates)"),
    ]


def test_hooks_left_by_helm_are_named_with_their_delete_policy():
    api = cluster({("Job", "web-migrate"): {}})  # web-check was deleted by its hook-succeeded policy
    rel = release(doc("ConfigMap", "cfg"), hooks=[HOOK_JOB, HOOK_CLEANED])
    assert found(api, rel) == [("hook", "Job", "web-migrate",
                                "hook (pre-install) helm does not track; delete policy: none")]


def test_crds_of_the_chart_are_reported_and_the_namespace_only_when_created_for_the_release():
    api = cluster(namespace={"metadata": {"annotations": {CREATED_FOR: "web"}}})
    api.put("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.io",
            {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"})
    files = [{"name": "crds/widget.yaml", "data": base64.b64encode(CRD.encode()).decode()}]
    rel = release("", files=files)
    assert [(c, k, n) for c, k, n, _r in found(api, rel)] == [("crd", "CustomResourceDefinition", "widgets.example.io"),
                                                              ("namespace", "Namespace", "apps")]
    other = cluster(namespace={"metadata": {"annotations": {CREATED_FOR: "another-release"}}})
    assert found(other, release("")) == []


# ---- cleanup ---------------------------------------------------------------------------------

def leftover(category: str, kind: str, name: str, namespace: str | None = "apps") -> Leftover:
    api_version = {"Job": "batch/v1", "StatefulSet": "apps/v1"}.get(kind, "v1")
    return Leftover(api_version, kind, namespace, name, "why", category)


LEFT = [leftover("kept", "ConfigMap", "kept"), leftover("hook", "Job", "web-migrate"),
        leftover("volume_claim", "PersistentVolumeClaim", "data-db-0"), leftover("crd", "CustomResourceDefinition", "w", None)]


@pytest.mark.parametrize("choices, deleted", [
    ([], []),
    (["hooks"], ["web-migrate"]),
    (["volume_claims"], ["data-db-0"]),
    (["hooks", "volume_claims"], ["web-migrate", "data-db-0"]),
])
def test_cleanup_deletes_what_it_names_and_never_kept_resources_or_crds(choices, deleted):
    delete_now, leave = Cleanup(kube_client(cluster()), release(""), choices).split(LEFT)
    assert [i.name for i in delete_now] == deleted
    assert {"kept", "w"} <= {i.name for i in leave}


def test_the_namespace_goes_only_when_nothing_but_its_defaults_remains():
    api = cluster({("ServiceAccount", "default"): {}, ("ConfigMap", "kube-root-ca.crt"): {},
                   ("Pod", "web-1"): {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "web"}]}},
                   }, namespace={"metadata": {"annotations": {CREATED_FOR: "web"}}})
    namespace = leftover("namespace", "Namespace", "apps", None)
    hook = leftover("hook", "Job", "web-migrate")
    api.put_live("Job", "web-migrate", {})
    cleanup = Cleanup(kube_client(api), release(""), ["hooks", "namespace"])
    delete_now, leave = cleanup.split([hook, namespace])
    assert [i.kind for i in delete_now] == ["Job", "Namespace"] and leave == []
    # Something of someone else's, or a kept object: the namespace stays, saying why.
    api.put_live("Secret", "someone-elses", {})
    delete_now, leave = Cleanup(kube_client(api), release(""), ["namespace"]).split([hook, namespace])
    assert [i.kind for i in delete_now] == []
    assert leave[1].reason == "why; not deleted: it still holds Job/web-migrate, Secret/someone-elses"


def test_namespace_content_skips_defaults_owned_and_terminating_objects():
    api = cluster({("ServiceAccount", "default"): {}, ("ConfigMap", "kube-root-ca.crt"): {},
                   ("Pod", "owned"): {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "name": "web"}]}},
                   ("Secret", "leaving"): {"metadata": {"deletionTimestamp": "2026-12-04T10:00:00Z"}},
                   ("ConfigMap", "mine"): {}})
    assert namespace_content(kube_client(api), "apps") == ["ConfigMap/mine"]


def test_delete_is_background_and_a_gone_object_is_fine():
    api = cluster({("Job", "web-migrate"): {}})
    kube = kube_client(api)
    delete(kube, leftover("hook", "Job", "web-migrate"))
    delete(kube, leftover("hook", "Job", "web-migrate"))  # already gone: 404 is success
    method, path, body = api.writes[0]
    assert (method, path, body["propagationPolicy"]) == ("DELETE", "/apis/batch/v1/namespaces/apps/jobs/web-migrate",
                                                         "Background")


def test_wait_gone_names_what_a_finalizer_keeps():
    api = cluster({("PersistentVolumeClaim", "data-db-0"): {"metadata": {"finalizers": ["example.io/never"]}}})
    with pytest.raises(EngineError) as caught:
        wait_gone(kube_client(api), [leftover("volume_claim", "PersistentVolumeClaim", "data-db-0")], 0.2, poll=0.05)
    assert caught.value.kind == TIMEOUT
    assert "PersistentVolumeClaim/data-db-0" in caught.value.msg and "finalizer" in caught.value.msg
    wait_gone(kube_client(cluster()), [leftover("hook", "Job", "gone")], 0.2, poll=0.05)  # nothing left: returns


def test_a_kept_object_of_the_manifest_keeps_the_namespace():
    manifest = doc("ConfigMap", "kept", annotations={"helm.sh/resource-policy": "keep"}) + doc("ConfigMap", "plain")
    api = cluster({("ConfigMap", "kept"): {}, ("ConfigMap", "plain"): {},
                   ("Secret", "sh.helm.release.v1.web.v1"): {}}, namespace={"metadata": {"annotations": {CREATED_FOR: "web"}}})
    rel = release(manifest)
    delete_now, leave = Cleanup(kube_client(api), rel, ["namespace"]).split(Leftovers(kube_client(api), rel).find())
    assert delete_now == []
    assert [i.reason for i in leave if i.kind == "Namespace"] == [
        "created by create_namespace for release web; not deleted: it still holds ConfigMap/kept"]
    # With the history kept, helm's storage Secret stays too.
    _, leave = Cleanup(kube_client(api), rel, ["namespace"], keep_history=True).split(Leftovers(kube_client(api), rel).find())
    assert [i.reason for i in leave if i.kind == "Namespace"][0].endswith(
        "it still holds ConfigMap/kept, Secret/sh.helm.release.v1.web.v1")
