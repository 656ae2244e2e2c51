# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Drift: where the live objects of a release no longer hold what its deployed revision declares.

Only what the manifest sets counts. Server defaults, status, and fields the chart leaves out
(replicas an autoscaler owns, a restartedAt annotation, an env entry another tool added to a
container) are not drift. Lists of objects are matched by their merge key (``name``,
``containerPort``, ...), so order and entries added by others do not count either.

A comparison of the manifest with the live object can see a difference the API server would
not: it normalizes quantities (``0.5`` is stored as ``500m``), drops fields a CRD's schema
prunes, fills defaults into list entries. Every object that looks drifted is therefore proved
with a server-side apply dry run of its manifest (nothing is written): only the declared
fields whose dry-run value still differs from the live one are drift. So a check costs one
read per kind, plus one request per object that looked drifted.

Paths are JSON pointers into the manifest object (``/spec/replicas``,
``/spec/template/spec/containers/0/image``).
"""

from __future__ import annotations

import base64
import typing as t
from dataclasses import dataclass, field

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import EngineError, KubeError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient, ObjectKey
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import ResourceChange, parse_manifest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._plan import CORRECT_DRIFT, Plan
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import IgnoreRule

# On an object (annotation or label) of the chart or of the live object: never report its drift.
OPT_OUT = "helm-engine.ai-mesh.io/drift"
OPT_OUT_VALUE = "ignore"
MISSING = "missing"
MODIFIED = "modified"
# What identifies an entry of a list of objects, in the order tried (Kubernetes' merge keys).
MERGE_KEYS = ("name", "mountPath", "containerPort", "port", "devicePath", "ip", "topologyKey")
# Metadata that is the object's identity or the server's, never the chart's to hold.
_SERVER_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                    "selfLink", "ownerReferences", "finalizers", "deletionTimestamp")
_ABSENT: t.Any = object()


@dataclass
class Drift:
    """One object whose live state departs from the deployed revision."""

    api_version: str
    kind: str
    namespace: str
    name: str
    reason: str  # missing | modified
    paths: list[str] = field(default_factory=list)
    manifest: dict[str, t.Any] = field(default_factory=dict, repr=False)  # the object as the chart renders it
    live: dict[str, t.Any] | None = field(default=None, repr=False)

    @property
    def key(self) -> ObjectKey:
        return (self.api_version, self.kind, self.namespace, self.name)

    def as_dict(self) -> dict[str, t.Any]:
        return {"api_version": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name,
                "reason": self.reason, "paths": list(self.paths)}

    def label(self) -> str:
        return f"{self.kind}/{self.name}" + (f" ({', '.join(self.paths)})" if self.paths else f" ({self.reason})")

    def shown(self) -> tuple[dict[str, t.Any] | None, dict[str, t.Any]]:
        """(live, declared) restricted to the drifted fields, for a diff: identity and the paths."""
        if self.reason == MISSING:
            return None, self.manifest
        source = comparable(self.manifest)
        declared = {"apiVersion": self.api_version, "kind": self.kind, "metadata": {"name": self.name}}
        live = {"apiVersion": self.api_version, "kind": self.kind, "metadata": {"name": self.name}}
        for pointer in self.paths:
            _put(declared, pointer, _get(source, pointer))
            _put(live, pointer, _get(self.live or {}, pointer, source))
        return live, declared


def _escape(token: t.Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _merge_key(declared: list[t.Any]) -> str | None:
    if not declared or not all(isinstance(item, dict) for item in declared):
        return None
    for key in MERGE_KEYS:
        values = [item.get(key) for item in declared]
        if all(v is not None for v in values) and len(set(map(str, values))) == len(values):
            return key
    return None


def _entry(live: t.Any, key: str | None, index: int, item: t.Any) -> t.Any:
    """The live list entry that a declared entry corresponds to (by merge key, else by index)."""
    if not isinstance(live, list):
        return _ABSENT
    if key is None:
        return live[index] if index < len(live) else _ABSENT
    for candidate in live:
        if isinstance(candidate, dict) and str(candidate.get(key)) == str(item.get(key)):
            return candidate
    return _ABSENT


def leaves(declared: t.Any, other: t.Any, pointer: str = "") -> t.Iterator[tuple[str, t.Any, t.Any]]:
    """(pointer, declared value, other value) for every value the manifest sets; an empty
    mapping or list, or null, sets nothing. Lists of scalars (args, command) are one value."""
    if isinstance(declared, dict):
        for key, value in declared.items():
            yield from leaves(value, other.get(key, _ABSENT) if isinstance(other, dict) else _ABSENT,
                              f"{pointer}/{_escape(key)}")
    elif isinstance(declared, list) and declared and all(isinstance(item, (dict, list)) for item in declared):
        key = _merge_key(declared)
        for index, item in enumerate(declared):
            yield from leaves(item, _entry(other, key, index, item), f"{pointer}/{index}")
    elif declared is not None and declared != []:
        yield pointer, declared, other


def _same(declared: t.Any, live: t.Any) -> bool:
    if live is _ABSENT:
        return declared in ({}, [], None, "")
    if isinstance(declared, bool) or isinstance(live, bool):
        return declared is live
    return declared == live


def comparable(obj: dict[str, t.Any]) -> dict[str, t.Any]:
    """What of a manifest object the chart holds: not its identity, not status; a Secret's
    stringData as the data it becomes."""
    declared = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    if metadata:
        declared["metadata"] = metadata
    else:
        declared.pop("metadata", None)
    if obj.get("kind") == "Secret" and isinstance(obj.get("stringData"), dict):
        data = dict(obj.get("data") or {})
        for key, value in obj["stringData"].items():
            data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
        declared["data"] = data
        declared.pop("stringData")
    return declared


def _opted_out(*objects: dict[str, t.Any] | None) -> bool:
    for obj in objects:
        meta = (obj or {}).get("metadata") or {}
        if OPT_OUT_VALUE in ((meta.get("annotations") or {}).get(OPT_OUT), (meta.get("labels") or {}).get(OPT_OUT)):
            return True
    return False


def _get(obj: t.Any, pointer: str, declared_root: t.Any = None) -> t.Any:
    """The value at a pointer of the manifest's structure (list entries matched as in leaves)."""
    tokens = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node, declared = obj, declared_root
    for token in tokens:
        if isinstance(node, dict):
            node, declared = node.get(token, _ABSENT), (declared or {}).get(token) if isinstance(declared, dict) else None
        elif isinstance(node, list) and token.isdigit():
            index = int(token)
            items = declared if isinstance(declared, list) else None
            item = items[index] if items is not None and index < len(items) else None
            node = _entry(node, _merge_key(items) if items else None, index, item)
            declared = item
        else:
            return None
        if node is _ABSENT:
            return None
    return node


def _put(obj: dict[str, t.Any], pointer: str, value: t.Any) -> None:
    """Sets a pointer's value in a nested dict (list indexes become keys: for showing only)."""
    tokens = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node = obj
    for token in tokens[:-1]:
        node = node.setdefault(token, {})
        if not isinstance(node, dict):
            return
    if tokens:
        node[tokens[-1]] = value


class DriftDetector:
    """Compares a release's manifest with the live objects; see the module docstring."""

    FIELD_MANAGER = "helm-engine-drift-check"

    def __init__(self, kube: KubeClient, namespace: str, rules: t.Sequence[IgnoreRule] = ()) -> None:
        self.kube = kube
        self.namespace = namespace
        self.rules = list(rules)
        self.proofs = 0  # server-side dry runs made

    def detect(self, manifest: str, live_objects: dict[ObjectKey, dict[str, t.Any] | None] | None = None) -> list[Drift]:
        """The drift of each object of ``manifest``; ``live_objects`` when they were read."""
        objects = parse_manifest(manifest, self.namespace)
        if live_objects is None:
            live_objects = self.kube.read_objects(list(objects), objects)
        drift = []
        for key, obj in objects.items():
            api_version, kind, namespace, name = key
            live = live_objects.get(key)
            if _opted_out(obj, live):
                continue
            if live is None:
                if not self._ignored(kind, name, ""):
                    drift.append(Drift(api_version, kind, namespace, name, MISSING, manifest=obj))
                continue
            declared = comparable(obj)
            suspects = [p for p, value, seen in leaves(declared, live) if not _same(value, seen) and not self._ignored(kind, name, p)]
            if suspects:
                paths = self._prove(key, obj, declared, live, suspects)
                if paths:
                    drift.append(Drift(api_version, kind, namespace, name, MODIFIED, paths, manifest=obj, live=live))
        return drift

    def _ignored(self, kind: str, name: str, pointer: str) -> bool:
        return any(rule.covers(kind, name, pointer) for rule in self.rules)

    def _prove(self, key: ObjectKey, obj: dict[str, t.Any], declared: dict[str, t.Any], live: dict[str, t.Any],
               suspects: list[str]) -> list[str]:
        """The suspect paths whose value the API server, applying the manifest, would still
        change. When it cannot be asked (no patch right, an old server), every suspect counts."""
        api_version, kind, namespace, name = key
        try:
            applied = self.kube.apply(api_version, kind, namespace, name, obj, field_manager=self.FIELD_MANAGER, dry_run=True)
        except KubeError:
            return suspects
        self.proofs += 1
        if applied is None:
            return suspects
        live_values = {p: seen for p, _value, seen in leaves(declared, live)}
        applied_values = {p: seen for p, _value, seen in leaves(declared, applied)}
        return [p for p in suspects if applied_values.get(p, _ABSENT) != live_values.get(p, _ABSENT)]


# helm's own field manager (helm 4 applies as it) and ownership marks (helm adds them to every
# object it creates; a recreated object without them would fail the next upgrade).
HELM_FIELD_MANAGER = "helm"
MANAGED_BY = ("app.kubernetes.io/managed-by", "Helm")


def owned(manifest: dict[str, t.Any], release: str, namespace: str) -> dict[str, t.Any]:
    """The manifest object with the labels and annotations helm puts on what it deploys."""
    metadata = dict(manifest.get("metadata") or {})
    metadata["labels"] = dict(metadata.get("labels") or {}, **{MANAGED_BY[0]: MANAGED_BY[1]})
    metadata["annotations"] = dict(metadata.get("annotations") or {}, **{
        "meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace})
    return dict(manifest, metadata=metadata)


def correct(kube: KubeClient, release: str, namespace: str, drift: t.Sequence[Drift]) -> None:
    """Puts the declared state back, one server-side apply per drifted object, as helm's field
    manager and with force: a missing object is created, drifted fields are set again and
    taken back from whoever changed them; fields the chart does not set stay as they are."""
    for done, item in enumerate(drift):
        try:
            kube.apply(item.api_version, item.kind, item.namespace, item.name, owned(item.manifest, release, namespace),
                       field_manager=HELM_FIELD_MANAGER, dry_run=False)
        except EngineError as exc:
            # What was put back before the refusal stays put back: the task changed the cluster.
            exc.extra.setdefault("changed", done > 0)
            exc.msg = f"Putting back {item.label()} failed ({done} of {len(drift)} drifted object(s) put back): {exc.msg}"
            raise


def correction_plan(drift: t.Sequence[Drift], values: dict[str, t.Any] | None) -> Plan:
    """What correcting the drift of an otherwise unchanged release changes: the missing objects
    are added, the drifted fields changed back; the diff shows live against declared."""
    changes = []
    for item in drift:
        live, declared = item.shown()
        changes.append(ResourceChange(item.key, "added" if item.reason == MISSING else "changed", live, declared))
    return Plan(action=CORRECT_DRIFT, reasons=[f"drift: {item.label()}" for item in drift], resource_changes=changes,
                values_before=values, values_after=values)


def summary(drift: t.Sequence[Drift]) -> str:
    shown = ", ".join(item.label() for item in drift[:5])
    return shown + (f" and {len(drift) - 5} more" if len(drift) > 5 else "")
