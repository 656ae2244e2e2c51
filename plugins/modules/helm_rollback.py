#!/usr/bin/python
# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_rollback
short_description: Roll a Helm release back to the last good, the previous or a given revision
version_added: 0.1.0
description:
  - Rolls a release back with C(helm rollback), on helm 3 (3.13 or later) or helm 4.
  - By default the target is the last successful revision (C(deployed) or C(superseded)), never a
    C(failed) one unless O(allow_failed=true).
  - Idempotent. When the current revision is deployed and already has the target's chart, values
    and rendered manifest, nothing changes. Check mode and diff mode show what the rollback would
    change, per resource, with secrets redacted.
  - Before it rolls back, the module captures the revision being left (chart, values with secrets
    redacted, digests of the values and the manifest, status, description) and returns it as
    RV(left), so the caller and the audit log keep what was there.
  - A release stuck in C(pending-*) is rolled back once the pending revision is stale (see
    O(stale_pending_after)); before that the module fails with C(error.kind=release_locked).
author:
  - ai_mesh helm_engine maintainers (@ai-mesh)
extends_documentation_fragment:
  - ai_mesh.helm_engine.helm_engine
  - ai_mesh.helm_engine.helm_engine.helm
  - ai_mesh.helm_engine.helm_engine.results
  - ai_mesh.helm_engine.helm_engine.operation
  - ai_mesh.helm_engine.helm_engine.recovery
  - ai_mesh.helm_engine.attributes
  - ai_mesh.helm_engine.attributes.actiongroup
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  revision:
    description:
      - Roll back to this revision. Overrides O(target).
    type: int
  target:
    description:
      - Which revision to roll back to when O(revision) is not set.
      - V(last_good) is the newest revision that deployed successfully (the current one if it is
        deployed, so rolling back a healthy release changes nothing).
      - V(previous) is the revision just before the current one.
    type: str
    choices: [last_good, previous]
    default: last_good
  allow_failed:
    description: Allow the target to be a revision whose status is C(failed).
    type: bool
    default: false
seealso:
  - module: ai_mesh.helm_engine.helm_deploy
  - module: ai_mesh.helm_engine.helm_status
"""

EXAMPLES = r"""
- name: Roll back to the last revision that deployed successfully
  ai_mesh.helm_engine.helm_rollback:
    name: web
    namespace: web
    wait: true
    timeout: 2m
  register: rolled_back

- name: Roll back to revision 4, and show what that changes
  ai_mesh.helm_engine.helm_rollback:
    name: web
    namespace: web
    revision: 4
  diff: true

- name: Keep what the rollback left behind
  ansible.builtin.copy:
    dest: "/var/log/releases/web-{{ rolled_back.left.revision }}.json"
    content: "{{ rolled_back.left | to_nice_json }}"
  when: rolled_back.changed
"""

RETURN = r"""
action:
  description: V(rollback), or V(none) when the release already matches the target.
  returned: always
  type: str
from_revision:
  description: The revision that was current before the task.
  returned: success
  type: int
previous_revision:
  description:
    - The revision that was current before the task, as helm_deploy names it (the same as
      RV(from_revision)); also returned when the rollback failed, with the state it left in
      RV(release) and RV(revision).
  returned: always, once the release was read
  type: int
to_revision:
  description: The revision rolled back to.
  returned: success
  type: int
revision:
  description: The release's revision after the task (a rollback creates a new one).
  returned: success
  type: int
release:
  description: The release after the task (in check mode, as it is now); see M(ai_mesh.helm_engine.helm_deploy).
  returned: success
  type: dict
left:
  description:
    - The state of the revision being left, captured before the rollback. C(user_values) has
      secrets redacted; the digests identify the exact values and manifest.
  returned: success
  type: dict
  sample: {"revision": 5, "status": "failed", "chart": "web", "chart_version": "1.4.0", "app_version": "2.1",
           "description": "Upgrade \"web\" failed: context deadline exceeded", "updated": "2026-11-25T10:00:00Z",
           "user_values": {"replicaCount": 3, "auth": {"password": "<redacted>"}},
           "values_digest": "sha256:...", "manifest_digest": "sha256:..."}
changes:
  description: The resources the rollback changes (or would change).
  returned: success
  type: list
  elements: dict
reasons:
  description: Why the rollback changes the release.
  returned: success
  type: list
  elements: str
recovery:
  description: When the current revision was stuck in C(pending-*), what this rollback unblocked.
  returned: when the release was pending
  type: dict
duration:
  description: Seconds the module spent.
  returned: always
  type: float
commands:
  description: The helm commands run.
  returned: always
  type: list
  elements: str
helm_processes:
  description: How many helm processes the task started.
  returned: always
  type: int
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
    stderr: {description: "helm's stderr, secrets redacted.", type: str, returned: when helm failed}
    lock:
      description: With C(release_locked) because another run holds the release's lock, who holds it and since when.
      type: dict
      returned: when the release's lock is held by another run
      sample: {"lease": "helm-engine.web", "namespace": "web", "holder": "ci-7/pid-4242/1f2e3d4c", "operation": "helm_deploy",
               "since": "2026-12-02T08:00:00.123456Z", "renewed": "2026-12-02T08:01:40.000000Z", "duration_seconds": 360,
               "expires": "2026-12-02T08:07:40.000000Z", "expires_in_seconds": 342.1, "waited_seconds": 0}
    resources:
      description:
        - The resources that made the rollback's rollout fail, each with C(kind), C(name), C(namespace),
          C(reason), C(message), C(pod) and C(container) when a container failed, its recent Warning
          C(events) and, for a crash loop, the C(logs) tail; secrets redacted.
      type: list
      elements: dict
      returned: when O(fail_fast) stopped helm (C(kind=rollout_failed))
timeline:
  description:
    - While helm waited (O(fail_fast)), each change of a workload's state, with the seconds since
      the watch began, C(resource), C(state) (V(waiting), V(ready) or V(failing)) and a C(detail).
  returned: when helm waited on workloads
  type: list
  elements: dict
"""

import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import (
    OPERATION_ARG_SPEC,
    RECOVERY_ARG_SPEC,
    argument_spec,
    fail_fast_policy,
    recovery_policy,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import (
    EngineModule,
    Manager,
    TaskContext,
    run_manager,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    INVALID_ARGUMENTS,
    RELEASE_NOT_FOUND,
    REVISION_NOT_FOUND,
    EngineError,
    InputError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import RollbackSpec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._plan import plan_rollback
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._recovery import claim_stale
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import FAILED, UNINSTALLED, Release, last_good, latest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._outcome import record_failure
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rollout import rollout_monitor


class RollbackManager(Manager):
    lock_operation = "helm_rollback"

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        self.policy = recovery_policy(self.params, context.timeout)

    def validate(self) -> None:
        revision = self.params["revision"]
        if revision is not None and revision < 1:
            raise InputError(f"revision must be 1 or more, got {revision} (helm's 0, 'the previous one', is target=previous).", option="revision")
        if self.params["history_max"] is not None and self.params["history_max"] < 0:
            raise InputError(f"history_max must be 0 or more, got {self.params['history_max']}.", option="history_max")
        self.fail_fast = fail_fast_policy(self.params, waits=self.params["wait"])

    def prepare(self) -> None:
        self.context.detect_helm()

    def execute(self) -> dict[str, t.Any]:
        name, namespace = self.context.name, self.context.namespace
        history = [r for r in self.context.store.history(name, namespace) if r.status != UNINSTALLED]
        current = latest(history)
        if current is None:
            raise EngineError(RELEASE_NOT_FOUND, f"Release {namespace}/{name} does not exist: nothing to roll back.")
        # helm rollback does not refuse a pending release; only a stale one may be rolled back.
        history, recovery = claim_stale(self.context.store, history, self.policy, check_mode=self.check_mode)
        current = latest(history) or current
        if recovery:
            recovery["action"] = "rollback"
        target = self.choose_target(history, current)
        plan = plan_rollback(current, target)
        self.warn_if_pruned(history, target)
        result: dict[str, t.Any] = {
            "changed": plan.changed,
            "action": plan.action,
            "reasons": plan.reasons if plan.changed else [],
            "changes": plan.summary(),
            "from_revision": current.revision,
            "previous_revision": current.revision,
            "to_revision": target.revision,
            "revision": current.revision,
            "release": current.summary(),
            "left": self.preserved_state(current),
        }
        if recovery:
            recovery["performed"] = plan.changed and not self.check_mode
            result["recovery"] = recovery
        if self.context.diff:
            result["diff"] = plan.diff(self.context.redactor, f"{namespace}/{name}")
        if not plan.changed or self.check_mode:
            return result
        timeout = self.context.timeout
        # The rollout to watch is the target's: a rollback deploys its manifest again.
        watcher = self.context.rollout_watcher(target.manifest, self.fail_fast)
        try:
            self.context.helm.rollback(
                RollbackSpec(
                    release=name,
                    namespace=namespace,
                    revision=target.revision,
                    wait=self.params["wait"],
                    wait_strategy=self.params["wait_strategy"],
                    timeout=validate.go_duration(timeout) if timeout is not None else None,
                    cleanup_on_fail=self.params["cleanup_on_fail"],
                    force=self.params["force"],
                    disable_hooks=self.params["disable_hook"],
                    history_max=self.params["history_max"],
                ),
                monitor=rollout_monitor(watcher),
            )
        except EngineError as exc:
            record_failure(exc, self.context.store, name, namespace, before=current, recovered=bool(recovery),
                           timeline=watcher.timeline)
            raise
        if watcher.timeline:
            result["timeline"] = watcher.timeline
        after = latest(self.context.store.history(name, namespace))
        if after is not None:
            result["release"] = after.summary()
            result["revision"] = after.revision
        return result

    def choose_target(self, history: list[Release], current: Release) -> Release:
        by_revision = {r.revision: r for r in history}
        if self.params["revision"] is not None:
            target = by_revision.get(self.params["revision"])
            if target is None:
                raise EngineError(
                    REVISION_NOT_FOUND,
                    f"Revision {self.params['revision']} of {current.namespace}/{current.name} is not in its history "
                    f"(revisions kept: {sorted(by_revision)}).",
                )
        elif self.params["target"] == "previous":
            target = by_revision.get(current.revision - 1)
            if target is None:
                raise EngineError(REVISION_NOT_FOUND, f"Release {current.namespace}/{current.name} has no revision before {current.revision}.")
        else:
            target = last_good(history)
            if target is None:
                raise EngineError(
                    REVISION_NOT_FOUND,
                    f"Release {current.namespace}/{current.name} has no revision that deployed successfully to roll back to.",
                )
        if target.status == FAILED and not self.params["allow_failed"]:
            raise EngineError(
                INVALID_ARGUMENTS,
                f"Revision {target.revision} failed; rolling back to a failed revision needs allow_failed=true.",
            )
        return target

    def warn_if_pruned(self, history: list[Release], target: Release) -> None:
        history_max = self.params["history_max"]
        if not history_max:
            return
        newest = max(r.revision for r in history) + 1
        if target.revision <= newest - history_max:
            self.context.warn(
                f"history_max={history_max}: revision {target.revision} will be pruned from the history after this "
                f"rollback (its content lives on in revision {newest})."
            )

    def preserved_state(self, release: Release) -> dict[str, t.Any]:
        return dict(
            release.summary(),
            user_values=self.context.redactor.redact_values(release.config or {}),
            values_digest=release.values_digest(),
            manifest_digest=release.manifest_digest(),
        )


def main() -> None:
    spec = argument_spec(
        revision={"type": "int"},
        target={"type": "str", "choices": ["last_good", "previous"], "default": "last_good"},
        allow_failed={"type": "bool", "default": False},
        **OPERATION_ARG_SPEC,
        **RECOVERY_ARG_SPEC,
    )
    module = EngineModule(argument_spec=spec, supports_check_mode=True)
    run_manager(module, RollbackManager, sensitive_paths=module.params["sensitive_values"])


if __name__ == "__main__":
    main()
