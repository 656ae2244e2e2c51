#!/usr/bin/python
# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_status
short_description: Report a Helm release's status, history, hooks and the live readiness of its resources
version_added: 0.1.0
description:
  - Reads a release and its history from the cluster with the Kubernetes client, and checks the
    live state of every resource in its manifest. Starts no helm process.
  - Works for any release stored by helm 3 or helm 4, including ones installed by plain helm.
  - Reports C(healthy) and a one-line C(summary), and, when the latest revision is C(pending-*),
    which operation, since when, and whether it is stale.
  - With O(wait_for), polls until the release is deployed (or also healthy) or O(timeout) passes,
    and returns the timeline of states it saw.
  - Read-only. Never changes anything, in check mode or not.
author:
  - ai_mesh helm_engine maintainers (@ai-mesh)
extends_documentation_fragment:
  - ai_mesh.helm_engine.helm_engine
  - ai_mesh.helm_engine.helm_engine.helm
  - ai_mesh.helm_engine.helm_engine.results
  - ai_mesh.helm_engine.helm_engine.drift
  - ai_mesh.helm_engine.attributes
  - ai_mesh.helm_engine.attributes.actiongroup
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  wait_for:
    description:
      - Poll until the latest revision is V(deployed), or deployed and V(healthy) (every resource ready).
      - Without it, the module reports once.
    type: str
    choices: [deployed, healthy]
  timeout:
    description:
      - How long to poll with O(wait_for) before failing with C(error.kind=timeout), as a Go
        duration (V(5m), V(90s)) or a number of seconds.
    type: raw
    default: 5m
  poll_interval:
    description: Seconds between polls with O(wait_for), from 0.2 to 300.
    type: float
    default: 1.0
  stale_pending_after:
    description: How old a C(pending-*) revision must be to be reported stale (a Go duration or seconds).
    type: raw
    default: 360
  release_state:
    description:
      - As in kubernetes.core's C(helm_info), return RV(status) only when the release is in one of
        these states (V(all), V(deployed), V(failed), V(pending), V(superseded), V(uninstalled),
        V(uninstalling)). Empty means any state. V(uninstalled) also reports a release uninstalled
        with its history kept.
    type: list
    elements: str
    default: []
  get_all_values:
    description: As in kubernetes.core's C(helm_info), return the chart's default values merged with the user's in C(status.values).
    type: bool
    default: false
  fail_on_missing:
    description: Fail with C(error.kind=release_not_found) when the release does not exist; otherwise report C(exists=false).
    type: bool
    default: false
  sensitive_values:
    description:
      - Dotted paths into the values (C(db.password), C(*) matches one level) whose leaves are
        redacted from C(status.values) and masked in C(status.notes), in addition to keys that
        look secret. Give the same paths as to M(ai_mesh.helm_engine.helm_deploy).
    type: list
    elements: str
    default: []
  fail_fast:
    description:
      - With O(wait_for=healthy), stop polling as soon as a workload definitely fails (a crash loop
        past 3 restarts, an image that cannot be pulled, a pod unschedulable for 30 seconds, a Job
        past its backoffLimit, a Deployment past its progress deadline) and fail with
        C(error.kind=rollout_failed) and C(error.resources), instead of polling until O(timeout).
    type: bool
    default: true
  check_drift:
    description:
      - Also compare the live objects with the deployed revision, as
        M(ai_mesh.helm_engine.helm_deploy) does with O(ai_mesh.helm_engine.helm_deploy#module:drift=detect),
        and return RV(drift) and RV(in_sync). Nothing is changed; a scheduled status job can alert on it.
      - Costs no more reads than the readiness check (the same objects), plus a server-side apply dry
        run for each object that looks drifted.
    type: bool
    default: false
seealso:
  - module: ai_mesh.helm_engine.helm_deploy
  - module: ai_mesh.helm_engine.helm_rollback
"""

EXAMPLES = r"""
- name: Alert when someone edited the release's objects by hand
  ai_mesh.helm_engine.helm_status:
    name: web
    namespace: web
    check_drift: true
    drift_ignore:
      - kind: Deployment
        paths: [/spec/replicas]
  register: drift_report
  failed_when: not drift_report.in_sync

- name: Report the release
  ai_mesh.helm_engine.helm_status:
    name: web
    namespace: web
  register: web_status

- name: Fail unless every resource is ready
  ansible.builtin.assert:
    that: web_status.healthy
    fail_msg: "{{ web_status.summary }}"

- name: Wait for a release another job is deploying, showing progress
  ai_mesh.helm_engine.helm_status:
    name: web
    namespace: web
    wait_for: healthy
    timeout: 600
  register: waited
"""

RETURN = r"""
exists:
  description: Whether the release exists.
  returned: always
  type: bool
healthy:
  description: The latest revision is deployed and every resource of it is present and ready.
  returned: always
  type: bool
drift:
  description:
    - With O(check_drift), the objects whose live state departs from the deployed revision, in the
      shape of M(ai_mesh.helm_engine.helm_deploy)'s C(drift) (C(reason) V(missing) or V(modified),
      C(paths) as JSON pointers). Empty when the latest revision is not deployed.
  returned: with O(check_drift) when the release exists
  type: list
  elements: dict
in_sync:
  description: With O(check_drift), the latest revision is deployed and nothing drifted from it.
  returned: with O(check_drift) when the release exists
  type: bool
summary:
  description: One line for people.
  returned: always
  type: str
  sample: "deployed, revision 3 (web-1.4.0): 4/4 resources ready"
release:
  description: The latest revision (see M(ai_mesh.helm_engine.helm_deploy)).
  returned: when the release exists
  type: dict
release_status:
  description: helm status of the latest revision.
  returned: when the release exists
  type: str
  sample: deployed
status:
  description:
    - The release as kubernetes.core's C(helm_info) returns it, so its playbooks read the same keys
      (C(status.status), C(status.values), C(status.revision) as a string, ...). Values have secrets redacted.
  returned: when the release exists and is in one of O(release_state)
  type: dict
  sample: {"name": "web", "namespace": "web", "revision": "3", "status": "deployed", "chart": "web-1.4.0",
           "app_version": "2.1", "updated": "...", "values": {"replicaCount": 3}, "release_values": {"replicaCount": 3},
           "hooks": [], "notes": ""}
revision:
  description: The latest revision.
  returned: when the release exists
  type: int
history:
  description: Every stored revision, oldest first.
  returned: when the release exists
  type: list
  elements: dict
  sample: [{"revision": 1, "status": "superseded", "chart": "web-1.3.0", "app_version": "2.0", "updated": "...", "description": "Install complete"}]
hooks:
  description: The latest revision's hooks with the result of their last run.
  returned: when the release exists
  type: list
  elements: dict
resources:
  description:
    - Each resource of the latest revision with C(present), C(ready) and a C(detail).
    - A workload that is not ready because it definitely fails (the same judgement as
      O(ai_mesh.helm_engine.helm_deploy#module:fail_fast), with its default thresholds) also has
      C(reason) (C(CrashLoopBackOff), C(ImagePullBackOff), C(Unschedulable), ...), C(message),
      its recent Warning C(events), and C(pod) and C(container) when a container fails.
  returned: when the release exists
  type: list
  elements: dict
  sample:
    - {"kind": "Deployment", "name": "web", "namespace": "web", "api_version": "apps/v1", "present": true, "ready": true, "detail": "3/3 ready, 3 updated"}
pending:
  description: When the latest revision is pending, which operation, since when, and whether it is stale.
  returned: when the latest revision is pending-*
  type: dict
  sample: {"operation": "upgrade", "status": "pending-upgrade", "revision": 4, "since": "...", "age_seconds": 12.3, "stale_after_seconds": 360, "stale": false}
timeline:
  description: With O(wait_for), each state seen while polling, with seconds since the start.
  returned: when O(wait_for) is set
  type: list
  elements: dict
duration:
  description: Seconds the module spent, including importing the Kubernetes client.
  returned: always
  type: float
kube_requests:
  description: How many Kubernetes API requests the task made.
  returned: always
  type: int
error:
  description: On failure, a stable C(kind), the message and, when helm failed, its stderr and exit code.
  returned: failure
  type: dict
  contains:
    kind:
      description: What failed; stable, to match on.
      type: str
      returned: always
      choices: [invalid_arguments, invalid_values, kubeconfig_invalid, chart_not_found, chart_invalid,
                registry_unreachable, render_failed, cluster_unreachable, unauthorized, forbidden,
                kubernetes_api_error, resource_conflict, release_locked, release_not_found,
                revision_not_found, hook_failed, rollout_failed, timeout, helm_missing, helm_unsupported, helm_failed,
                helm_output_invalid, missing_dependency, internal_error]
    message: {description: The same as C(msg)., type: str, returned: always}
    option: {description: The option whose value was refused., type: str, returned: when an input was refused}
"""

import time
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import DRIFT_IGNORE_ARG_SPEC, argument_spec, drift_policy
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._drift import DriftDetector
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._drift import summary as drift_summary
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import parse_manifest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import (
    EngineModule,
    Manager,
    TaskContext,
    run_manager,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    RELEASE_NOT_FOUND,
    ROLLOUT_FAILED,
    TIMEOUT,
    EngineError,
    InputError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._recovery import pending_info
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import DEPLOYED, UNINSTALLED, Release, latest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._resources import ReadinessChecker
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rollout import WORKLOAD_KINDS

# kubernetes.core.helm_info's release_state filter (helm list's state flags).
RELEASE_STATES = ("all", "deployed", "failed", "pending", "superseded", "uninstalled", "uninstalling")
MIN_POLL_INTERVAL = 0.2
DEFAULT_WAIT_TIMEOUT = 300.0


class StatusManager(Manager):
    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        self.timeout = context.timeout or DEFAULT_WAIT_TIMEOUT
        self.poll_interval = 1.0
        self.stale_after = 360.0
        self.drift = drift_policy(self.params, mode="detect" if self.params["check_drift"] else "ignore")

    def validate(self) -> None:
        p = self.params
        self.poll_interval = validate.positive_number(p["poll_interval"], "poll_interval", minimum=MIN_POLL_INTERVAL, maximum=300)
        self.stale_after = validate.duration_seconds(p["stale_pending_after"], "stale_pending_after", default=360.0) or 360.0
        for state in p["release_state"] or []:
            if state not in RELEASE_STATES:
                raise InputError(f"release_state {state!r} is not one of {', '.join(RELEASE_STATES)}.", option="release_state")

    def in_requested_state(self, status: str) -> bool:
        """helm_info returns status only for a release in one of release_state (helm list's
        default: deployed or failed, and any state helm_status knows when unset)."""
        wanted = self.params["release_state"] or []
        if not wanted or "all" in wanted:
            return True
        return status in wanted or ("pending" in wanted and status.startswith("pending-"))

    def explain(self, current: Release, resources: list[dict[str, t.Any]]) -> None:
        """Adds the fail-fast diagnosis (reason, events) to workloads that are not ready: what a
        deploy that failed fast reported, readable again right after. A failed look adds nothing."""
        watcher = self.context.rollout_watcher(current.manifest)
        try:
            failures = watcher.poll()
        except EngineError:
            return
        for failure in failures:
            for entry in resources:
                if (entry["kind"], entry["name"]) == (failure.kind, failure.name) and "reason" not in entry:
                    entry.update(reason=failure.reason, message=failure.message, events=failure.events)
                    if failure.container:
                        entry.update(pod=failure.pod, container=failure.container)

    def snapshot(self) -> dict[str, t.Any]:
        name, namespace = self.context.name, self.context.namespace
        history = self.context.store.history(name, namespace)
        current = latest(history)
        if current is None or (current.status == UNINSTALLED and "uninstalled" not in (self.params["release_state"] or [])):
            return {"exists": False, "healthy": False, "summary": f"release {namespace}/{name} does not exist"}
        declared = parse_manifest(current.manifest, namespace) if current.status != UNINSTALLED else {}
        live = self.context.kube.read_objects(list(declared), declared) if declared else {}
        resources = ReadinessChecker(self.context.kube).check(current, live) if current.status != UNINSTALLED else []
        not_ready = [r for r in resources if not r["ready"]]
        if any(r["kind"] in WORKLOAD_KINDS for r in not_ready):
            self.explain(current, resources)
        healthy = current.status == DEPLOYED and not not_ready
        summary = f"{current.status}, revision {current.revision} ({current.chart_ref}): {len(resources) - len(not_ready)}/{len(resources)} resources ready"
        if not_ready:
            summary += "; not ready: " + ", ".join(f"{r['kind']}/{r['name']} ({r['detail']})" for r in not_ready[:5])
        redactor = self.context.redactor
        values = current.all_values() if self.params["get_all_values"] else (current.config or {})
        result: dict[str, t.Any] = {
            "exists": True,
            "healthy": healthy,
            "summary": summary,
            "release_status": current.status,
            "revision": current.revision,
            "release": current.summary(),
            "history": [r.history_entry() for r in history],
            "hooks": [h.summary() for h in current.hooks],
            "resources": resources,
        }
        if self.in_requested_state(current.status):
            status = current.core_status(redactor.redact_values(values))
            # helm_info's extra keys, so its playbooks read the same fields.
            status["hooks"] = [h.summary() for h in current.hooks]
            status["notes"] = redactor.redact_text(current.notes) or ""
            result["status"] = status
        if self.drift.checks:
            # Against the deployed revision only: a failed or pending one is not what should be live.
            drift = DriftDetector(self.context.kube, namespace, self.drift.rules).detect(current.manifest, live) \
                if current.status == DEPLOYED else []
            result["drift"] = [item.as_dict() for item in drift]
            result["in_sync"] = current.status == DEPLOYED and not drift
            if drift:
                result["summary"] += f"; drifted: {drift_summary(drift)}"
        if current.is_pending:
            result["pending"] = pending_info(current, self.stale_after)
            result["summary"] = f"{current.status} since {current.updated}" + (" (stale)" if result["pending"]["stale"] else "") + "; " + summary
        return result

    def execute(self) -> dict[str, t.Any]:
        wait_for = self.params["wait_for"]
        snapshot = self.snapshot()
        if wait_for is None:
            return self.finish(snapshot)
        started = time.monotonic()
        deadline = started + self.timeout
        timeline: list[dict[str, t.Any]] = []
        while True:
            timeline.append({
                "seconds": round(time.monotonic() - started, 2),
                "status": snapshot.get("release_status"),
                "revision": snapshot.get("revision"),
                "healthy": snapshot["healthy"],
                "summary": snapshot["summary"],
            })
            if self.reached(snapshot, wait_for):
                return self.finish(dict(snapshot, timeline=timeline))
            failing = [r for r in snapshot.get("resources") or [] if r.get("reason")]
            if wait_for == "healthy" and failing and self.params["fail_fast"]:
                error = EngineError(
                    ROLLOUT_FAILED,
                    "Release cannot become healthy: " + "; ".join(
                        f"{r['kind']}/{r['name']}" + (f" container {r['container']}" if r.get("container") else "")
                        + f": {r['reason']} ({r['message']})" for r in failing) + ".",
                    details={"resources": failing},
                )
                error.extra.update(dict(snapshot, timeline=timeline, changed=False))
                raise error
            if time.monotonic() >= deadline:
                error = EngineError(TIMEOUT, f"Release did not become {wait_for} within {self.timeout:g}s: {snapshot['summary']}")
                error.extra.update(dict(snapshot, timeline=timeline, changed=False))
                raise error
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
            snapshot = self.snapshot()

    @staticmethod
    def reached(snapshot: dict[str, t.Any], wait_for: str) -> bool:
        if wait_for == "healthy":
            return snapshot["healthy"]
        return snapshot.get("release_status") == DEPLOYED

    def finish(self, snapshot: dict[str, t.Any]) -> dict[str, t.Any]:
        if not snapshot["exists"] and self.params["fail_on_missing"]:
            raise EngineError(RELEASE_NOT_FOUND, snapshot["summary"])
        return dict(snapshot, changed=False)


def main() -> None:
    module = EngineModule(
        argument_spec=argument_spec(
            wait_for={"type": "str", "choices": ["deployed", "healthy"]},
            timeout={"type": "raw", "default": "5m"},
            poll_interval={"type": "float", "default": 1.0},
            stale_pending_after={"type": "raw", "default": 360},
            fail_on_missing={"type": "bool", "default": False},
            release_state={"type": "list", "elements": "str", "default": []},
            get_all_values={"type": "bool", "default": False},
            sensitive_values={"type": "list", "elements": "str", "default": []},
            fail_fast={"type": "bool", "default": True},
            check_drift={"type": "bool", "default": False},
            **DRIFT_IGNORE_ARG_SPEC,
        ),
        supports_check_mode=True,
    )
    # Status reads the cluster only: no helm binary is needed.
    run_manager(module, StatusManager, needs_helm=False, sensitive_paths=module.params["sensitive_values"])


if __name__ == "__main__":
    main()
