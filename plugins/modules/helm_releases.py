#!/usr/bin/python
# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_releases
short_description: Several Helm releases in one task, in dependency order, in parallel, with a plan
version_added: 0.1.0
description:
  - Makes several releases match their charts and values (or removes them) in one task. Each item of
    O(releases) takes the options of M(ai_mesh.helm_engine.helm_deploy), over O(defaults), and runs
    through helm_deploy's own engine, so each release gets the same lock, no-op decision, drift check,
    fail-fast, recovery, cleanup and redaction as with helm_deploy.
  - C(needs) of each item of O(releases) orders them. Releases to be present run in groups, each after every release its
    members need; the members of a group run at once, up to O(concurrency). Releases to be absent are
    removed after all of those, in the reverse order (a release only after every release that needs it).
  - The whole list is checked before anything changes; a release named twice, a need that names no
    release of the list, a cycle (the message names it) or a present release that needs an absent one
    fail the task with C(invalid_arguments).
  - A release that fails stops the releases that need it, directly or through others (they are
    skipped); the others go on. The task then fails, its message naming what failed, what was skipped
    and what was rolled back (C(atomic) of the release).
  - Check mode returns the plan of every release (C(action) and C(changes) of each item of RV(releases)) and
    changes nothing; C(--diff) shows each release's diff, secrets redacted.
author:
  - ai_mesh helm_engine maintainers (@ai-mesh)
extends_documentation_fragment:
  - ai_mesh.helm_engine.helm_engine
  - ai_mesh.helm_engine.helm_engine.helm_binary
  - ai_mesh.helm_engine.helm_engine.results
  - ai_mesh.helm_engine.attributes
  - ai_mesh.helm_engine.attributes.actiongroup
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  releases:
    description:
      - The releases, each a dict of M(ai_mesh.helm_engine.helm_deploy)'s options (C(name),
        C(namespace), C(chart_ref), C(chart_version), C(release_values), C(values_files),
        C(set_values), C(state), C(wait), C(timeout), C(atomic), C(drift), C(cleanup), ...) and
        C(needs).
      - The connection options (O(kubeconfig), O(context), O(binary_path), ...) of the task are every
        release's, unless a release sets its own (a release may live on another cluster).
      - C(needs) is a list of the releases this one needs, each C(name) (in the same namespace) or
        C(namespace/name).
    type: list
    elements: dict
    required: true
  defaults:
    description: Options every release takes unless it sets them itself (any of helm_deploy's, and C(needs)).
    type: dict
    default: {}
  concurrency:
    description: How many releases of one group run at once.
    type: int
    default: 4
seealso:
  - module: ai_mesh.helm_engine.helm_deploy
  - name: helm_releases for Helmfile users
    description: helmfile.yaml's concepts, mapped to helm_releases.
    link: https://github.com/ai-mesh/helm_engine/blob/main/docs/helmfile.md
"""

EXAMPLES = r"""
- name: The monitoring stack, database first, exporter last
  ai_mesh.helm_engine.helm_releases:
    defaults:
      namespace: monitoring
      create_namespace: true
      wait: true
      atomic: true
      timeout: 5m
    releases:
      - name: db
        chart_ref: ./charts/db
        release_values: {auth: {password: "{{ vault_db_password }}"}}
      - name: web
        chart_ref: ./charts/monitoring-web-service
        needs: [db]
      - name: exporter
        chart_ref: ./charts/exporter
        needs: [web]
  register: stack

- name: The plan of the whole stack, changing nothing
  ai_mesh.helm_engine.helm_releases:
    releases: "{{ stack_releases }}"
  check_mode: true
  diff: true
  register: plan

- name: Remove the stack, exporter first
  ai_mesh.helm_engine.helm_releases:
    defaults: {namespace: monitoring, state: absent, wait: true}
    releases:
      - {name: db}
      - {name: web, needs: [db]}
      - {name: exporter, needs: [web]}
"""

RETURN = r"""
releases:
  description:
    - One entry per item of O(releases), in their order, each with C(name), C(namespace), C(state),
      C(action) (V(install), V(upgrade), V(correct_drift), V(uninstall), V(none), or V(skipped)),
      C(changed), C(previous_revision), C(revision) (after), C(changes), C(drift), C(started) and
      C(duration) (seconds from the task's start, and spent), C(helm_processes) and C(commands).
    - A failed release has C(error) (C(kind), C(message), ...) and C(rolled_back); a skipped one
      C(skipped), saying which release it waited for. C(release), C(left_behind), C(cleaned),
      C(recovery), C(timeline) and C(warnings) as helm_deploy returns them, when there are.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: db, namespace: monitoring, state: present, action: install, changed: true, previous_revision: null,
       revision: 1, changes: [], drift: [], started: 0.21, duration: 4.9}
    - {name: web, namespace: monitoring, state: present, action: skipped, changed: false,
       skipped: "needs monitoring/db, which failed or was skipped"}
order:
  description: The groups the releases ran in, one after the other, each a list of C(namespace/name).
  returned: always
  type: list
  elements: list
  sample: [[monitoring/db], [monitoring/web], [monitoring/exporter]]
changed:
  description: Whether any release changed.
  returned: always
  type: bool
diff:
  description: With C(--diff), every release's diff entries, each header prefixed with the release.
  returned: with --diff
  type: list
  elements: dict
commands:
  description: The helm commands every release ran, with secrets redacted.
  returned: always
  type: list
  elements: str
helm_processes:
  description: How many helm processes the task started, in all.
  returned: always
  type: int
kube_requests:
  description: How many Kubernetes API requests the task made, in all.
  returned: always
  type: int
duration:
  description: Seconds the module spent.
  returned: always
  type: float
error:
  description: On failure, the C(kind) of the first failed release (or of the refused input) and the message.
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
    failed: {description: The releases that failed (C(namespace/name))., type: list, elements: str, returned: when releases failed}
    skipped: {description: The releases skipped because one they need failed., type: list, elements: str, returned: when releases failed}
    rolled_back:
      description: The failed releases helm rolled back (their C(atomic) was true).
      type: list
      elements: str
      returned: when releases failed
"""

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import connection_argument_spec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._releases import ReleasesContext, ReleasesManager
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import EngineModule, run_manager


def main() -> None:
    module = EngineModule(
        argument_spec=connection_argument_spec(
            # no_log: values travel inside; the task context narrows Ansible's masking to the real
            # secrets, and redacts the rest structurally (as helm_deploy does with release_values).
            releases={"type": "list", "elements": "dict", "required": True, "no_log": True},
            defaults={"type": "dict", "default": {}, "no_log": True},
            concurrency={"type": "int", "default": 4},
        ),
        supports_check_mode=True,
    )
    # Each release's sensitive_values: the task's redactor masks what any of them names.
    sensitive = [path for item in [module.params["defaults"]] + list(module.params["releases"])
                 if isinstance(item, dict) and isinstance(item.get("sensitive_values"), list)
                 for path in item["sensitive_values"] if isinstance(path, str)]
    run_manager(module, ReleasesManager, context_class=ReleasesContext, timeout_option=None, needs_helm=False,
                sensitive_paths=sensitive)


if __name__ == "__main__":
    main()
