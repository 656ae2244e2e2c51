# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Releases stuck in pending-*: fail fast while another operation may run, recover when stale.

A helm killed with SIGKILL leaves its revision pending-install/-upgrade/-rollback forever, and
every later install/upgrade answers "another operation is in progress". Such a revision is
stale once it is older than the operation's timeout plus a margin: no helm can still be working
on it. Then a pending-install that never deployed is uninstalled, and anything else is rolled
back to the last good revision (helm rollback does not refuse pending releases).
"""

from __future__ import annotations

import time
import typing as t
from datetime import datetime, timezone

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import RELEASE_LOCKED, EngineError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import RecoveryPolicy, RollbackSpec, UninstallSpec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import (
    FAILED,
    Release,
    last_good,
    latest,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._objects import parse_time

if t.TYPE_CHECKING:
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import HelmClient
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._storage import ReleaseStore

LOCK_POLL_SECONDS = 2.0


def pending_info(release: Release, stale_after: float, now: datetime | None = None) -> dict[str, t.Any]:
    """What helm_status reports for a pending revision: which operation, since when, stale or not."""
    now = now or datetime.now(timezone.utc)
    since = parse_time(release.updated)
    age = (now - since).total_seconds() if since else None
    return {
        "operation": release.status.replace("pending-", ""),
        "status": release.status,
        "revision": release.revision,
        "since": release.updated,
        "age_seconds": round(age, 1) if age is not None else None,
        "stale_after_seconds": stale_after,
        "stale": age is not None and age >= stale_after,
    }


def stale_description(release: Release, info: dict[str, t.Any]) -> str:
    return (
        f"{release.status} abandoned (no helm worked on it for {info['age_seconds']}s); marked failed by "
        f"ai_mesh.helm_engine before recovery"
    )


def claim_stale(
    store: ReleaseStore, history: list[Release], policy: RecoveryPolicy, *, check_mode: bool
) -> tuple[list[Release], dict[str, t.Any] | None]:
    """The one gate before touching a pending release, for helm_deploy and helm_rollback.

    Returns the (possibly re-read) history and None when the latest revision is not pending.
    Waits up to lock_wait for it to finish or go stale; raises release_locked while another
    helm may still work on it, or when recover_pending is false. A stale revision is marked
    failed (outside check mode) and a report of it is returned."""
    current = latest(history)
    if current is None or not current.is_pending:
        return history, None
    stale_after = policy.stale_after
    deadline = time.monotonic() + policy.lock_wait
    info = pending_info(current, stale_after)
    while not info["stale"] and time.monotonic() < deadline:
        time.sleep(min(LOCK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        history = store.history(current.name, current.namespace)
        current = latest(history)
        if current is None or not current.is_pending:
            return history, None
        info = pending_info(current, stale_after)
    where = f"Release {current.namespace}/{current.name} is {current.status} (revision {current.revision}) since {current.updated}"
    if not info["stale"]:
        raise EngineError(
            RELEASE_LOCKED,
            f"{where}: another helm operation may still be running. It counts as stale, and is recovered "
            f"automatically, {stale_after:.0f}s after it started (stale_pending_after).",
            details={"pending": info},
        )
    if not policy.recover_pending:
        raise EngineError(RELEASE_LOCKED, f"{where}; it is stale, but recover_pending is false.", details={"pending": info})
    if not check_mode:
        store.mark_failed(current, stale_description(current, info))
    return history, {"stuck_revision": current.revision, "stuck_status": current.status, "since": current.updated}


def ensure_unlocked(
    store: ReleaseStore, helm: HelmClient, history: list[Release], policy: RecoveryPolicy, *, check_mode: bool
) -> dict[str, t.Any] | None:
    """Unlocks a stale pending release before an install/upgrade: a never-deployed
    pending-install is uninstalled, anything else rolled back to the last good revision.
    Returns None when the release was not pending, else a report of what was (or, in check
    mode, would be) done."""
    history, report = claim_stale(store, history, policy, check_mode=check_mode)
    if report is None:
        return None
    current = latest(history)
    if current is None:
        raise AssertionError("a claimed pending release is in the history")
    good = last_good(history, before=current.revision)
    if good is not None:
        report["action"] = "rollback"
        report["to_revision"] = good.revision
        if not check_mode:
            helm.rollback(RollbackSpec(release=current.name, namespace=current.namespace, revision=good.revision))
    else:
        # Never deployed well (a first install, or only failures): only an uninstall unblocks it.
        report["action"] = "uninstall"
        if not check_mode:
            helm.uninstall(UninstallSpec(release=current.name, namespace=current.namespace))
    report["performed"] = not check_mode
    return report


def repair_failed(helm: HelmClient, history: list[Release], *, check_mode: bool) -> dict[str, t.Any] | None:
    """helm 3 computes an upgrade's patch from the last *deployed* revision, so whatever a
    failed revision changed in the cluster (a label, an image) is invisible to it and stays
    live. Rolling back to the last good revision first puts the cluster back where helm 3
    thinks it is; the upgrade then patches from there. helm 4 applies server-side as one
    field manager, which removes those fields itself, so it needs no repair."""
    current = latest(history)
    if current is None or current.status != FAILED or helm.major >= 4:
        return None
    good = last_good(history, before=current.revision)
    if good is None:
        return None
    report = {
        "stuck_revision": current.revision,
        "stuck_status": current.status,
        "since": current.updated,
        "action": "rollback",
        "to_revision": good.revision,
        "reason": "helm 3 patches from the last deployed revision; the failed revision's changes would stay live",
        "performed": not check_mode,
    }
    if not check_mode:
        helm.rollback(RollbackSpec(release=current.name, namespace=current.namespace, revision=good.revision))
    return report
