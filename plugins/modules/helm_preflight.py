#!/usr/bin/python
# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_preflight
short_description: Check that a Helm release can be deployed, reporting every problem at once
version_added: 0.1.0
description:
  - Runs the checks a deploy with M(ai_mesh.helm_engine.helm_deploy) depends on, collects every
    problem, and fails once with the whole list in RV(problems). Nothing is changed, in check
    mode or not; check mode runs every check too.
  - C(cluster) the API server answers C(/version); C(helm) helm is present and supported;
    C(namespace) the namespace exists, or O(create_namespace) is set; C(lock) the release is not
    C(pending-*) with another helm possibly at work (read-only, with helm_deploy's recovery rules),
    and no other run of helm_deploy or helm_rollback holds its lock (the Lease C(helm-engine.<name>));
    C(render) the chart renders with the values, server-side, with the very argv helm_deploy's dry
    run uses, so the chart's C(values.schema.json) is applied; C(crds) every rendered kind is served
    by the cluster or its CustomResourceDefinition ships in the chart's C(crds/); C(rbac) the
    identity may get, create and patch every rendered kind in its namespace (cluster-scoped kinds
    without one) and keep helm's release Secrets, asked with SelfSubjectAccessReviews;
    C(ownership) every rendered resource that already exists belongs to this release.
  - A resource that exists without this release's ownership (label
    C(app.kubernetes.io/managed-by=Helm), annotations C(meta.helm.sh/release-name) and
    C(meta.helm.sh/release-namespace)), for example one applied with C(kubectl), is a
    C(resource_conflict) problem, unless O(take_ownership) is set; then it is listed in
    RV(adoptable) and the deploy with the same option adopts it.
  - A namespace that does not exist yet is no obstacle to rendering; helm's server-side dry run
    renders into it without creating it.
author:
  - ai_mesh helm_engine maintainers (@ai-mesh)
extends_documentation_fragment:
  - ai_mesh.helm_engine.helm_engine
  - ai_mesh.helm_engine.helm_engine.helm
  - ai_mesh.helm_engine.helm_engine.chart
  - ai_mesh.helm_engine.helm_engine.results
  - ai_mesh.helm_engine.attributes
  - ai_mesh.helm_engine.attributes.actiongroup
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  recover_pending:
    description:
      - As in M(ai_mesh.helm_engine.helm_deploy). A stale C(pending-*) release passes the C(lock)
        check when V(true) (the deploy would recover it first), and is a C(release_locked) problem
        when V(false).
    type: bool
    default: true
  stale_pending_after:
    description:
      - As in M(ai_mesh.helm_engine.helm_deploy), how old a pending revision must be to count as
        stale, as a Go duration or seconds. Defaults to O(timeout) (or helm's 5 minutes) plus 60 seconds.
    type: raw
  timeout:
    description:
      - The timeout the deploy will use, as a Go duration or seconds; it sets the default of
        O(stale_pending_after) and bounds the helm process that renders.
    type: raw
  sensitive_values:
    description:
      - Dotted paths into the values whose leaves are redacted from the result, in addition to
        keys that look secret.
    type: list
    elements: str
    default: []
seealso:
  - module: ai_mesh.helm_engine.helm_deploy
"""

EXAMPLES = r"""
- name: Check everything before the first deploy; fail with every problem at once
  ai_mesh.helm_engine.helm_preflight:
    name: monitoring-web-service
    namespace: monitoring
    chart_ref: ./examples/monitoring-web-service/helm-chart
    release_values:
      replicaCount: 3
  register: preflight

- name: Move a kubectl-applied service to helm, listing what will be adopted
  ai_mesh.helm_engine.helm_preflight:
    name: monitoring-web-service
    namespace: monitoring
    chart_ref: ./examples/monitoring-web-service/helm-chart
    take_ownership: true
  register: preflight

- name: Show the resources the deploy will adopt
  ansible.builtin.debug:
    msg: "{{ preflight.adoptable | map(attribute='name') | list }}"

- name: Report the problems without failing the play
  ai_mesh.helm_engine.helm_preflight:
    name: web
    namespace: web
    chart_ref: ./charts/web
    api_key: "{{ deployer_token }}"
    host: https://kube.example.org:6443
  register: preflight
  failed_when: false

- name: List them
  ansible.builtin.debug:
    msg: "{{ item.check }} ({{ item.kind }}): {{ item.message }}"
  loop: "{{ preflight.problems | default([]) }}"
"""

RETURN = r"""
passed:
  description: True when no check found a problem.
  returned: always
  type: bool
problems:
  description:
    - Every problem found, in check order. C(kind) is one of the error kinds of RV(error.kind).
    - C(rbac) problems add C(resource_kind), C(resource), C(namespace) and the denied C(verbs);
      C(ownership) problems add C(resource_kind), C(name), C(namespace), C(owner) and what is C(missing).
  returned: always
  type: list
  elements: dict
  sample: [{"check": "rbac", "kind": "forbidden", "message": "Deployment (apps/deployments) in namespace 'web': the identity may not create, get, patch.",
            "resource_kind": "Deployment", "resource": "apps/deployments", "namespace": "web", "verbs": ["create", "get", "patch"]}]
checks:
  description: Each check, in order, with C(status) V(passed), V(failed) or V(skipped) and a one-line C(detail).
  returned: always
  type: list
  elements: dict
  sample: [{"check": "cluster", "status": "passed", "detail": "reachable, Kubernetes v1.36.3"}]
adoptable:
  description: With O(take_ownership), the existing resources the deploy would adopt.
  returned: always
  type: list
  elements: dict
  sample: [{"api_version": "v1", "kind": "ConfigMap", "name": "web", "namespace": "web", "owner": null,
            "missing": ["label app.kubernetes.io/managed-by=Helm"]}]
resources:
  description: The objects the deploy would create (hooks flagged with C(hook)), when the chart rendered.
  returned: always
  type: list
  elements: dict
cluster_version:
  description: The API server's version, when it answered.
  returned: always
  type: str
  sample: v1.36.3
namespace_exists:
  description: Whether the namespace exists; null when the identity may not read it.
  returned: always
  type: bool
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
kube_requests:
  description: How many Kubernetes API requests the task made.
  returned: always
  type: int
error:
  description: On failure, the C(kind) of the first problem and the message listing all of them.
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
    problems: {description: How many problems were found., type: int, returned: when checks found problems}
    option: {description: The option whose value was refused., type: str, returned: when an input was refused}
  sample: {"kind": "forbidden", "message": "preflight found 2 problem(s): ...", "problems": 2}
"""

import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import (
    CHART_ARG_SPEC,
    argument_spec,
    deploy_spec,
    recovery_policy,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import (
    EngineModule,
    Manager,
    TaskContext,
    run_manager,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import DeploySpec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._preflight import Preflight, failure


class PreflightManager(Manager):
    """Validates the inputs, then runs every check; changes nothing, so check mode runs it all."""

    def __init__(self, context: TaskContext) -> None:
        super().__init__(context)
        self.deploy_spec: DeploySpec | None = None
        self.policy = recovery_policy(self.params, context.timeout)

    def validate(self) -> None:
        self.deploy_spec = deploy_spec(self.params, self.context.name, self.context.namespace, self.context.timeout)

    def execute(self) -> dict[str, t.Any]:
        if self.deploy_spec is None:
            raise AssertionError("validate() builds the deploy spec")
        # A missing helm is one problem among others: it is looked for by the check, not before the run.
        report = Preflight(self.context.store, self.context.detect_helm, self.deploy_spec, self.policy).run()
        if report["problems"]:
            raise failure(report)
        return report


def main() -> None:
    module = EngineModule(
        argument_spec=argument_spec(
            recover_pending={"type": "bool", "default": True},
            stale_pending_after={"type": "raw"},
            timeout={"type": "raw"},
            sensitive_values={"type": "list", "elements": "str", "default": []},
            **CHART_ARG_SPEC,
        ),
        supports_check_mode=True,
    )
    run_manager(
        module,
        PreflightManager,
        values_params=["release_values"],
        sensitive_paths=module.params["sensitive_values"],
        needs_helm=False,
    )


if __name__ == "__main__":
    main()
