# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import types
from datetime import datetime, timezone

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    INVALID_ARGUMENTS,
    RELEASE_LOCKED,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._recovery import (
    RecoveryPolicy,
    ensure_unlocked,
    pending_info,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._validate import parse_time
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release

UTC = timezone.utc


def release(revision: int, status: str, updated: str | None = "2024-05-02T11:00:00.5Z") -> Release:
    info = {"status": status}
    if updated is not None:
        info["last_deployed"] = updated
    return Release.from_json({"name": "web", "namespace": "apps", "version": revision, "info": info})


# ---- parse_time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-02T11:00:00.123456789Z", datetime(2024, 5, 2, 11, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-02T11:00:00.5Z", datetime(2024, 5, 2, 11, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-02T11:00:00Z", datetime(2024, 5, 2, 11, 0, 0, tzinfo=UTC)),
        ("2024-05-02T13:00:00.987654321+02:00", datetime(2024, 5, 2, 11, 0, 0, 987654, tzinfo=UTC)),
        ("2024-05-02T11:00:00", datetime(2024, 5, 2, 11, 0, 0, tzinfo=UTC)),
    ],
)
def test_parse_time(text, expected):
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize("text", [None, "", "yesterday", "2024-13-45T99:00:00Z"])
def test_parse_time_invalid(text):
    assert parse_time(text) is None


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


def unlock(client, history, *, check_mode=False, kube=None, **policy):
    policy.setdefault("operation_timeout", 300)
    return ensure_unlocked(kube or FakeKube(), client, history, RecoveryPolicy(**policy), check_mode=check_mode)


class FakeKube:
    """Records the stuck revisions the recovery rewrites as failed."""

    def __init__(self) -> None:
        self.marked: list[tuple[int, str]] = []

    def mark_release_failed(self, release: Release, description: str) -> None:
        self.marked.append((release.revision, description))


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
    kube = FakeKube()
    report = unlock(client, history, kube=kube)
    assert [revision for revision, _ in kube.marked] == [3]
    assert "pending-upgrade abandoned" in kube.marked[0][1]
    assert report == {
        "stuck_revision": 3, "stuck_status": "pending-upgrade", "since": LONG_AGO,
        "action": "rollback", "to_revision": 2, "performed": True,
    }
    assert fake.calls == [["helm", "rollback", "--namespace=apps", "--", "web", "2"]]


def test_stale_first_install_is_uninstalled(make_client):
    client, fake = make_client()
    kube = FakeKube()
    report = unlock(client, [release(1, "pending-install", updated=LONG_AGO)], kube=kube, operation_timeout=None)
    assert (report["action"], report["performed"]) == ("uninstall", True)
    assert [revision for revision, _ in kube.marked] == [1]
    assert fake.calls == [["helm", "uninstall", "--namespace=apps", "--", "web"]]


def test_stale_pending_in_check_mode_runs_nothing(make_client):
    client, fake = make_client()
    history = [release(1, "deployed"), release(2, "pending-rollback", updated=LONG_AGO)]
    kube = FakeKube()
    report = unlock(client, history, kube=kube, check_mode=True)
    assert (report["action"], report["to_revision"], report["performed"]) == ("rollback", 1, False)
    assert kube.marked == []
    assert fake.calls == []


def test_stale_pending_without_recovery_is_locked(make_client):
    client, fake = make_client()
    history = [release(1, "deployed"), release(2, "pending-upgrade", updated=LONG_AGO)]
    with pytest.raises(EngineError) as caught:
        unlock(client, history, recover_pending=False)
    assert caught.value.kind == RELEASE_LOCKED
    assert caught.value.details["pending"]["stale"] is True
    assert fake.calls == []
