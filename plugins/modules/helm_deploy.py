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
      would give what is deployed; and for a first install in a real run without C(--diff), which
      installs whatever renders (helm validates it first; RV(changes) come from the revision it
      records).
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

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import DEPLOY_ARG_SPEC, DEPLOY_EXCLUSIVE, argument_spec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._deploy import DeployManager
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import EngineModule, run_manager


def main() -> None:
    module = EngineModule(
        argument_spec=argument_spec(**DEPLOY_ARG_SPEC),
        mutually_exclusive=DEPLOY_EXCLUSIVE,
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
