# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one failure path of helm_deploy and helm_rollback: the state a failure left, read back."""

from __future__ import annotations

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    RELEASE_LOCKED,
    ROLLOUT_FAILED,
    TIMEOUT,
    EngineError,
    HelmError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._outcome import record_failure
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, release_store
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release, release_json

HELM4_VERDICT = ("Error: UPGRADE FAILED: resource Deployment/apps/web not ready. status: Failed, message: "
                 "Progress deadline exceeded")


def recorded(kind: str, after: list[dict], *, before: int | None, recovered: bool = False, atomic: bool = False,
             msg: str = "helm failed", stderr: str = "", details: dict | None = None) -> EngineError:
    api = FakeApi()
    api.set_releases(after)
    exc = HelmError(kind, msg, stderr=stderr, details=details)
    previous = release(before, "deployed") if before is not None else None
    record_failure(exc, release_store(api), "web", "apps", before=previous, recovered=recovered, atomic=atomic,
                   attempted={"action": "upgrade"}, timeline=[{"at": 1.0, "state": "waiting"}])
    return exc


def test_a_failed_revision_is_a_change_with_the_state_it_left():
    exc = recorded(TIMEOUT, [release_json(1, "superseded"), release_json(2, "failed")], before=1)
    assert exc.extra["changed"] is True and exc.extra["previous_revision"] == 1
    assert (exc.extra["revision"], exc.extra["release"]["status"]) == (2, "failed")
    assert exc.extra["action"] == "upgrade" and exc.extra["timeline"] == [{"at": 1.0, "state": "waiting"}]


def test_nothing_moved_is_no_change_unless_a_recovery_ran():
    assert recorded(TIMEOUT, [release_json(1, "deployed")], before=1).extra["changed"] is False
    assert recorded(TIMEOUT, [release_json(1, "deployed")], before=1, recovered=True).extra["changed"] is True


def test_a_locked_release_moved_by_another_run_is_not_our_change():
    exc = recorded(RELEASE_LOCKED, [release_json(1, "superseded"), release_json(2, "pending-upgrade")], before=1)
    assert exc.extra["changed"] is False and exc.extra["revision"] == 2


def test_an_install_that_left_nothing_or_an_uninstalled_release_is_no_change():
    assert recorded(TIMEOUT, [], before=None).extra == {"action": "upgrade", "previous_revision": None, "changed": False,
                                                        "timeline": [{"at": 1.0, "state": "waiting"}]}
    assert recorded(TIMEOUT, [release_json(1, "uninstalled")], before=None).extra["changed"] is False


def test_an_unreadable_history_claims_only_what_is_known():
    api = FakeApi()
    api.fail("GET", "/secrets")
    exc = HelmError(TIMEOUT, "helm failed")
    record_failure(exc, release_store(api), "web", "apps", before=release(1), recovered=True)
    assert exc.extra == {"previous_revision": 1, "changed": True}


@pytest.mark.parametrize("atomic, after, ending", [
    (True, [release_json(1, "superseded"), release_json(2, "failed"), release_json(3, "deployed")],
     "helm gave up and rolled back: revision 3 deploys revision 1 again."),
    (False, [release_json(1, "superseded"), release_json(2, "failed")], "helm gave up; revision 2 is failed."),
])
def test_helm_4s_own_verdict_reads_like_fail_fast_and_says_what_helm_left(atomic, after, ending):
    exc = recorded(ROLLOUT_FAILED, after, before=1, atomic=atomic, msg="UPGRADE FAILED", stderr=HELM4_VERDICT)
    assert exc.msg.startswith("The rollout cannot succeed: Deployment/web: ProgressDeadlineExceeded")
    assert exc.msg.endswith(ending)
    assert [r["name"] for r in exc.details["resources"]] == ["web"]


def test_fail_fasts_verdict_is_kept_and_an_atomic_install_says_it_was_uninstalled():
    resources = [{"kind": "Deployment", "name": "web", "reason": "CrashLoopBackOff"}]
    exc = recorded(ROLLOUT_FAILED, [], before=None, atomic=True, msg="The rollout cannot succeed: web crashes.",
                   details={"resources": resources})
    assert exc.msg == "The rollout cannot succeed: web crashes. helm was stopped and uninstalled the release it was installing."
    assert exc.details["resources"] == resources
