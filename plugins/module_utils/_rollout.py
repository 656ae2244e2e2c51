# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Fail fast: tell a rollout that cannot succeed from one that is merely slow.

While helm waits, the release's workloads are read with one list per kind (pods, ReplicaSets,
and the workload kinds the manifest has) and judged here. Only definite failures count:
a container that cannot start (its image cannot be pulled, its config is invalid), a crash loop
past a restart threshold, a pod unschedulable past a grace period, a Job past its backoffLimit,
a Deployment past its progressDeadlineSeconds. A pod that is only not ready yet never counts,
so a slow but healthy rollout is never cut short.

Only pods of the template being rolled out are judged: pods an upgrade is replacing may be
the very failure the upgrade fixes.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import time
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import ROLLOUT_FAILED, EngineError, HelmError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient, path_segment
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import parse_manifest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._objects import conditions, metadata, parse_time
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._resources import readiness
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import FailFastPolicy

# Container waiting reasons that no amount of waiting fixes without a change to the release.
CANNOT_START = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
    "ErrImageNeverPull",
})
CRASH_LOOP = "CrashLoopBackOff"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "Pod")
MAX_EVENTS = 5
LOG_LINES = 20
MAX_LOGGED_CONTAINERS = 3


@dataclasses.dataclass
class Failure:
    """One resource that makes the rollout fail, with the evidence."""

    kind: str
    namespace: str
    name: str
    reason: str
    message: str
    container: str | None = None
    pod: str | None = None
    events: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    logs: str | None = None

    def as_dict(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {"kind": self.kind, "namespace": self.namespace, "name": self.name,
                                 "reason": self.reason, "message": self.message, "events": self.events}
        if self.pod:
            out["pod"] = self.pod
        if self.container:
            out["container"] = self.container
        if self.logs is not None:
            out["logs"] = self.logs
        return out


def _labels_match(selector: dict[str, t.Any] | None, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) against a pod's labels."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def container_failures(pod: dict[str, t.Any], owner: tuple[str, str], policy: FailFastPolicy) -> list[Failure]:
    """Containers of a pod that cannot start, or crash-loop past the restart threshold."""
    meta, status = metadata(pod), pod.get("status") or {}
    failures = []
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason") or ""
        restarts = cs.get("restartCount") or 0
        if reason in CANNOT_START:
            message = waiting.get("message") or reason
        elif reason == CRASH_LOOP and restarts >= policy.restarts:
            terminated = (cs.get("lastState") or {}).get("terminated") or {}
            exit_code = terminated.get("exitCode")
            message = f"restarted {restarts} times" + (f", last exit code {exit_code}" if exit_code is not None else "")
        else:
            continue
        failures.append(Failure(owner[0], meta.get("namespace", ""), owner[1], reason, message,
                                container=cs.get("name"), pod=meta.get("name")))
    return failures


def unschedulable_failure(pod: dict[str, t.Any], owner: tuple[str, str], policy: FailFastPolicy,
                          now: datetime.datetime) -> Failure | None:
    scheduled = conditions(pod).get("PodScheduled") or {}
    if scheduled.get("status") != "False" or scheduled.get("reason") != "Unschedulable":
        return None
    since = parse_time(scheduled.get("lastTransitionTime")) or parse_time(metadata(pod).get("creationTimestamp"))
    if since is None or (now - since).total_seconds() < policy.grace:
        return None
    meta = metadata(pod)
    return Failure(owner[0], meta.get("namespace", ""), owner[1], "Unschedulable",
                   scheduled.get("message") or "no node can run the pod", pod=meta.get("name"))


def workload_failure(obj: dict[str, t.Any]) -> Failure | None:
    """Failures a workload reports on itself: a Job past backoffLimit, a Deployment past its
    progress deadline."""
    kind, meta = obj.get("kind"), metadata(obj)
    by_type = conditions(obj)
    if kind == "Job":
        failed = by_type.get("Failed") or {}
        if failed.get("status") == "True":
            return Failure("Job", meta.get("namespace", ""), meta.get("name", ""), failed.get("reason") or "Failed",
                           failed.get("message") or "the Job failed")
    if kind == "Deployment":
        progressing = by_type.get("Progressing") or {}
        if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
            return Failure("Deployment", meta.get("namespace", ""), meta.get("name", ""), "ProgressDeadlineExceeded",
                           progressing.get("message") or "the Deployment exceeded its progress deadline")
    return None


def current_pods(workload: dict[str, t.Any], pods: list[dict[str, t.Any]],
                 replicasets: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The pods of the workload's current template (not those an update is replacing)."""
    kind, meta, spec = workload.get("kind"), metadata(workload), workload.get("spec") or {}
    if kind == "Pod":
        return [p for p in pods if metadata(p).get("name") == meta.get("name")]
    observed = (workload.get("status") or {}).get("observedGeneration")
    if kind != "Job" and (observed is None or observed < meta.get("generation", 0)):
        # The controller has not seen the new template yet: every pod is still an old one.
        return []
    selected = [p for p in pods if _labels_match(spec.get("selector"), metadata(p).get("labels") or {})]
    if kind == "Deployment":
        revision = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision")
        owned = [rs for rs in replicasets
                 if any(ref.get("uid") == meta.get("uid") for ref in metadata(rs).get("ownerReferences") or [])]
        newest = [rs for rs in owned if (metadata(rs).get("annotations") or {}).get("deployment.kubernetes.io/revision") == revision]
        if not newest:
            return []  # the controller has not created the new ReplicaSet yet: nothing to judge
        hashes = {(metadata(rs).get("labels") or {}).get("pod-template-hash") for rs in newest}
        return [p for p in selected if (metadata(p).get("labels") or {}).get("pod-template-hash") in hashes]
    if kind == "StatefulSet":
        revision = (workload.get("status") or {}).get("updateRevision")
        if not revision:
            return selected
        return [p for p in selected if (metadata(p).get("labels") or {}).get("controller-revision-hash") == revision]
    if kind == "DaemonSet":
        generation = str(meta.get("generation", ""))
        return [p for p in selected if (metadata(p).get("labels") or {}).get("pod-template-generation") in (generation, None)]
    if kind == "Job":
        uid = meta.get("uid")
        return [p for p in selected if any(ref.get("uid") == uid for ref in metadata(p).get("ownerReferences") or [])]
    return selected


def _version(obj: dict[str, t.Any]) -> tuple[str, int]:
    return metadata(obj).get("uid", ""), metadata(obj).get("generation", 0)


def diagnose(workloads: list[dict[str, t.Any]], pods: list[dict[str, t.Any]], replicasets: list[dict[str, t.Any]],
             policy: FailFastPolicy, now: datetime.datetime,
             baseline: dict[tuple[str, str], tuple[str, int]] | None = None) -> list[Failure]:
    """Every definite failure among the live workloads of a release (no API call).

    With a ``baseline`` (uid and generation of each workload before helm started), a workload
    helm has not changed yet is not judged: while hooks run, or when the operation leaves its
    template alone, its pods are not what the operation rolls out (a crash loop there may be
    what a new ConfigMap or Secret is about to fix)."""
    failures: list[Failure] = []
    for workload in workloads:
        key = (workload.get("kind", ""), metadata(workload).get("name", ""))
        if baseline is not None and baseline.get(key) == _version(workload):
            continue
        own = workload_failure(workload)
        if own is not None:
            failures.append(own)
        owner = (workload.get("kind", ""), metadata(workload).get("name", ""))
        for pod in current_pods(workload, pods, replicasets):
            failures.extend(container_failures(pod, owner, policy))
            unschedulable = unschedulable_failure(pod, owner, policy, now)
            if unschedulable is not None:
                failures.append(unschedulable)
    return failures


class RolloutWatcher:
    """Reads a release's workloads while helm waits and reports definite failures.

    One list per kind in the release namespace per poll (not one request per resource); the
    evidence (Warning events, log tails) is only read once a failure is found."""

    def __init__(self, kube: KubeClient, namespace: str, manifest: str | t.Callable[[], str | None], policy: FailFastPolicy,
                 redact: t.Callable[[str], str] = lambda text: text, timeout: float | None = None) -> None:
        """``manifest``: the release's, or a reader of the manifest helm records once it starts
        (a first install not rendered before: its workloads are known only then)."""
        self.timeout = timeout  # helm's wait, for the time left in the timeline
        self.kube = kube
        self.namespace = namespace
        self.policy = policy
        self.redact = redact
        self.timeline: list[dict[str, t.Any]] = []
        self.baseline: dict[tuple[str, str], tuple[str, int]] | None = None
        self._last_state: dict[tuple[str, str], tuple[str, str]] = {}
        self._started = time.monotonic()
        self.names: dict[str, set[str]] = {}
        self._recorded_manifest: t.Callable[[], str | None] | None = None
        if callable(manifest):
            self._recorded_manifest = manifest
        else:
            self._learn(manifest)

    def _learn(self, manifest: str) -> None:
        for (_api_version, kind, obj_namespace, name) in parse_manifest(manifest, self.namespace):
            if kind in WORKLOAD_KINDS and obj_namespace == self.namespace:
                self.names.setdefault(kind, set()).add(name)

    @property
    def has_workloads(self) -> bool:
        # Not known yet for a manifest helm has still to record: watch, and learn it then.
        return bool(self.names) or self._recorded_manifest is not None

    def take_baseline(self) -> None:
        """Records each workload's uid and generation before helm starts (see diagnose). A
        manifest helm has not recorded yet belongs to a first install: no baseline to take."""
        if self._recorded_manifest is not None:
            return
        workloads = self._workloads()
        if "Pod" in self.names:
            workloads += [dict(p, kind="Pod") for p in self._list(f"/api/v1/namespaces/{path_segment(self.namespace)}/pods")
                          if metadata(p).get("name") in self.names["Pod"]]
        self.baseline = {(w.get("kind", ""), metadata(w).get("name", "")): _version(w) for w in workloads}

    def _list(self, path: str) -> list[dict[str, t.Any]]:
        return (self.kube.get_json(path) or {}).get("items") or []

    def _workloads(self) -> list[dict[str, t.Any]]:
        ns = path_segment(self.namespace)
        paths = {
            "Deployment": f"/apis/apps/v1/namespaces/{ns}/deployments",
            "StatefulSet": f"/apis/apps/v1/namespaces/{ns}/statefulsets",
            "DaemonSet": f"/apis/apps/v1/namespaces/{ns}/daemonsets",
            "Job": f"/apis/batch/v1/namespaces/{ns}/jobs",
        }
        found = []
        for kind, path in paths.items():
            if kind not in self.names:
                continue
            for item in self._list(path):
                if metadata(item).get("name") in self.names[kind]:
                    item.setdefault("kind", kind)
                    found.append(item)
        return found

    def poll(self, now: datetime.datetime | None = None) -> list[Failure]:
        if self._recorded_manifest is not None:
            manifest = self._recorded_manifest()
            if manifest is None:
                return []
            self._recorded_manifest = None
            self._learn(manifest)
        if not self.names:
            return []
        ns = path_segment(self.namespace)
        workloads = self._workloads()
        pods = self._list(f"/api/v1/namespaces/{ns}/pods")
        for pod in pods:
            if metadata(pod).get("name") in self.names.get("Pod", ()):
                workloads.append(dict(pod, kind="Pod"))
        replicasets = self._list(f"/apis/apps/v1/namespaces/{ns}/replicasets") if "Deployment" in self.names else []
        now = now or datetime.datetime.now(datetime.timezone.utc)
        failures = diagnose(workloads, pods, replicasets, self.policy, now, self.baseline)
        self._record(workloads, failures)
        if failures:
            self.add_evidence(failures)
        return failures

    def _record(self, workloads: list[dict[str, t.Any]], failures: list[Failure]) -> None:
        """Appends each change of a workload's state to the timeline."""
        failing = {(f.kind, f.name): f.reason for f in failures}
        for workload in workloads:
            key = (workload.get("kind", ""), metadata(workload).get("name", ""))
            ready, detail = readiness(key[0], workload)
            state = "failing" if key in failing else "ready" if ready else "waiting"
            if key in failing:
                detail = failing[key]
            if self._last_state.get(key) != (state, detail):
                self._last_state[key] = (state, detail)
                elapsed = time.monotonic() - self._started
                step = {"seconds": round(elapsed, 1), "resource": f"{key[0]}/{key[1]}", "state": state, "detail": detail}
                if self.timeout:
                    step["seconds_left"] = round(max(self.timeout - elapsed, 0.0), 1)
                self.timeline.append(step)

    def add_evidence(self, failures: list[Failure]) -> None:
        """Recent Warning events of each failing object and the log tail of failing containers."""
        ns = path_segment(self.namespace)
        events = self._list(f"/api/v1/namespaces/{ns}/events")
        logged = 0
        for failure in failures:
            subjects = {failure.name} | ({failure.pod} if failure.pod else set())
            related = [e for e in events if e.get("type") == "Warning"
                       and (e.get("involvedObject") or {}).get("name") in subjects]
            related.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "", reverse=True)
            failure.events = [
                {"reason": e.get("reason"), "message": self.redact(e.get("message") or ""), "count": e.get("count") or 1,
                 "object": f"{(e.get('involvedObject') or {}).get('kind')}/{(e.get('involvedObject') or {}).get('name')}"}
                for e in related[:MAX_EVENTS]
            ]
            if failure.pod and failure.container and failure.reason == CRASH_LOOP and logged < MAX_LOGGED_CONTAINERS:
                logged += 1
                failure.logs = self.redact(self._log_tail(failure.pod, failure.container))

    def _log_tail(self, pod: str, container: str) -> str:
        path = f"/api/v1/namespaces/{path_segment(self.namespace)}/pods/{path_segment(pod)}/log"
        for previous in ("true", "false"):  # a crash-looping container's last run is the previous one
            try:
                text = self.kube.get_text(path, {"container": container, "tailLines": str(LOG_LINES), "previous": previous})
            except Exception:  # noqa: BLE001 - logs are evidence, never a reason to fail differently
                continue
            if text:
                return text
        return ""


def summarize(failures: list[Failure]) -> str:
    """One line naming each failing resource and why, for error messages."""
    parts = []
    for failure in failures:
        where = f"{failure.kind}/{failure.name}"
        if failure.container:
            where += f" container {failure.container}"
        parts.append(f"{where}: {failure.reason} ({failure.message})")
    return "; ".join(parts)


def rollout_monitor(watcher: RolloutWatcher) -> t.Callable[[], HelmError | None] | None:
    """The monitor run_process calls while helm waits: the watcher's failures as a
    rollout_failed error. None when fail-fast is off or the release has no workload."""
    if not watcher.policy.enabled or not watcher.has_workloads:
        return None
    try:
        watcher.take_baseline()
    except EngineError:
        return None  # the cluster could not be read: helm waits as it would without fail-fast

    def check() -> HelmError | None:
        try:
            failures = watcher.poll()
        except EngineError:
            return None  # a look that failed (an API hiccup) is not a failed rollout
        if not failures:
            return None
        return HelmError(
            ROLLOUT_FAILED,
            f"The rollout cannot succeed: {summarize(failures)}.",
            details={"resources": [f.as_dict() for f in failures]},
        )

    return check


_HELM_WAIT_FAILED = re.compile(r"resource (\w+)/([^/\s]+)/(\S+) not ready\. status: Failed, message: ([^\n\"]+)")


def resources_from_helm(stderr: str) -> list[dict[str, t.Any]]:
    """The failing resources helm 4's waiter named ("resource Deployment/ns/web not ready.
    status: Failed, message: Progress deadline exceeded"), in error.resources' shape."""
    found: dict[tuple[str, str, str], dict[str, t.Any]] = {}  # helm 4 says it in its log line and its error
    for kind, namespace, name, message in _HELM_WAIT_FAILED.findall(stderr or ""):
        message = message.strip().rstrip(".")
        reason = "ProgressDeadlineExceeded" if "progress deadline" in message.lower() else "Failed"
        found.setdefault((kind, namespace, name), {"kind": kind, "namespace": namespace, "name": name, "reason": reason,
                                                   "message": message, "events": []})
    return list(found.values())
