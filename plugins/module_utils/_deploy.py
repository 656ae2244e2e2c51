# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""One release made to match a chart and values, or uninstalled: the engine of helm_deploy, and of
each release helm_releases deploys (same lock, no-op decision, drift, fail-fast, recovery and
cleanup). It works through a task context (see _task.py): the task's own, or one per release.

Decides with one server-side dry run, then acts with the same argv minus --dry-run (and without
validating again what the dry run validated). The dry run is skipped when the deployed revision
carries the digest of today's render inputs (see _inputs.py): rendering again would give what it
holds; and for a real first install without --diff, whose plan is "install" whatever renders
(helm validates before it writes anything; the changes are read from what it recorded).
"""

from __future__ import annotations

import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import (
    deploy_spec,
    drift_policy,
    fail_fast_policy,
    recovery_policy,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import Manager, TaskContext
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    EngineError,
    InputError,
    KubeError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import DEFAULT_HELM_TIMEOUT, DeploySpec, UninstallSpec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._plan import (
    CORRECT_DRIFT,
    INSTALL,
    NONE,
    UPGRADE,
    Plan,
    plan_install,
    plan_uninstall,
    plan_upgrade,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._recovery import claim_stale, ensure_unlocked, repair_failed
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._inputs import INPUTS_LABEL, inputs_digest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import DEPLOYED, UNINSTALLED, Release, latest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._cleanup import (
    Cleanup,
    Leftover,
    Leftovers,
    delete,
    mark_created_namespace,
    wait_gone,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import parse_manifest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._resources import wait_until_ready
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._drift import Drift, DriftDetector, correct, correction_plan
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._drift import summary as drift_summary
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._outcome import record_failure
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rollout import rollout_monitor


class DeployManager(Manager):
    """helm_deploy's phases for one release (see the module docstring)."""

    lock_operation = "helm_deploy"

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        self.helm = context.helm
        self.deploy_spec: DeploySpec | None = None
        self.policy = recovery_policy(self.params, context.timeout)
        self.drift = drift_policy(self.params)
        self.rendered = False
        # The drift of the deployed revision, by the (revision, status) it was checked against.
        self._drift: tuple[tuple[int, str], list[Drift]] | None = None
        # The last render, and the (revision, status) it was compared with: the run under the
        # lock reuses it when the release has not moved since the decision.
        self._render: tuple[tuple[int, str] | None, Release] | None = None

    # ---- phases ------------------------------------------------------------------------

    def validate(self) -> None:
        p = self.params
        if p["state"] == "present":
            self.deploy_spec = self.spec()
            self.fail_fast = fail_fast_policy(p, waits=self.deploy_spec.wait or self.deploy_spec.atomic)
        for option in ("history_max",):
            if p[option] is not None and p[option] < 0:
                raise InputError(f"{option} must be 0 or more, got {p[option]}.", option=option)

    def prepare(self) -> None:
        spec = self.deploy_spec
        if spec is None:
            return
        # Detect helm now, and build the argv once, so an unsupported helm or a
        # version-dependent option is refused before any recovery changes the release.
        self.context.detect_helm()
        if spec.chart.is_local():  # only a local chart can be pinned; spare the request otherwise
            spec.inputs_digest = inputs_digest(spec, spec.chart.positional(), helm_version=self.helm.version.raw,
                                               kube_version=self.context.kube.server_version())
        self.helm.upgrade_argv(spec, dry_run=True)
        if self.params["update_repo_cache"]:
            self.helm.repo_update()

    def settled_without_lock(self) -> dict[str, t.Any] | None:
        """The result when nothing is to be done, decided without taking the lock (a no-op
        changes nothing, so it cannot race); None when the locked run must decide."""
        history = self.context.store.history(self.context.name, self.context.namespace)
        current = latest(history)
        if self.deploy_spec is None:
            return self.absent(history) if not plan_uninstall(current).changed else None
        if current is None or current.status != DEPLOYED or any(r.is_pending for r in history):
            return None
        desired = self.desired_release(self.deploy_spec, current)
        plan = plan_upgrade(current, desired)
        drift = self.live_drift(current)
        if plan.changed or (drift and self.drift.mode == "correct"):
            return None
        self.record_inputs(current)
        return self.result(plan, current, desired=desired, drift=drift)

    def live_drift(self, current: Release | None) -> list[Drift]:
        """Where the live objects depart from the deployed revision (none checked with
        drift=ignore, or for a release that is not deployed)."""
        if not self.drift.checks or current is None or current.status != DEPLOYED:
            return []
        seen = (current.revision, current.status)
        if self._drift is None or self._drift[0] != seen:
            detector = DriftDetector(self.context.kube, self.context.namespace, self.drift.rules)
            self._drift = (seen, detector.detect(current.manifest))
        return self._drift[1]

    def takes_fields_back(self, spec: DeploySpec, current: Release | None) -> bool:
        """drift=correct on helm 4: the upgrade of a release applied server-side forces the
        conflicts, so fields another manager took (kubectl scale, edit, apply --server-side)
        come back to the chart instead of failing the upgrade. Decided before the render, so
        the dry run and the real run carry the same flag."""
        if self.drift.mode != "correct" or spec.force or current is None or self.helm.major < 4:
            return False
        if spec.server_side in ("true", "false"):
            return spec.server_side == "true"
        return current.raw.get("apply_method") == "ssa"

    def bind_spec(self, spec: DeploySpec, current: Release | None) -> None:
        """The flags that depend on the release as it is, the same for the dry and the real run."""
        spec.drop_inputs_label = not spec.inputs_digest and current is not None and INPUTS_LABEL in current.labels
        spec.force_conflicts = bool(self.params.get("force_conflicts")) or self.takes_fields_back(spec, current)

    def installs_without_render(self, current: Release | None) -> bool:
        """A first install in a real run without --diff: the plan is "install" whatever the
        chart renders, and helm validates what it renders (OpenAPI schemas included) before it
        writes anything, so a dry run first would only do helm's work twice. The changes are
        read from the revision helm records."""
        return current is None and not self.check_mode and not self.context.diff

    def desired_release(self, spec: DeploySpec, current: Release | None) -> Release:
        """What the deploy would make the release: the deployed revision itself when its
        stored digest matches today's inputs, else helm's server-side render."""
        self.bind_spec(spec, current)
        if current is not None and current.status == DEPLOYED and spec.inputs_digest \
                and current.labels.get(INPUTS_LABEL) == spec.inputs_digest:
            return current
        seen = (current.revision, current.status) if current is not None else None
        if self._render is None or self._render[0] != seen:
            self._render = (seen, self.context.store.decode(self.helm.render(spec)))
            self.rendered = True
        return self._render[1]

    def record_inputs(self, current: Release) -> None:
        """After a render proved that today's inputs give the deployed revision, store their
        digest on it, so the next run skips the render. Only a label of helm's Secret changes
        (never in check mode); a refusal (no patch on Secrets) only costs that speed."""
        digest = self.deploy_spec.inputs_digest if self.deploy_spec else None
        if self.check_mode or not digest or current.labels.get(INPUTS_LABEL) == digest:
            return
        try:
            self.context.store.label(current, INPUTS_LABEL, digest)
        except KubeError:
            pass

    def execute(self) -> dict[str, t.Any]:
        history = self.context.store.history(self.context.name, self.context.namespace)
        if self.deploy_spec is None:
            return self.absent(history)
        return self.present(self.deploy_spec, history)

    # ---- state=present -----------------------------------------------------------------

    def spec(self) -> DeploySpec:
        return deploy_spec(self.params, self.context.name, self.context.namespace, self.context.timeout)

    def present(self, spec: DeploySpec, history: list[Release]) -> dict[str, t.Any]:
        recovery = ensure_unlocked(self.context.store, self.helm, history, self.policy, check_mode=self.check_mode)
        if recovery and self.check_mode:
            # helm refuses even a dry run on a pending release: report the recovery and the
            # operation that would follow it, without rendering.
            action = INSTALL if recovery["action"] == "uninstall" else UPGRADE
            plan = Plan(action=action, reasons=[f"stale {recovery['stuck_status']} would be recovered by {recovery['action']}"])
            return dict(self.result(plan, latest(history)), recovery=recovery)
        if recovery:
            history = self.context.store.history(spec.release, spec.namespace)
        current = latest(history)
        if current is not None and current.status == UNINSTALLED:
            current = None
        if self.installs_without_render(current):
            return self.install_without_render(spec, recovery)
        desired = self.desired_release(spec, current)
        plan = plan_install(desired) if current is None else plan_upgrade(current, desired)
        drift = self.live_drift(current)
        correcting = bool(drift) and self.drift.mode == "correct"
        if current is not None and not plan.changed and correcting:
            plan = correction_plan(drift, current.config or {})
        result = self.result(plan, current, desired=desired, drift=drift)
        if recovery:
            result["recovery"] = recovery
            result["changed"] = True  # the recovery itself changed the release
        if not plan.changed:
            if current is not None and not recovery:
                self.record_inputs(current)
            return result
        repair = repair_failed(self.helm, history, check_mode=self.check_mode)
        if repair:
            result["recovery"] = repair
        if self.check_mode:
            return result
        if plan.action == CORRECT_DRIFT:
            return self.correct_drift(drift, current, result)
        # Whether helm is about to create the namespace: if so it is marked as this release's, so a
        # later uninstall's cleanup may delete it (one read, on a first install only).
        creates_namespace = spec.create_namespace and current is None and not self.context.kube.namespace_exists(spec.namespace)
        watcher = self.context.rollout_watcher(desired.manifest, self.fail_fast)
        try:
            deployed = self.context.store.decode(self.helm.upgrade(spec, monitor=rollout_monitor(watcher)))
        except EngineError as exc:
            # What was attempted, for the caller and the audit log, next to what it left.
            record_failure(exc, self.context.store, spec.release, spec.namespace, before=current,
                           recovered=bool(recovery or repair), atomic=spec.atomic, timeline=watcher.timeline,
                           attempted={"action": plan.action, "reasons": plan.reasons, "changes": plan.summary()})
            raise
        self.add_deployed(result, deployed, watcher.timeline, spec if creates_namespace else None)
        if correcting:
            # An upgrade puts back what helm patches; what it cannot (a custom resource helm
            # 3 patches two-way) is put back here, from the revision just deployed.
            leftover = DriftDetector(self.context.kube, self.context.namespace, self.drift.rules).detect(deployed.manifest)
            correct(self.context.kube, spec.release, spec.namespace, leftover)
        return result

    def install_without_render(self, spec: DeploySpec, recovery: dict[str, t.Any] | None) -> dict[str, t.Any]:
        """A first install (see installs_without_render): one helm process, validated by helm
        itself; the fail-fast watcher learns the workloads from the revision helm records."""
        self.bind_spec(spec, None)
        creates_namespace = spec.create_namespace and not self.context.kube.namespace_exists(spec.namespace)

        def recorded_manifest() -> str | None:
            release = latest(self.context.store.history(spec.release, spec.namespace))
            return release.manifest if release is not None and release.status != UNINSTALLED else None

        watcher = self.context.rollout_watcher(recorded_manifest, self.fail_fast)
        try:
            deployed = self.context.store.decode(self.helm.upgrade(spec, monitor=rollout_monitor(watcher), validated=False))
        except EngineError as exc:
            record_failure(exc, self.context.store, spec.release, spec.namespace, before=None,
                           recovered=bool(recovery), atomic=spec.atomic, timeline=watcher.timeline,
                           attempted={"action": INSTALL, "reasons": ["release does not exist"], "changes": []})
            raise
        result = self.result(plan_install(deployed), None, desired=deployed)
        if recovery:
            result["recovery"] = recovery
        self.add_deployed(result, deployed, watcher.timeline, spec if creates_namespace else None)
        return result

    def add_deployed(self, result: dict[str, t.Any], deployed: Release, timeline: list[dict[str, t.Any]],
                     created_for: DeploySpec | None) -> None:
        """The revision helm deployed, into the result; the namespace helm created for
        ``created_for`` marked as that release's (so cleanup=namespace may delete it later)."""
        if timeline:
            result["timeline"] = timeline
        result["release"] = deployed.summary()
        result["status"] = self.core_status(deployed)
        result["hooks"] = [h.summary() for h in deployed.hooks if h.phase]
        if created_for is None:
            return
        spec = created_for
        try:
            mark_created_namespace(self.context.kube, spec.namespace, spec.release)
        except KubeError as exc:
            self.context.warn(f"Namespace {spec.namespace} was created but could not be marked as this release's "
                              f"({exc.msg}): cleanup=namespace will leave it.")

    def correct_drift(self, drift: list[Drift], current: Release, result: dict[str, t.Any]) -> dict[str, t.Any]:
        """Puts the deployed revision's objects back (no helm process, no hooks, no new
        revision); with wait, until they are ready again."""
        try:
            correct(self.context.kube, current.name, current.namespace, drift)
            if self.params["wait"]:
                timeline = wait_until_ready(self.context.kube, current, self.context.timeout or DEFAULT_HELM_TIMEOUT)
                if timeline:
                    result["timeline"] = timeline
        except EngineError as exc:
            exc.extra.setdefault("changed", True)  # every drifted object was put back; it did not become ready
            exc.extra.update(action=CORRECT_DRIFT, drift=result["drift"], previous_revision=current.revision,
                             release=current.summary())
            raise
        return result

    # ---- state=absent ------------------------------------------------------------------

    def absent(self, history: list[Release]) -> dict[str, t.Any]:
        """Uninstalls, then reports every leftover and deletes those ``cleanup`` names; check
        mode reports what would be left and deleted, from the objects present now."""
        # A pending revision another helm may still work on is refused; a stale one is marked
        # failed first (helm uninstalls a failed release as any other).
        history, recovery = claim_stale(self.context.store, history, self.policy, check_mode=self.check_mode)
        current = latest(history)
        plan = plan_uninstall(current)
        result = self.result(plan, current)
        result.update(left_behind=[], cleaned=[])
        if recovery:
            result["recovery"] = dict(recovery, action="uninstall", performed=not self.check_mode)
        if not plan.changed:
            return result
        if current is None:
            raise AssertionError("an uninstall that changes something has a current release")
        keep_history = self.params["keep_history"] or not self.params["purge"]
        cleanup = Cleanup(self.context.kube, current, self.params["cleanup"], keep_history=keep_history)
        if self.check_mode:
            delete_now, leave = cleanup.split(Leftovers(self.context.kube, current).find())
            result.update(left_behind=[i.as_dict() for i in leave], cleaned=[i.as_dict() for i in delete_now])
            return result
        timeout = self.context.timeout
        spec = UninstallSpec(
            release=current.name,
            namespace=current.namespace,
            wait=self.params["wait"],
            timeout=validate.go_duration(timeout) if timeout is not None else None,
            keep_history=keep_history,
            disable_hooks=self.params["disable_hook"],
        )
        self.helm.uninstall(spec)
        result.pop("release", None)
        result.pop("status", None)
        delete_now, leave = cleanup.split(Leftovers(self.context.kube, current).find())
        result.update(left_behind=[i.as_dict() for i in leave], cleaned=[])
        try:
            for item in delete_now:
                delete(self.context.kube, item)
                result["cleaned"].append(item.as_dict())
            if self.params["wait"]:
                uninstalled = [Leftover(a, k, n, name, "uninstalled", "release")
                               for (a, k, n, name) in parse_manifest(current.manifest, current.namespace)]
                kept = {(i.kind, i.name) for i in leave}
                wait_gone(self.context.kube, [i for i in uninstalled if (i.kind, i.name) not in kept] + delete_now,
                          timeout or DEFAULT_HELM_TIMEOUT)
        except EngineError as exc:
            exc.extra.update(changed=True, action=plan.action, left_behind=result["left_behind"], cleaned=result["cleaned"])
            raise
        return result

    # ---- results -----------------------------------------------------------------------

    def core_status(self, release: Release) -> dict[str, t.Any]:
        return release.core_status(self.context.redactor.redact_values(release.config or {}))

    def result(self, plan: Plan, current: Release | None, *, desired: Release | None = None,
               drift: list[Drift] | None = None) -> dict[str, t.Any]:
        if drift and self.drift.mode == "detect":
            self.context.warn(f"Release {self.context.namespace}/{self.context.name} has drifted from revision "
                              f"{current.revision if current else '?'}: {drift_summary(drift)}. drift=detect changes nothing.")
        result: dict[str, t.Any] = {
            "changed": plan.changed,
            "action": plan.action,
            "reasons": plan.reasons if plan.action != NONE else [],
            "changes": plan.summary(),
            "previous_revision": current.revision if current else None,
            "hooks": [],
        }
        if current is not None:
            result["release"] = current.summary()
            result["status"] = self.core_status(current)
        if desired is not None:
            result["values_digest"] = desired.values_digest()
        if self.deploy_spec is not None:
            result["rendered"] = self.rendered
            result["inputs_digest"] = self.deploy_spec.inputs_digest
            result["drift"] = [item.as_dict() for item in drift or []]
        if self.context.diff:
            label = f"{self.context.namespace}/{self.context.name}"
            result["diff"] = plan.diff(self.context.redactor, label)
        return result
