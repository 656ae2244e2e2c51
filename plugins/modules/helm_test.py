#!/usr/bin/python
# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_test
short_description: Run a Helm release's chart tests and report each test's result
version_added: 0.1.0
description:
  - Runs C(helm test) on the latest revision of a release, on helm 3 (3.13 or later) or helm 4,
    then reads the release back from the cluster and returns each test hook with the phase of its
    last run, and the test pods' logs when helm could fetch them.
  - Fails with C(error.kind=hook_failed) when a test fails, naming the failed tests.
  - Tests do not change the release, so the task never reports C(changed). In check mode nothing
    runs; the task reports C(skipped) with the tests the chart defines and their last results.
  - When the test pods' logs cannot be fetched (a cluster without kubelet logs, for example) but
    every test passed, the task passes with RV(logs_available=false) and a warning; helm itself
    fails the whole command in that case.
author:
  - ai_mesh helm_engine maintainers (@ai-mesh)
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
  timeout:
    description:
      - How long helm waits for each test pod, as a Go duration (V(5m), V(90s)) or a number of seconds.
    type: raw
    default: 5m
  logs:
    description:
      - Ask helm for the test pods' logs (C(helm test --logs)) and return them in RV(logs).
    type: bool
    default: true
seealso:
  - module: ai_mesh.helm_engine.helm_deploy
  - module: ai_mesh.helm_engine.helm_status
"""

EXAMPLES = r"""
- name: Run the chart's tests after a deploy
  ai_mesh.helm_engine.helm_test:
    name: web
    namespace: web
    timeout: 2m
  register: web_tests

- name: Show each test
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.phase }}"
  loop: "{{ web_tests.tests }}"
"""

RETURN = r"""
passed:
  description: Every test passed; null in check mode, where nothing ran.
  returned: always
  type: bool
tests:
  description: Each test hook of the revision, with the phase of its last run as the release stores it.
  returned: when the release exists
  type: list
  elements: dict
  sample: [{"name": "web-test-connection", "kind": "Pod", "phase": "Succeeded",
            "started_at": "2026-12-02T04:53:54Z", "completed_at": "2026-12-02T04:53:54Z"}]
failed_tests:
  description: The names of the tests whose phase is C(Failed).
  returned: when the release exists
  type: list
  elements: str
revision:
  description: The revision tested.
  returned: when the release exists
  type: int
release:
  description: The release tested (see M(ai_mesh.helm_engine.helm_deploy)).
  returned: when the release exists
  type: dict
logs:
  description: The logs of each test pod, by pod name, when helm could fetch them.
  returned: when O(logs) is set and tests ran
  type: dict
  sample: {"web-test-connection": "ok\n"}
logs_available:
  description: Whether helm could fetch the test pods' logs.
  returned: when O(logs) is set and tests ran
  type: bool
skipped:
  description: True in check mode, where the tests do not run.
  returned: in check mode
  type: bool
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
"""

import re
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import argument_spec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import EngineModule, Manager, run_manager
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    HOOK_FAILED,
    RELEASE_NOT_FOUND,
    EngineError,
    HelmError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import TestSpec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import UNINSTALLED, Hook, Release, latest

# helm 3 still runs hooks of the old "test-success" event as tests.
TEST_EVENTS = ("test", "test-success")
# helm 3 prints "POD LOGS: <pod>" before each pod's logs, helm 4 "POD LOGS: <pod> (<container>)"
# before each container's (pkg/action/release_testing.go GetPodLogs).
_POD_LOGS = re.compile(r"^POD LOGS: (\S+)(?: \([^()\n]*\))?[ \t]*$", re.M)
# helm fails the whole command when it cannot read a pod's logs, after the tests ran.
_LOGS_UNAVAILABLE = re.compile(r"unable to get (pod )?logs", re.I)
FAILED_PHASE = "Failed"
SUCCEEDED_PHASE = "Succeeded"


def parse_logs(stdout: str | None) -> dict[str, str]:
    """The per-pod sections ``helm test --logs`` prints after the release summary; the
    sections of one pod's containers (helm 4) are joined in the order helm printed them."""
    text = stdout or ""
    marks = list(_POD_LOGS.finditer(text))
    logs: dict[str, str] = {}
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        logs[mark.group(1)] = logs.get(mark.group(1), "") + text[mark.end():end].strip("\n") + "\n"
    return logs


class TestManager(Manager):
    __test__ = False  # not a pytest class, whatever its name

    def prepare(self) -> None:
        self.context.detect_helm()

    def current(self) -> Release:
        name, namespace = self.context.name, self.context.namespace
        history = [r for r in self.context.store.history(name, namespace) if r.status != UNINSTALLED]
        current = latest(history)
        if current is None:
            raise EngineError(RELEASE_NOT_FOUND, f"Release {namespace}/{name} does not exist: nothing to test.")
        return current

    @staticmethod
    def tests_of(release: Release) -> list[Hook]:
        return [h for h in release.hooks if any(e in TEST_EVENTS for e in h.events)]

    def describe(self, release: Release) -> dict[str, t.Any]:
        tests = self.tests_of(release)
        return {
            "tests": [h.summary() for h in tests],
            "failed_tests": [h.name for h in tests if h.phase == FAILED_PHASE],
            "revision": release.revision,
            "release": release.summary(),
        }

    def execute(self) -> dict[str, t.Any]:
        before = self.current()
        if self.check_mode:
            return dict(self.describe(before), passed=None, skipped=True, changed=False,
                        msg="check mode: the tests were not run")
        if not self.tests_of(before):
            return dict(self.describe(before), passed=True, changed=False, msg="the chart defines no tests")
        timeout = self.context.timeout
        spec = TestSpec(release=before.name, namespace=before.namespace,
                        timeout=validate.go_duration(timeout) if timeout is not None else None,
                        logs=self.params["logs"])
        failure: HelmError | None = None
        stdout = ""
        try:
            stdout = self.context.helm.test(spec).stdout
        except HelmError as exc:
            failure, stdout = exc, exc.stdout or ""
        after = self.current()
        result = dict(self.describe(after), changed=False)
        if spec.logs:
            # A test pod may print what the chart gave it (a password in its env): mask every
            # value the release was deployed with, as everywhere else.
            logs = {pod: self.context.redactor.redact_text(text) or "" for pod, text in parse_logs(stdout).items()}
            result["logs"] = logs
            result["logs_available"] = bool(logs)
        tests = self.tests_of(after)
        failed = result["failed_tests"]
        result["passed"] = False
        if failed:
            error = EngineError(HOOK_FAILED, f"{len(failed)} of {len(tests)} test(s) of {after.namespace}/{after.name} "
                                             f"revision {after.revision} failed: {', '.join(failed)}",
                                command=failure.command if failure else None, rc=failure.rc if failure else None,
                                stderr=failure.stderr if failure else None)
            error.extra.update(result)
            raise error
        if failure is not None:
            passed = tests and all(h.phase == SUCCEEDED_PHASE for h in tests)
            if not (passed and _LOGS_UNAVAILABLE.search(failure.stderr or "")):
                failure.extra.update(result)
                raise failure
            # The tests passed; only reading their logs failed (no kubelet log endpoint).
            self.context.warn(f"every test passed, but helm could not fetch their logs: {failure.msg}")
            result["logs_available"] = False
        result["passed"] = True
        return result


def main() -> None:
    module = EngineModule(
        argument_spec=argument_spec(
            timeout={"type": "raw", "default": "5m"},
            logs={"type": "bool", "default": True},
        ),
        supports_check_mode=True,
    )
    run_manager(module, TestManager)


if __name__ == "__main__":
    main()
