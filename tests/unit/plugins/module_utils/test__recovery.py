# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _recovery
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    RELEASE_LOCKED,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._recovery import (
    ensure_unlocked,
    pending_info,
    repair_failed,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import RecoveryPolicy
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, release_store
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release as shared_release

HELM3 = "v3.22.0"
HELM4 = "v4.3.1"

UTC = timezone.utc


def release(revision: int, status: str, updated: str | None = "2024-05-02T11:00:00.5Z") -> Release:
    return shared_release(revision, status, updated=updated)


# ---- pending_info / stale_threshold ------------------------------------------------------


@pytest.mark.parametrize(
    "now, age, stale",
    [
        (datetime(2024, 5, 2, 11, 5, 0, 500000, tzinfo=UTC), 300.0, False),
        (datetime(2024, 5, 2, 11, 5, 59, tzinfo=UTC), 358.5, False),
        (datetime(2024, 5, 2, 11, 6, 0, 500000, tzinfo=UTC), 360.0, True),
        (datetime(2024, 5, 3, 0, 0, 0, tzinfo=UTC), 46799.5, True),
    ],
)
def test_pending_info(now, age, stale):
    info = pending_info(release(7, "pending-upgrade"), 360.0, now=now)
    assert info == {
        "operation": "upgrade",
        "status": "pending-upgrade",
        "revision": 7,
        "since": "2024-05-02T11:00:00.5Z",
        "age_seconds": age,
        "stale_after_seconds": 360.0,
        "stale": stale,
    }


def test_pending_info_without_timestamp_is_never_stale():
    info = pending_info(release(1, "pending-install", updated=None), 0.0, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert (info["operation"], info["age_seconds"], info["stale"]) == ("install", None, False)


@pytest.mark.parametrize(
    "policy, threshold",
    [
        (RecoveryPolicy(stale_pending_after=120, operation_timeout=600), 120.0),
        (RecoveryPolicy(operation_timeout=600), 660.0),
        (RecoveryPolicy(), 360.0),
    ],
)
def test_stale_threshold(policy, threshold):
    assert policy.stale_after == threshold


# ---- ensure_unlocked (no waiting: lock_wait 0) -------------------------------------------

LONG_AGO = "2020-01-01T00:00:00Z"


def unlock(client, history, *, check_mode=False, api=None, later=None, **policy):
    """ensure_unlocked over a fake cluster holding ``history``; ``later``: what each re-read of
    the history finds (while waiting for a lock), the last one repeated."""
    policy.setdefault("operation_timeout", 300)
    api = api or FakeApi()
    api.set_releases([r.raw for r in history])
    api.script_releases([[r.raw for r in h] for h in later or []])
    return ensure_unlocked(release_store(api), client, history, RecoveryPolicy(**policy), check_mode=check_mode)


def test_not_pending_needs_nothing(make_client):
    client, fake = make_client()
    history = [release(1, "superseded"), release(2, "deployed")]
    assert unlock(client, history) is None
    assert unlock(client, []) is None
    assert fake.calls == []


def test_fresh_pending_release_is_locked(make_client):
    client, fake = make_client()
    just_now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    history = [release(1, "deployed"), release(2, "pending-upgrade", updated=just_now)]
    with pytest.raises(EngineError) as caught:
        unlock(client, history)
    assert caught.value.kind == RELEASE_LOCKED
    assert caught.value.details["pending"]["stale"] is False
    assert fake.calls == []


def test_stale_pending_upgrade_rolls_back_to_last_good(make_client):
    client, fake = make_client()
    history = [release(1, "superseded"), release(2, "deployed"), release(3, "pending-upgrade", updated=LONG_AGO)]
    api = FakeApi()
    report = unlock(client, history, api=api)
    assert [revision for revision, _ in api.marked_failed()] == [3]
    assert "pending-upgrade abandoned" in api.marked_failed()[0][1]
    assert report == {
        "stuck_revision": 3, "stuck_status": "pending-upgrade", "since": LONG_AGO,
        "action": "rollback", "to_revision": 2, "performed": True,
    }
    assert fake.calls == [["helm", "rollback", "--namespace=apps", "--", "web", "2"]]


def test_stale_first_install_is_uninstalled(make_client):
    client, fake = make_client()
    api = FakeApi()
    report = unlock(client, [release(1, "pending-install", updated=LONG_AGO)], api=api, operation_timeout=None)
    assert (report["action"], report["performed"]) == ("uninstall", True)
    assert [revision for revision, _ in api.marked_failed()] == [1]
    assert fake.calls == [["helm", "uninstall", "--namespace=apps", "--", "web"]]


def test_stale_pending_in_check_mode_runs_nothing(make_client):
    client, fake = make_client()
    history = [release(1, "deployed"), release(2, "pending-rollback", updated=LONG_AGO)]
    api = FakeApi()
    report = unlock(client, history, api=api, check_mode=True)
    assert (report["action"], report["to_revision"], report["performed"]) == ("rollback", 1, False)
    assert api.marked_failed() == []
    assert fake.calls == []


def test_stale_pending_without_recovery_is_locked(make_client):
    client, fake = make_client()
    history = [release(1, "deployed"), release(2, "pending-upgrade", updated=LONG_AGO)]
    with pytest.raises(EngineError) as caught:
        unlock(client, history, recover_pending=False)
    assert caught.value.kind == RELEASE_LOCKED
    assert caught.value.details["pending"]["stale"] is True
    assert fake.calls == []


# ---- waiting for a lock (lock_wait) ------------------------------------------------------


def just_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_lock_wait_returns_once_the_other_operation_finished(make_client, monkeypatch):
    monkeypatch.setattr(_recovery, "LOCK_POLL_SECONDS", 0.01)
    client, fake = make_client()
    pending = [release(1, "deployed"), release(2, "pending-upgrade", updated=just_now())]
    done = [release(1, "superseded"), release(2, "deployed")]
    api = FakeApi()
    assert unlock(client, pending, api=api, later=[pending, done], lock_wait=5.0) is None
    assert api.count("GET", "/secrets") == 2
    assert api.marked_failed() == [] and fake.calls == []


def test_lock_wait_gives_up_after_its_time(make_client, monkeypatch):
    monkeypatch.setattr(_recovery, "LOCK_POLL_SECONDS", 0.01)
    client, fake = make_client()
    pending = [release(1, "deployed"), release(2, "pending-upgrade", updated=just_now())]
    api = FakeApi()
    with pytest.raises(EngineError) as caught:
        unlock(client, pending, api=api, later=[pending], lock_wait=0.2)
    assert caught.value.kind == RELEASE_LOCKED
    assert api.count("GET", "/secrets") >= 2
    assert api.marked_failed() == [] and fake.calls == []


# ---- repair_failed: helm 3 patches from the last deployed revision -----------------------


def test_failed_revision_is_rolled_back_first_on_helm3(make_client):
    client, fake = make_client(HELM3)
    history = [release(1, "superseded"), release(2, "deployed"), release(3, "failed")]
    report = repair_failed(client, history, check_mode=False)
    assert (report["action"], report["to_revision"], report["stuck_revision"], report["performed"]) == (
        "rollback", 2, 3, True,
    )
    assert fake.calls == [
        ["helm", "version", "--template={{.Version}}"],
        ["helm", "rollback", "--namespace=apps", "--", "web", "2"],
    ]


def test_failed_revision_in_check_mode_is_only_reported(make_client):
    client, fake = make_client(HELM3)
    report = repair_failed(client, [release(1, "deployed"), release(2, "failed")], check_mode=True)
    assert (report["to_revision"], report["performed"]) == (1, False)
    assert [argv[1] for argv in fake.calls] == ["version"]


@pytest.mark.parametrize(
    "version, statuses",
    [
        (HELM4, ["deployed", "failed"]),  # helm 4 removes a failed revision's fields itself
        (HELM3, ["deployed"]),
        (HELM3, ["failed"]),  # nothing good to go back to
    ],
)
def test_no_repair_needed(make_client, version, statuses):
    client, fake = make_client(version)
    history = [release(i + 1, status) for i, status in enumerate(statuses)]
    assert repair_failed(client, history, check_mode=False) is None
    assert all(argv[1] == "version" for argv in fake.calls)
