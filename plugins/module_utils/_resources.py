# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The live resources of a release: their readiness, and waiting until they are ready."""

from __future__ import annotations

import time
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import TIMEOUT, EngineError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient, ObjectKey, path_segment
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import parse_manifest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._objects import condition_is_true
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release


# ---- live readiness ---------------------------------------------------------------------------


def _generation_observed(obj: dict[str, t.Any]) -> bool:
    observed = (obj.get("status") or {}).get("observedGeneration")
    return observed is None or observed >= (obj.get("metadata") or {}).get("generation", 0)


def _replicated(obj: dict[str, t.Any], ready_field: str) -> tuple[bool, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = spec.get("replicas", 1)
    ready = status.get(ready_field) or 0
    updated = status.get("updatedReplicas") or 0
    # Pods of the previous template still running count as available: while any remain the
    # rollout is not over (kubectl rollout status: "old replicas are pending termination"),
    # else a new template whose pods never get ready passes on the old pods' readiness.
    old = max((status.get("replicas") or updated) - updated, 0)
    ok = _generation_observed(obj) and ready >= desired and updated >= desired and old == 0
    return ok, f"{ready}/{desired} ready, {updated} updated" + (f", {old} old" if old else "")


def _daemonset(obj: dict[str, t.Any]) -> tuple[bool, str]:
    status = obj.get("status") or {}
    desired = status.get("desiredNumberScheduled") or 0
    ready = status.get("numberReady") or 0
    updated = status.get("updatedNumberScheduled") or 0
    return _generation_observed(obj) and ready >= desired and updated >= desired, f"{ready}/{desired} ready"


def _job(obj: dict[str, t.Any]) -> tuple[bool, str]:
    if condition_is_true(obj, "Failed"):
        return False, "failed"
    if condition_is_true(obj, "Complete"):
        return True, "complete"
    status = obj.get("status") or {}
    return False, f"running ({status.get('active') or 0} active, {status.get('succeeded') or 0} succeeded)"


def _pod(obj: dict[str, t.Any]) -> tuple[bool, str]:
    phase = (obj.get("status") or {}).get("phase", "Unknown")
    if phase == "Succeeded":
        return True, "succeeded"
    ready = condition_is_true(obj, "Ready")
    return ready, f"{phase}, {'ready' if ready else 'not ready'}"


def _pvc(obj: dict[str, t.Any]) -> tuple[bool, str]:
    phase = (obj.get("status") or {}).get("phase", "Pending")
    return phase == "Bound", phase


class ReadinessChecker:
    """Live state of a release's resources, with no helm process: one GET for a kind the
    release holds once in a namespace, one LIST for a kind it holds more often, and one
    EndpointSlice list per namespace with Services. The request count grows with the kinds,
    not the resources."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._slices: dict[str, list[dict[str, t.Any]]] = {}

    def _service(self, obj: dict[str, t.Any]) -> tuple[bool, str]:
        spec = obj.get("spec") or {}
        if spec.get("type") == "ExternalName" or not spec.get("selector"):
            return True, "no selector"
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        if namespace not in self._slices:
            listing = self.kube.get_json(
                f"/apis/discovery.k8s.io/v1/namespaces/{path_segment(namespace)}/endpointslices",
                {"labelSelector": "kubernetes.io/service-name"},
            ) or {}
            self._slices[namespace] = listing.get("items") or []
        ready = sum(
            1
            for s in self._slices[namespace]
            if ((s.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") == meta.get("name")
            for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready", True)
        )
        return ready > 0, f"{ready} ready endpoint(s)"

    def check(self, release: Release, live_objects: dict[ObjectKey, dict[str, t.Any] | None] | None = None
              ) -> list[dict[str, t.Any]]:
        """Each object of the release with its readiness; ``live_objects`` when they were read."""
        assessments = []
        keys = list(parse_manifest(release.manifest, release.namespace))
        if live_objects is None:
            live_objects = self.kube.read_objects(keys)
        for api_version, kind, namespace, name in keys:
            live = live_objects[(api_version, kind, namespace, name)]
            entry: dict[str, t.Any] = {"api_version": api_version, "kind": kind, "namespace": namespace, "name": name}
            if live is None:
                entry.update(present=False, ready=False, detail="missing")
            else:
                ready, detail = self._assess(kind, live)
                entry.update(present=True, ready=ready, detail=detail)
            assessments.append(entry)
        return assessments

    def _assess(self, kind: str, live: dict[str, t.Any]) -> tuple[bool, str]:
        if kind == "Service":
            return self._service(live)
        return readiness(kind, live)


def wait_until_ready(kube: KubeClient, release: Release, timeout: float, poll: float = 2.0) -> list[dict[str, t.Any]]:
    """Reads the release's objects every ``poll`` seconds until all are ready; a timeout error
    naming what is not ready past ``timeout``. Returns what was seen not ready, when."""
    started = time.monotonic()
    timeline: list[dict[str, t.Any]] = []
    while True:
        waiting = [f"{r['kind']}/{r['name']} ({r['detail']})" for r in ReadinessChecker(kube).check(release) if not r["ready"]]
        elapsed = round(time.monotonic() - started, 1)
        if not waiting:
            return timeline
        if not timeline or timeline[-1]["not_ready"] != waiting:
            timeline.append({"at": elapsed, "not_ready": waiting})
        if elapsed >= timeout:
            raise EngineError(TIMEOUT, f"Not ready within {timeout:.0f}s: {', '.join(waiting[:5])}.",
                              details={"not_ready": waiting})
        time.sleep(min(poll, max(timeout - elapsed, 0.1)))


def readiness(kind: str, live: dict[str, t.Any]) -> tuple[bool, str]:
    """Whether a live object of a kind with no dependents to read is ready, and a short detail."""
    if kind == "Deployment":
        return _replicated(live, "availableReplicas")
    if kind == "StatefulSet":
        return _replicated(live, "readyReplicas")
    if kind == "ReplicaSet":
        desired = (live.get("spec") or {}).get("replicas", 1)
        ready = (live.get("status") or {}).get("readyReplicas") or 0
        return ready >= desired, f"{ready}/{desired} ready"
    if kind == "DaemonSet":
        return _daemonset(live)
    if kind == "Job":
        return _job(live)
    if kind == "Pod":
        return _pod(live)
    if kind == "PersistentVolumeClaim":
        return _pvc(live)
    return True, "present"
