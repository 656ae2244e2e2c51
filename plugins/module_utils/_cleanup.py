# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""What an uninstall leaves behind, and removing what is provably the release's.

helm uninstall deletes the objects of the release's manifest and nothing else. Left are:

- ``kept``: objects annotated ``helm.sh/resource-policy: keep`` (never deleted here);
- ``hook``: hook objects whose ``helm.sh/hook-delete-policy`` did not fire (helm does not track
  them), found from the hooks stored with the release, and the pods of ``helm test``;
- ``volume_claim``: the claims a StatefulSet made from its ``volumeClaimTemplates``
  (``<template>-<statefulset>-<ordinal>``, with or without the release's labels), and claims
  labelled ``app.kubernetes.io/instance=<release>``;
- ``crd``: CustomResourceDefinitions from the chart's ``crds/`` (helm never deletes them; nor
  does this collection);
- ``namespace``: the namespace, when this collection's ``create_namespace`` created it for this
  release (marked with the annotation ``helm-engine.ai-mesh.io/created-for``).

``cleanup`` deletes the hooks and the volume claims it names, and the namespace only when it
was created for the release and holds nothing but what Kubernetes puts in every namespace.
"""

from __future__ import annotations

import re
import time
import typing as t
from dataclasses import dataclass

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import TIMEOUT, EngineError, KubeError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient, path_segment
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import parse_manifest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rendered import crd_objects

KEEP_POLICY = "helm.sh/resource-policy"
HOOK_DELETE_POLICY = "helm.sh/hook-delete-policy"
# On a namespace: the release this collection's create_namespace created it for.
CREATED_FOR = "helm-engine.ai-mesh.io/created-for"
CLEANUP_CHOICES = ("hooks", "volume_claims", "namespace")
# What every namespace holds without anyone asking: not a reason to keep it.
NAMESPACE_DEFAULTS = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}
# Kinds that say nothing about whether anything still lives in a namespace: records, locks, and
# what follows a Service.
_NOT_CONTENT = {"Event", "Lease", "Endpoints", "EndpointSlice"}


@dataclass(frozen=True)
class Leftover:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    reason: str
    category: str  # kept | hook | volume_claim | crd | namespace

    def as_dict(self) -> dict[str, t.Any]:
        return {"api_version": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name,
                "reason": self.reason}

    def label(self) -> str:
        return f"{self.kind}/{self.name}"


def _annotations(obj: dict[str, t.Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


class Leftovers:
    """Reads what the release's uninstall leaves (or, before it, would leave) in the cluster."""

    def __init__(self, kube: KubeClient, release: Release) -> None:
        self.kube = kube
        self.release = release
        self.namespace = release.namespace

    def find(self) -> list[Leftover]:
        """Everything the uninstall leaves, as it stands now (before an uninstall: what would stay)."""
        found = self.kept() + self.hooks() + self.volume_claims() + self.crds()
        namespace = self.created_namespace()
        return found + ([namespace] if namespace else [])

    def kept(self) -> list[Leftover]:
        keys = [key for key, obj in parse_manifest(self.release.manifest, self.namespace).items()
                if _annotations(obj).get(KEEP_POLICY) == "keep"]
        live = self.kube.read_objects(keys)
        return [Leftover(a, k, n, name, "resource-policy: keep", "kept")
                for (a, k, n, name) in keys if live.get((a, k, n, name)) is not None]

    def hooks(self) -> list[Leftover]:
        keys, policies = [], {}
        for hook in self.release.hooks:
            for key, obj in parse_manifest(hook.manifest, self.namespace).items():
                keys.append(key)
                policies[key] = (hook.events, _annotations(obj).get(HOOK_DELETE_POLICY) or "none")
        live = self.kube.read_objects(keys)
        left = []
        for key in keys:
            if live.get(key) is not None:
                events, policy = policies[key]
                left.append(Leftover(*key, f"hook ({', '.join(events)}) helm does not track; delete policy: {policy}",
                                     "hook"))
        return left

    def volume_claims(self) -> list[Leftover]:
        """Claims of the release's StatefulSets (by template and name, whatever their labels) and
        claims labelled with the release's instance that its manifest does not hold (those are
        uninstalled)."""
        patterns = []
        in_manifest = {name for (_a, kind, _n, name) in parse_manifest(self.release.manifest, self.namespace)
                       if kind == "PersistentVolumeClaim"}
        for (_api, kind, _ns, name), obj in parse_manifest(self.release.manifest, self.namespace).items():
            if kind == "StatefulSet":
                for template in (obj.get("spec") or {}).get("volumeClaimTemplates") or []:
                    claim = ((template or {}).get("metadata") or {}).get("name")
                    if claim:
                        patterns.append((re.compile(rf"^{re.escape(claim)}-{re.escape(name)}-(\d+)$"), name))
        listing = self.kube.get_json(f"/api/v1/namespaces/{path_segment(self.namespace)}/persistentvolumeclaims",
                                     missing_ok=True) or {}
        left = []
        for claim in listing.get("items") or []:
            meta = claim.get("metadata") or {}
            name = meta.get("name") or ""
            if name in in_manifest or meta.get("deletionTimestamp"):
                continue
            owner = next((sts for pattern, sts in patterns if pattern.match(name)), None)
            if owner is not None:
                left.append(Leftover("v1", "PersistentVolumeClaim", self.namespace, name,
                                     f"volume claim of StatefulSet {owner} (volumeClaimTemplates)", "volume_claim"))
            elif (meta.get("labels") or {}).get("app.kubernetes.io/instance") == self.release.name:
                left.append(Leftover("v1", "PersistentVolumeClaim", self.namespace, name,
                                     "volume claim of the release", "volume_claim"))
        return left

    def crds(self) -> list[Leftover]:
        names = [obj["metadata"]["name"] for obj in crd_objects(self.release.raw) if (obj.get("metadata") or {}).get("name")]
        keys = [("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name) for name in names]
        live = self.kube.read_objects(keys)
        return [Leftover(a, k, None, name, "CRD from the chart's crds/: helm never deletes one, nor does cleanup", "crd")
                for (a, k, _n, name) in keys if live.get((a, k, None, name)) is not None]

    def created_namespace(self) -> Leftover | None:
        namespace = self.kube.get_json(f"/api/v1/namespaces/{path_segment(self.namespace)}", missing_ok=True)
        if namespace is None or _annotations(namespace).get(CREATED_FOR) != self.release.name:
            return None
        return Leftover("v1", "Namespace", None, self.namespace, f"created by create_namespace for release {self.release.name}",
                        "namespace")


def mark_created_namespace(kube: KubeClient, namespace: str, release: str) -> None:
    """Marks a namespace create_namespace just created, so cleanup may later delete it."""
    kube.patch_json(f"/api/v1/namespaces/{path_segment(namespace)}", {"metadata": {"annotations": {CREATED_FOR: release}}})


def namespace_content(kube: KubeClient, namespace: str) -> list[str]:
    """``Kind/name`` of what still lives in a namespace, defaults aside: one list per namespaced
    kind the cluster serves and lets this identity list. An object being deleted, or owned by
    another (a Pod of a ReplicaSet: it goes with its owner), does not count."""
    found: list[str] = []
    for group_version in _group_versions(kube):
        for resource in kube.served_resources(group_version).values():
            if not resource.get("namespaced") or "list" not in (resource.get("verbs") or ["list"]) \
                    or resource.get("kind") in _NOT_CONTENT:
                continue
            path = kube.object_path(group_version, resource["kind"], namespace)
            try:
                listing = kube.get_json(path, {"limit": "50"}, missing_ok=True) if path else None
            except KubeError:
                continue  # a kind this identity may not list says nothing either way
            for item in (listing or {}).get("items") or []:
                meta = item.get("metadata") or {}
                if meta.get("deletionTimestamp") or meta.get("ownerReferences"):
                    continue
                if (resource["kind"], meta.get("name", "")) not in NAMESPACE_DEFAULTS:
                    found.append(f"{resource['kind']}/{meta.get('name', '')}")
    return found


def _group_versions(kube: KubeClient) -> list[str]:
    groups = (kube.get_json("/apis", missing_ok=True) or {}).get("groups") or []
    preferred = [(g.get("preferredVersion") or {}).get("groupVersion") for g in groups]
    return ["v1"] + [gv for gv in preferred if gv]


def delete(kube: KubeClient, item: Leftover) -> None:
    """Deletes one leftover, its dependents in the background (a Job's pods)."""
    path = kube.object_path(item.api_version, item.kind, item.namespace, item.name)
    if path is None:
        return
    try:
        kube.write_json("DELETE", path, {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})
    except KubeError as exc:
        if exc.details.get("status") != 404:
            raise


def wait_gone(kube: KubeClient, items: t.Sequence[Leftover], timeout: float, poll: float = 1.0) -> None:
    """Until each object is gone (its finalizers done); a timeout error naming what remains."""
    deadline = time.monotonic() + timeout
    remaining = list(items)
    while True:
        live = kube.read_objects([(i.api_version, i.kind, i.namespace, i.name) for i in remaining])
        remaining = [i for i in remaining if live.get((i.api_version, i.kind, i.namespace, i.name)) is not None]
        if not remaining:
            return
        if time.monotonic() >= deadline:
            raise EngineError(TIMEOUT, f"Still there {timeout:.0f}s after the uninstall: "
                              + ", ".join(i.label() for i in remaining[:10])
                              + (f" and {len(remaining) - 10} more" if len(remaining) > 10 else "")
                              + " (a finalizer that does not clear?).",
                              details={"remaining": [i.as_dict() for i in remaining]})
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.05)))


class Cleanup:
    """The ``cleanup`` of an uninstall: which leftovers go, and which stay and why."""

    def __init__(self, kube: KubeClient, release: Release, choices: t.Sequence[str], *, keep_history: bool = False) -> None:
        self.kube = kube
        self.release = release
        self.choices = set(choices)
        self.keep_history = keep_history

    def split(self, leftovers: t.Sequence[Leftover]) -> tuple[list[Leftover], list[Leftover]]:
        """(to delete, to leave). The namespace goes only when it was created for this release
        and nothing lives in it but what the uninstall and the cleanup remove."""
        delete_now, leave = [], []
        for item in leftovers:
            if item.category == "hook" and "hooks" in self.choices:
                delete_now.append(item)
            elif item.category == "volume_claim" and "volume_claims" in self.choices:
                delete_now.append(item)
            elif item.category == "namespace" and "namespace" in self.choices:
                blocking = self.namespace_blockers(leftovers, delete_now)
                if blocking:
                    leave.append(Leftover(item.api_version, item.kind, None, item.name,
                                          f"{item.reason}; not deleted: it still holds {', '.join(blocking[:5])}"
                                          + (f" and {len(blocking) - 5} more" if len(blocking) > 5 else ""),
                                          item.category))
                else:
                    delete_now.append(item)
            else:
                leave.append(item)
        return delete_now, leave

    def namespace_blockers(self, leftovers: t.Sequence[Leftover], deleted: t.Sequence[Leftover]) -> list[str]:
        """What would still live in the namespace after the uninstall and the cleanup: read from
        the namespace, minus what the uninstall removes (the manifest's objects that are not kept,
        the release's storage Secrets unless the history is kept) and what the cleanup deletes."""
        stays = {item.label() for item in leftovers if item.category in ("kept", "hook", "volume_claim")}
        going = {item.label() for item in deleted}
        going |= {f"{kind}/{name}" for (_a, kind, _n, name) in parse_manifest(self.release.manifest, self.release.namespace)
                  if f"{kind}/{name}" not in stays}
        storage = re.compile(rf"^Secret/sh\.helm\.release\.v1\.{re.escape(self.release.name)}\.v\d+$")
        present = namespace_content(self.kube, self.release.namespace)
        blocking = {label for label in present if label not in going
                    and not (storage.match(label) and not self.keep_history)}
        return sorted(blocking | (stays - going))
