#!/usr/bin/python
# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_deploy
short_description: Install, upgrade or uninstall a Helm release, idempotently, with exact check mode and diff
version_added: 0.1.0
description:
  - Makes a Helm release match a chart and values, with helm 3 (3.13 or later) or helm 4.
  - The change decision compares the release stored in the cluster with the release helm renders
    for this task (a server-side dry run). It compares chart name and version, app version, the user-supplied
    values, every rendered resource and every hook. An edited template of a local chart is a
    change even when the chart version is the same; a release in C(failed) state is upgraded.
  - Check mode and diff mode use that same rendering, so they report exactly what the real run
    does, for new installs too, without any helm plugin.
  - A no-op run starts two helm processes (C(helm version) and the dry run); the release is read
    from the cluster with the Kubernetes client.
  - Values in O(release_values) reach helm through a temporary file with mode C(0600), never the
    command line. Values under keys that look secret (password, token, secret, key, ...) or listed
    in O(sensitive_values) are redacted from results, diffs and the echoed commands.
author:
  - ai_mesh helm_engine maintainers (@ai-mesh)
extends_documentation_fragment:
  - ai_mesh.helm_engine.helm_engine
  - ai_mesh.helm_engine.helm_engine.helm
  - ai_mesh.helm_engine.helm_engine.chart
  - ai_mesh.helm_engine.helm_engine.results
  - ai_mesh.helm_engine.helm_engine.operation
  - ai_mesh.helm_engine.helm_engine.recovery
  - ai_mesh.helm_engine.helm_engine.drift
  - ai_mesh.helm_engine.attributes
  - ai_mesh.helm_engine.attributes.actiongroup
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  state:
    description:
      - V(present) installs the release or upgrades it when anything differs; V(absent) uninstalls it.
    type: str
    choices: [present, absent]
    default: present
    aliases: [release_state]
  wait_for_jobs:
    description: With O(wait), also wait for the release's Jobs to complete.
    type: bool
    default: false
  atomic:
    description:
      - Roll the release back (or remove a new install) when the operation fails. Implies O(wait).
      - C(--atomic) on helm 3, C(--rollback-on-failure) on helm 4.
    type: bool
    default: false
  reset_values:
    description: On upgrade, start from the chart's default values (helm C(--reset-values)).
    type: bool
    default: true
  reuse_values:
    description: On upgrade, start from the release's last values (helm C(--reuse-values)); wins over O(reset_values).
    type: bool
  reset_then_reuse_values:
    description:
      - On upgrade, start from the chart's defaults, then apply the release's last values, then the
        new ones (helm C(--reset-then-reuse-values)). Mutually exclusive with O(reuse_values).
    type: bool
    default: false
  update_repo_cache:
    description:
      - Run C(helm repo update) before deploying, so repository charts resolve to their newest
        index. Only helm's cache on the host that runs the module changes; the task still reports
        changed only when the release changes.
    type: bool
    default: false
  replace:
    description:
      - Accepted for kubernetes.core playbooks. Reusing the name of a release uninstalled with
        O(keep_history) needs no flag here, because C(helm upgrade --install) reinstalls it.
        Mutually exclusive with O(history_max), as in kubernetes.core.
    type: bool
    default: false
  wait_timeout:
    description:
      - kubernetes.core's older name for O(timeout); mutually exclusive with it.
    type: raw
  description:
    description: A description stored with the new revision.
    type: str
  server_side:
    description:
      - helm 4 only. V(true) applies with server-side apply, V(false) with client-side, V(auto) keeps
        what the release used. helm 4's own default applies when unset.
    type: str
    choices: ['true', 'false', auto]
  force_conflicts:
    description:
      - helm 4 only. With server-side apply, take over fields other managers own.
      - O(drift=correct) sets it for the upgrade of a release applied server-side.
    type: bool
    default: false
  drift:
    description:
      - What to do when the live objects of the deployed release depart from what its revision
        declares (an object deleted, a field changed with C(kubectl scale), C(edit), C(patch) or
        C(apply --server-side)). Only the fields the chart sets count; server defaults, status and
        fields the chart leaves out (replicas an autoscaler owns) are never drift. A difference the
        API server would normalize away (C(0.5) stored as C(500m)) is proved with a server-side
        apply dry run of that object before it counts.
      - V(correct) puts the declared state back. With nothing else to change, the drifted
        objects are applied again server-side as helm's field manager (C(helm)), taking the
        fields back from whoever changed them, and missing objects are created. No helm process,
        no hooks, no new revision; RV(action) is V(correct_drift); with O(wait), until they are
        ready. With an upgrade to make, helm 4 upgrades a server-side release with
        C(--force-conflicts), and what helm did not put back is applied after it. Check mode
        reports it and changes nothing.
      - V(detect) reports the drift in RV(drift) with a warning and changes nothing for it.
      - V(ignore) does not look at the live objects (one read per kind less).
    type: str
    choices: [correct, detect, ignore]
    default: correct
  cleanup:
    description:
      - With O(state=absent), what to delete after the uninstall, of what helm leaves (see RV(left_behind)).
      - V(hooks) deletes hook objects whose C(helm.sh/hook-delete-policy) did not fire and the pods of
        C(helm test); V(volume_claims) the claims the release's StatefulSets made from their
        C(volumeClaimTemplates) and claims labelled C(app.kubernetes.io/instance=<release>).
      - V(namespace) deletes the namespace only when O(create_namespace) created it for this release
        (it carries the annotation C(helm-engine.ai-mesh.io/created-for)) and nothing lives in it but
        the default ServiceAccount and the root CA ConfigMap; otherwise it stays, in RV(left_behind)
        with the reason.
      - Resources kept by C(helm.sh/resource-policy=keep) and CRDs are never deleted.
      - With O(wait), the task waits until everything uninstalled and cleaned is gone, finalizers
        included, within O(timeout); past it the task fails with C(error.kind=timeout) naming what remains.
      - Check mode reports what would be left and deleted, from the objects present now, and changes nothing.
    type: list
    elements: str
    choices: [hooks, volume_claims, namespace]
    default: []
  keep_history:
    description: With O(state=absent), keep the release history (helm C(uninstall --keep-history)).
    type: bool
    default: false
  purge:
    description:
      - kubernetes.core's inverse of O(keep_history); V(false) keeps the history.
    type: bool
    default: true
seealso:
  - module: ai_mesh.helm_engine.helm_rollback
  - module: ai_mesh.helm_engine.helm_status
"""

EXAMPLES = r"""
- name: Deploy the web service from a local chart and wait for it to be ready
  ai_mesh.helm_engine.helm_deploy:
    name: web
    namespace: web
    create_namespace: true
    chart_ref: ./charts/web
    release_values:
      replicaCount: 3
      auth:
        password: "{{ vault_web_password }}"   # redacted from results and diffs
    wait: true
    timeout: 3m

- name: Upgrade from a repository, rolling back by itself if the new pods never become ready
  ai_mesh.helm_engine.helm_deploy:
    name: cache
    namespace: cache
    chart_ref: redis
    chart_repo_url: https://charts.example.org
    chart_version: 19.6.4
    values_files:
      - files/cache-base.yaml
      - files/cache-prod.yaml
    set_values:
      - value: image.tag=7.4.1
        value_type: string
    atomic: true
    timeout: 5m

- name: Install from an OCI registry; the password reaches helm in a 0600 file, never argv
  ai_mesh.helm_engine.helm_deploy:
    name: web
    namespace: web
    chart_ref: oci://registry.example.org/charts/web
    chart_version: "~1.4.0"
    chart_repo_username: deploy
    chart_repo_password: "{{ vault_registry_token }}"
    chart_ca_cert: /etc/pki/registry-ca.crt

- name: Preview what an upgrade would change, without changing anything
  ai_mesh.helm_engine.helm_deploy:
    name: web
    namespace: web
    chart_ref: ./charts/web
  check_mode: true
  diff: true
  register: preview

- name: Remove the release and wait for its resources to go
  ai_mesh.helm_engine.helm_deploy:
    name: web
    namespace: web
    state: absent
    wait: true
"""

RETURN = r"""
action:
  description: What the task did, or would do in check mode.
  returned: always
  type: str
  sample: upgrade
  choices: [install, upgrade, uninstall, correct_drift, none]
reasons:
  description: Why the release was (or would be) changed.
  returned: success
  type: list
  elements: str
  sample: ["values changed", "1 resource(s) changed"]
release:
  description: The release after the task (in check mode, as it is now). Absent when there is none.
  returned: when a release exists
  type: dict
  contains:
    name: {description: Release name., type: str, returned: always}
    namespace: {description: Release namespace., type: str, returned: always}
    revision: {description: Revision number., type: int, returned: always}
    status: {description: helm status of the revision., type: str, returned: always, sample: deployed}
    chart: {description: Chart name., type: str, returned: always}
    chart_version: {description: Chart version., type: str, returned: always}
    app_version: {description: The chart's appVersion., type: str, returned: always}
    updated: {description: When the revision was deployed., type: str, returned: always}
    description: {description: helm's description of the revision., type: str, returned: always}
previous_revision:
  description: The revision the release had before the task; null when it did not exist.
  returned: success
  type: int
changes:
  description: The resources that changed (or would change), without their content.
  returned: success
  type: list
  elements: dict
  sample: [{"kind": "Deployment", "name": "web", "namespace": "web", "api_version": "apps/v1", "change": "changed"}]
hooks:
  description: The chart hooks that ran during the operation, with their result.
  returned: success
  type: list
  elements: dict
  sample: [{"name": "web-migrate", "kind": "Job", "events": ["pre-upgrade"], "phase": "Succeeded"}]
left_behind:
  description:
    - After an uninstall (in check mode, after the uninstall it would run), what is left of the release
      and why, each with C(api_version), C(kind), C(name), C(namespace) (null when cluster-scoped) and
      C(reason). Resources kept by C(helm.sh/resource-policy=keep); hook objects helm did not delete;
      volume claims of the release's StatefulSets and claims labelled with the release; CRDs from the
      chart's C(crds/); the namespace when O(create_namespace) created it for this release.
    - What O(cleanup) deleted is in RV(cleaned) instead.
  returned: when O(state=absent)
  type: list
  elements: dict
  sample:
    - {api_version: batch/v1, kind: Job, namespace: web, name: web-migrate,
       reason: "hook (pre-install) helm does not track; delete policy: none"}
    - {api_version: v1, kind: PersistentVolumeClaim, namespace: web, name: data-web-db-0,
       reason: volume claim of StatefulSet web-db (volumeClaimTemplates)}
cleaned:
  description: What O(cleanup) deleted (or, in check mode, would delete), in the shape of RV(left_behind).
  returned: when O(state=absent)
  type: list
  elements: dict
duration:
  description: Seconds the module spent.
  returned: always
  type: float
commands:
  description: The helm commands run, with secrets redacted.
  returned: always
  type: list
  elements: str
helm_processes:
  description: How many helm processes the task started.
  returned: always
  type: int
helm_version:
  description: The helm version that ran.
  returned: when helm ran
  type: str
  sample: v4.3.1
recovery:
  description: When the release was stuck in C(pending-*) and stale, what was done to unlock it first.
  returned: when a stuck release was recovered
  type: dict
  sample: {"stuck_revision": 3, "stuck_status": "pending-upgrade", "action": "rollback", "to_revision": 2, "performed": true}
status:
  description:
    - The release in kubernetes.core's shape (as its C(helm) and C(helm_info) return it), so
      playbooks written for them read the same keys. C(values) has secrets redacted.
  returned: when a release exists after the task
  type: dict
  contains:
    name: {description: Release name., type: str, returned: always}
    namespace: {description: Release namespace., type: str, returned: always}
    revision: {description: 'Revision number, as a string (as C(helm list) prints it).', type: str, returned: always}
    status: {description: helm status of the revision., type: str, returned: always, sample: deployed}
    chart: {description: Chart name and version., type: str, returned: always, sample: web-1.4.0}
    app_version: {description: The chart's appVersion., type: str, returned: always}
    updated: {description: When the revision was deployed., type: str, returned: always}
    values: {description: 'The user-supplied values, secrets redacted.', type: dict, returned: always}
    release_values: {description: The same as C(values) (kubernetes.core 6.3+)., type: dict, returned: always}
values_digest:
  description: sha256 of the canonical JSON of the user-supplied values the release has (or would have) after the task.
  returned: with O(state=present)
  type: str
  sample: "sha256:9f86d08..."
drift:
  description:
    - The objects of the deployed revision whose live state departs from it, found before the
      task changed anything (empty with O(drift=ignore)). C(reason) is V(missing) or V(modified);
      C(paths) are JSON pointers into the object as the chart renders it. See O(drift).
  returned: with O(state=present)
  type: list
  elements: dict
  sample:
    - {api_version: apps/v1, kind: Deployment, namespace: web, name: web, reason: modified, paths: [/spec/replicas]}
    - {api_version: v1, kind: Service, namespace: web, name: web, reason: missing, paths: []}
rendered:
  description:
    - Whether helm rendered the chart (a server-side dry run) to decide. V(false) when the deployed
      revision carries the digest of this task's render inputs (RV(inputs_digest)), so a render
      would give what is deployed.
  returned: with O(state=present)
  type: bool
  sample: false
inputs_digest:
  description:
    - Digest of everything the render depends on (every file of the chart, every values source, the
      options that change what renders, the helm and Kubernetes versions), stored as the label
      C(helm-engine.ai-mesh.io/inputs) of the revision's storage Secret.
    - V(null) when the inputs cannot be pinned and the chart is always rendered. That is the case for a
      chart from a repository or registry, O(dependency_update), O(post_renderer), O(reuse_values),
      O(reset_then_reuse_values), a C(file) item of O(set_values), and templates that read the live
      cluster (C(lookup), C(.Capabilities.APIVersions)).
  returned: with O(state=present)
  type: str
  sample: 3f1c0a9e4b7d2c8e1f0a6b5d4c3e2f1a0b9c8d7e
timeline:
  description:
    - While helm waited (O(fail_fast)), each change of a workload's state, with the seconds since
      the watch began, C(resource) (C(Kind/name)), C(state) (V(waiting), V(ready) or V(failing)), a C(detail)
      and C(seconds_left) of helm's O(timeout).
  returned: when helm waited on workloads
  type: list
  elements: dict
  sample: [{"seconds": 0.0, "resource": "Deployment/web", "state": "waiting", "detail": "1/2 ready, 1 updated"}]
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
        - The resources that made the rollout fail, each with C(kind), C(name), C(namespace), C(reason)
          (C(CrashLoopBackOff), C(ImagePullBackOff), C(Unschedulable), C(BackoffLimitExceeded),
          C(ProgressDeadlineExceeded) and the like), C(message), C(pod) and C(container) when a
          container failed, its recent Warning C(events) and, for a crash loop, the C(logs) tail.
        - Secrets are redacted from events and logs.
      type: list
      elements: dict
      returned: when O(fail_fast) stopped helm (C(kind=rollout_failed))
  sample: {"kind": "timeout", "message": "UPGRADE FAILED: context deadline exceeded", "stderr": "..."}
"""

import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import (
    CHART_ARG_SPEC,
    DRIFT_IGNORE_ARG_SPEC,
    OPERATION_ARG_SPEC,
    RECOVERY_ARG_SPEC,
    argument_spec,
    deploy_spec,
    drift_policy,
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
    CLEANUP_CHOICES,
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
    """Decides with one server-side dry run, then acts with the same argv minus --dry-run (and
    without validating again what the dry run validated).
    The dry run is skipped when the deployed revision carries the digest of today's render
    inputs (see _inputs.py): rendering again would give what it holds."""

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

    def desired_release(self, spec: DeploySpec, current: Release | None) -> Release:
        """What the deploy would make the release: the deployed revision itself when its
        stored digest matches today's inputs, else helm's server-side render."""
        spec.drop_inputs_label = not spec.inputs_digest and current is not None and INPUTS_LABEL in current.labels
        spec.force_conflicts = bool(self.params.get("force_conflicts")) or self.takes_fields_back(spec, current)
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
        if watcher.timeline:
            result["timeline"] = watcher.timeline
        result["release"] = deployed.summary()
        result["status"] = self.core_status(deployed)
        result["hooks"] = [h.summary() for h in deployed.hooks if h.phase]
        if creates_namespace:
            try:
                mark_created_namespace(self.context.kube, spec.namespace, spec.release)
            except KubeError as exc:
                self.module.warn(f"Namespace {spec.namespace} was created but could not be marked as this release's "
                                 f"({exc.msg}): cleanup=namespace will leave it.")
        if correcting:
            # An upgrade puts back what helm patches; what it cannot (a custom resource helm
            # 3 patches two-way) is put back here, from the revision just deployed.
            leftover = DriftDetector(self.context.kube, self.context.namespace, self.drift.rules).detect(deployed.manifest)
            correct(self.context.kube, spec.release, spec.namespace, leftover)
        return result

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
            self.module.warn(f"Release {self.context.namespace}/{self.context.name} has drifted from revision "
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
        if self.module._diff:
            label = f"{self.context.namespace}/{self.context.name}"
            result["diff"] = plan.diff(self.context.redactor, label)
        return result


def main() -> None:
    module = EngineModule(
        argument_spec=argument_spec(
            state={"type": "str", "choices": ["present", "absent"], "default": "present", "aliases": ["release_state"]},
            wait_for_jobs={"type": "bool", "default": False},
            wait_timeout={"type": "raw"},
            atomic={"type": "bool", "default": False},
            reset_values={"type": "bool", "default": True},
            reuse_values={"type": "bool"},
            reset_then_reuse_values={"type": "bool", "default": False},
            update_repo_cache={"type": "bool", "default": False},
            description={"type": "str"},
            server_side={"type": "str", "choices": ["true", "false", "auto"]},
            force_conflicts={"type": "bool", "default": False},
            keep_history={"type": "bool", "default": False},
            purge={"type": "bool", "default": True},
            replace={"type": "bool", "default": False},
            drift={"type": "str", "choices": ["correct", "detect", "ignore"], "default": "correct"},
            cleanup={"type": "list", "elements": "str", "choices": list(CLEANUP_CHOICES), "default": []},
            **DRIFT_IGNORE_ARG_SPEC,
            **CHART_ARG_SPEC,
            **OPERATION_ARG_SPEC,
            **RECOVERY_ARG_SPEC,
        ),
        mutually_exclusive=[("wait_timeout", "timeout"), ("replace", "history_max"), ("force", "server_side"),
                            ("force", "force_conflicts"), ("reuse_values", "reset_then_reuse_values")],
        supports_check_mode=True,
    )
    if module.params["wait_timeout"] is not None:
        # kubernetes.core's older name for timeout (deprecated there, accepted here).
        module.params["timeout"] = module.params["wait_timeout"]
    run_manager(
        module,
        DeployManager,
        values_params=["release_values"],
        sensitive_paths=module.params["sensitive_values"],
    )


if __name__ == "__main__":
    main()
