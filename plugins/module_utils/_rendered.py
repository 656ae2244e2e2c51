# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""What a rendered (or stored) release holds: its objects and hooks, the CRDs its chart ships,
and whether a live object carries helm's ownership marks for it."""

from __future__ import annotations

import base64
import typing as t
from dataclasses import dataclass

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import parse_manifest, to_yaml

MANAGED_BY = "app.kubernetes.io/managed-by"
RELEASE_NAME = "meta.helm.sh/release-name"
RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"


@dataclass(frozen=True)
class Rendered:
    """One object of the rendered release."""

    api_version: str
    kind: str
    namespace: str
    name: str
    hook: bool = False

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def label(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class ResourceType:
    """A kind as the API serves it (or as a CRD shipped with the chart will serve it)."""

    resource: str
    namespaced: bool


def rendered_objects(release: dict[str, t.Any], namespace: str) -> list[Rendered]:
    """Every object the deploy creates: the manifest and the install/upgrade hooks. Test hooks
    run only under `helm test`, so the deploy never creates them."""
    objects = [Rendered(*key) for key in parse_manifest(release.get("manifest") or "", namespace)]
    for hook in release.get("hooks") or []:
        events = hook.get("events") or []
        if events and all(str(e).startswith("test") for e in events):
            continue
        objects += [Rendered(*key, hook=True) for key in parse_manifest(hook.get("manifest") or "", namespace)]
    return objects


def release_from_template(text: str) -> dict[str, t.Any]:
    """helm template's output in the shape of helm's release JSON (manifest, hooks), enough for
    the checks that follow a render."""
    manifest, hooks = [], []
    for doc in parse_manifest(text).values():
        events = ((doc.get("metadata") or {}).get("annotations") or {}).get("helm.sh/hook")
        body = to_yaml(doc)
        if events:
            hooks.append({"name": doc["metadata"].get("name", ""), "kind": doc.get("kind", ""),
                          "events": [e.strip() for e in str(events).split(",")], "manifest": body})
        else:
            manifest.append(body)
    return {"manifest": "---\n".join(manifest), "hooks": hooks, "chart": {}}


def crd_objects(release: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The CustomResourceDefinitions of the chart's crds/ files (what helm installs once and
    never upgrades or deletes)."""
    documents: list[dict[str, t.Any]] = []
    for item in (release.get("chart") or {}).get("files") or []:
        name = str(item.get("name") or "")
        if not name.startswith("crds/"):
            continue
        try:
            text = base64.b64decode(item.get("data") or "").decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        documents += [d for d in parse_manifest(text).values() if d.get("kind") == "CustomResourceDefinition"]
    return documents


def shipped_crds(release: dict[str, t.Any], *, skip_crds: bool) -> dict[tuple[str, str], ResourceType]:
    """(apiVersion, kind) -> resource of each CRD the deploy installs: the chart's crds/ files
    (unless skip_crds) and CustomResourceDefinitions among its templates."""
    documents = [] if skip_crds else crd_objects(release)
    documents += [d for d in parse_manifest(release.get("manifest") or "").values() if d.get("kind") == "CustomResourceDefinition"]
    served: dict[tuple[str, str], ResourceType] = {}
    for crd in documents:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        if not spec.get("group") or not names.get("kind") or not names.get("plural"):
            continue
        for version in spec.get("versions") or []:
            if isinstance(version, dict) and version.get("name") and version.get("served", True):
                served[(f"{spec['group']}/{version['name']}", names["kind"])] = ResourceType(
                    names["plural"], spec.get("scope", "Namespaced") == "Namespaced")
    return served


def ownership_gaps(obj: dict[str, t.Any], release: str, namespace: str) -> list[str]:
    """What an existing object lacks to count as this release's (helm's own ownership check)."""
    metadata = obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    gaps = []
    if labels.get(MANAGED_BY) != "Helm":
        gaps.append(f"label {MANAGED_BY}=Helm")
    if annotations.get(RELEASE_NAME) != release:
        gaps.append(f"annotation {RELEASE_NAME}={release}")
    if annotations.get(RELEASE_NAMESPACE) != namespace:
        gaps.append(f"annotation {RELEASE_NAMESPACE}={namespace}")
    return gaps
