# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The live resources of a release: what an uninstall left behind."""

from __future__ import annotations

import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import parse_manifest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release

KEEP_POLICY = "helm.sh/resource-policy"


def kept_resources(kube: KubeClient, release: Release) -> list[dict[str, t.Any]]:
    """Resources that outlive an uninstall: those annotated resource-policy keep, and the
    release's PersistentVolumeClaims (StatefulSet volume claims are never in the manifest)."""
    left: list[dict[str, t.Any]] = []
    for (api_version, kind, namespace, name), obj in parse_manifest(release.manifest, release.namespace).items():
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if annotations.get(KEEP_POLICY) == "keep" and kube.get_object(api_version, kind, namespace, name) is not None:
            left.append({"api_version": api_version, "kind": kind, "namespace": namespace, "name": name, "reason": "resource-policy: keep"})
    claims = kube.get_json(
        f"/api/v1/namespaces/{release.namespace}/persistentvolumeclaims",
        {"labelSelector": f"app.kubernetes.io/instance={release.name}"},
    ) or {}
    for claim in claims.get("items") or []:
        meta = claim.get("metadata") or {}
        if any(r["kind"] == "PersistentVolumeClaim" and r["name"] == meta.get("name") for r in left):
            continue
        left.append({"api_version": "v1", "kind": "PersistentVolumeClaim", "namespace": release.namespace,
                     "name": meta.get("name"), "reason": "volume claim of the release"})
    return left
