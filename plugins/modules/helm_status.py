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
  - ai_mesh helm_engine maintainers
extends_documentation_fragment:
  - ai_mesh.helm_engine.helm_engine
  - ai_mesh.helm_engine.helm_engine.helm
  - ai_mesh.helm_engine.helm_engine.results
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
    description: Seconds to poll with O(wait_for) before failing with C(error.kind=timeout).
    type: int
    default: 300
  poll_interval:
    description: Seconds between polls with O(wait_for).
    type: float
    default: 1.0
  stale_pending_after:
    description: Seconds after which a C(pending-*) revision is reported stale.
    type: int
    default: 360
  fail_on_missing:
    description: Fail with C(error.kind=release_not_found) when the release does not exist; otherwise report C(exists=false).
    type: bool
    default: false
seealso:
  - module: ai_mesh.helm_engine.helm_deploy
  - module: ai_mesh.helm_engine.helm_rollback
"""

EXAMPLES = r"""
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
summary:
  description: One line for people.
  returned: always
  type: str
  sample: "deployed, revision 3 (web-1.4.0): 4/4 resources ready"
release:
  description: The latest revision (see M(ai_mesh.helm_engine.helm_deploy)).
  returned: when the release exists
  type: dict
status:
  description: helm status of the latest revision.
  returned: when the release exists
  type: str
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
  description: Each resource of the latest revision with C(present), C(ready) and a C(detail).
  returned: when the release exists
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "name": "web", "namespace": "web", "api_version": "apps/v1", "present": true, "ready": true, "detail": "3/3 ready, 3 updated"}]
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
"""

import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._common import TaskContext, argument_spec, run_manager
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import RELEASE_NOT_FOUND, TIMEOUT, HelmError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._recovery import pending_info
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import DEPLOYED, latest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._resources import ReadinessChecker


class StatusManager:
    def __init__(self, context: TaskContext) -> None:
        self.context = context
        self.params = context.module.params

    def snapshot(self) -> dict[str, t.Any]:
        name, namespace = self.params["name"], self.params["namespace"]
        history = self.context.kube.release_history(name, namespace)
        current = latest(history)
        if current is None or current.status == "uninstalled":
            return {"exists": False, "healthy": False, "summary": f"release {namespace}/{name} does not exist"}
        resources = ReadinessChecker(self.context.kube).check(current)
        not_ready = [r for r in resources if not r["ready"]]
        healthy = current.status == DEPLOYED and not not_ready
        summary = f"{current.status}, revision {current.revision} ({current.chart_ref}): {len(resources) - len(not_ready)}/{len(resources)} resources ready"
        if not_ready:
            summary += "; not ready: " + ", ".join(f"{r['kind']}/{r['name']} ({r['detail']})" for r in not_ready[:5])
        result: dict[str, t.Any] = {
            "exists": True,
            "healthy": healthy,
            "summary": summary,
            "status": current.status,
            "revision": current.revision,
            "release": current.summary(),
            "history": [r.history_entry() for r in history],
            "hooks": [h.summary() for h in current.hooks],
            "resources": resources,
        }
        if current.is_pending:
            result["pending"] = pending_info(current, float(self.params["stale_pending_after"]))
            result["summary"] = f"{current.status} since {current.updated}" + (" (stale)" if result["pending"]["stale"] else "") + "; " + summary
        return result

    def run(self) -> dict[str, t.Any]:
        wait_for = self.params["wait_for"]
        snapshot = self.snapshot()
        if wait_for is None:
            return self.finish(snapshot)
        started = time.monotonic()
        deadline = started + self.params["timeout"]
        timeline: list[dict[str, t.Any]] = []
        while True:
            timeline.append({
                "seconds": round(time.monotonic() - started, 2),
                "status": snapshot.get("status"),
                "revision": snapshot.get("revision"),
                "healthy": snapshot["healthy"],
                "summary": snapshot["summary"],
            })
            if self.reached(snapshot, wait_for):
                return self.finish(dict(snapshot, timeline=timeline))
            if time.monotonic() >= deadline:
                error = HelmError(TIMEOUT, f"Release did not become {wait_for} within {self.params['timeout']}s: {snapshot['summary']}")
                error.extra.update(dict(snapshot, timeline=timeline, changed=False))
                raise error
            time.sleep(self.params["poll_interval"])
            snapshot = self.snapshot()

    @staticmethod
    def reached(snapshot: dict[str, t.Any], wait_for: str) -> bool:
        if wait_for == "healthy":
            return snapshot["healthy"]
        return snapshot.get("status") == DEPLOYED

    def finish(self, snapshot: dict[str, t.Any]) -> dict[str, t.Any]:
        if not snapshot["exists"] and self.params["fail_on_missing"]:
            raise HelmError(RELEASE_NOT_FOUND, snapshot["summary"])
        return dict(snapshot, changed=False)


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(
            wait_for={"type": "str", "choices": ["deployed", "healthy"]},
            timeout={"type": "int", "default": 300},
            poll_interval={"type": "float", "default": 1.0},
            stale_pending_after={"type": "int", "default": 360},
            fail_on_missing={"type": "bool", "default": False},
        ),
        supports_check_mode=True,
    )
    # Status reads the cluster only: no helm binary is needed.
    run_manager(module, StatusManager, needs_helm=False)


if __name__ == "__main__":
    main()
