# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Rendered manifests: parse per resource, compare, and build a redacted per-resource diff.

Comparison is on parsed objects keyed by (apiVersion, kind, namespace, name), so template
comments and document order do not count as changes, while any edit that changes what would
be applied does.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core and the kubernetes client
    # Importable without it (ansible-test's import sanity test); every module builds its
    # Kubernetes client, which fails with missing_dependency, before it reads a manifest.
    yaml = None

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import (
    REDACTED,
    REDACTED_CHANGED,
    Redactor,
)

ResourceKey = t.Tuple[str, str, str, str]

SECRET_FIELDS = ("data", "stringData")


def parse_manifest(text: str, default_namespace: str = "") -> dict[ResourceKey, dict[str, t.Any]]:
    resources: dict[ResourceKey, dict[str, t.Any]] = {}
    # libyaml's loader when PyYAML has it: a 500-resource manifest parses in a tenth of the time.
    for doc in yaml.load_all(text or "", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                if isinstance(item, dict):
                    resources[resource_key(item, default_namespace)] = item
            continue
        resources[resource_key(doc, default_namespace)] = doc
    return resources


def resource_key(obj: dict[str, t.Any], default_namespace: str = "") -> ResourceKey:
    metadata = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(metadata.get("namespace") or default_namespace),
        str(metadata.get("name", "")),
    )


def key_label(key: ResourceKey) -> str:
    api_version, kind, namespace, name = key
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


@dataclass
class ResourceChange:
    key: ResourceKey
    change: str  # added | removed | changed
    before: dict[str, t.Any] | None
    after: dict[str, t.Any] | None

    def summary(self) -> dict[str, str]:
        api_version, kind, namespace, name = self.key
        return {"api_version": api_version, "kind": kind, "namespace": namespace, "name": name, "change": self.change}


def compare(before: dict[ResourceKey, dict[str, t.Any]], after: dict[ResourceKey, dict[str, t.Any]]) -> list[ResourceChange]:
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is None:
            changes.append(ResourceChange(key, "added", None, new))
        elif new is None:
            changes.append(ResourceChange(key, "removed", old, None))
        elif old != new:
            changes.append(ResourceChange(key, "changed", old, new))
    return changes


def redact_resource(obj: dict[str, t.Any] | None, other: dict[str, t.Any] | None, redactor: Redactor) -> dict[str, t.Any] | None:
    """A copy safe to show: Secret data values become markers that only say whether they changed,
    and any registered secret string is masked wherever a chart copied it."""
    if obj is None:
        return None
    shown = _mask_strings(obj, redactor)
    if obj.get("kind") == "Secret":
        other_fields = other or {}
        for field in SECRET_FIELDS:
            data = obj.get(field)
            if not isinstance(data, dict):
                continue
            other_data = other_fields.get(field) if isinstance(other_fields.get(field), dict) else {}
            shown[field] = {
                k: (REDACTED if other is None or other_data.get(k) == v else REDACTED_CHANGED)
                for k, v in data.items()
            }
    # last-applied annotations would repeat the whole object, Secret data included.
    annotations = (shown.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = REDACTED
    return shown


def _mask_strings(value: t.Any, redactor: Redactor) -> t.Any:
    if isinstance(value, dict):
        return {k: _mask_strings(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_strings(v, redactor) for v in value]
    if isinstance(value, str):
        return redactor.redact_text(value)
    return value


def to_yaml(obj: t.Any) -> str:
    if obj is None:
        return ""
    return yaml.safe_dump(obj, default_flow_style=False, sort_keys=True, allow_unicode=True)


def diff_entries(changes: list[ResourceChange], redactor: Redactor) -> list[dict[str, str]]:
    """Ansible diff dicts, one per changed resource, redacted."""
    entries = []
    for change in changes:
        label = key_label(change.key)
        entries.append(
            {
                "before_header": f"{label} (before)" if change.before is not None else "/dev/null",
                "after_header": f"{label} (after)" if change.after is not None else "/dev/null",
                "before": to_yaml(redact_resource(change.before, change.after, redactor)),
                "after": to_yaml(redact_resource(change.after, change.before, redactor)),
            }
        )
    return entries
