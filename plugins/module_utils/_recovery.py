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

import re
import time
import typing as t
from datetime import datetime, timezone

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import (
    INVALID_ARGUMENTS,
    RELEASE_LOCKED,
    HelmError,
    RollbackSpec,
    UninstallSpec,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import (
    FAILED,
    Release,
    last_good,
    latest,
)

if t.TYPE_CHECKING:
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._common import TaskContext

DEFAULT_OPERATION_TIMEOUT = 300.0  # helm's own --timeout default
DEFAULT_STALE_MARGIN = 60.0

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str | None, default: float = DEFAULT_OPERATION_TIMEOUT) -> float:
    """Parses a Go duration (``5m0s``, ``90s``, ``1h``) or a bare number of seconds."""
    if text is None or str(text).strip() == "":
        return default
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise HelmError(INVALID_ARGUMENTS, f"{text!r} is not a duration (examples: 90s, 5m, 1h30m).")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    # helm writes RFC 3339 with nanoseconds; Python takes microseconds.
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", value)
    if not match:
        return None
    base, fraction, zone = match.groups()
    fraction = (fraction or ".0")[:7]
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(f"{base}{fraction}{zone}")
    except ValueError:
        return None


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


def stale_threshold(params: dict[str, t.Any], timeout: str | None) -> float:
    if params.get("stale_pending_after") is not None:
        return float(params["stale_pending_after"])
    return duration_seconds(timeout) + DEFAULT_STALE_MARGIN


def stale_description(release: Release, info: dict[str, t.Any]) -> str:
    return (
        f"{release.status} abandoned (no helm worked on it for {info['age_seconds']}s); marked failed by "
        f"ai_mesh.helm_engine before recovery"
    )


def claim_stale(context: TaskContext, history: list[Release], *, timeout: str | None) -> tuple[list[Release], dict[str, t.Any] | None]:
    """The one gate before touching a pending release, for helm_deploy and helm_rollback.

    Returns the (possibly re-read) history and None when the latest revision is not pending.
    Waits up to lock_wait for it to finish or go stale; raises release_locked while another
    helm may still work on it, or when recover_pending is false. A stale revision is marked
    failed (outside check mode) and a report of it is returned."""
    params = context.module.params
    current = latest(history)
    if current is None or not current.is_pending:
        return history, None
    stale_after = stale_threshold(params, timeout)
    deadline = time.monotonic() + float(params.get("lock_wait") or 0)
    info = pending_info(current, stale_after)
    while not info["stale"] and time.monotonic() < deadline:
        time.sleep(2)
        history = context.kube.release_history(current.name, current.namespace)
        current = latest(history)
        if current is None or not current.is_pending:
            return history, None
        info = pending_info(current, stale_after)
    where = f"Release {current.namespace}/{current.name} is {current.status} (revision {current.revision}) since {current.updated}"
    if not info["stale"]:
        raise HelmError(
            RELEASE_LOCKED,
            f"{where}: another helm operation may still be running. It counts as stale, and is recovered "
            f"automatically, {stale_after:.0f}s after it started (stale_pending_after).",
            details={"pending": info},
        )
    if not params.get("recover_pending", True):
        raise HelmError(RELEASE_LOCKED, f"{where}; it is stale, but recover_pending is false.", details={"pending": info})
    if not context.module.check_mode:
        context.kube.mark_release_failed(current, stale_description(current, info))
    return history, {"stuck_revision": current.revision, "stuck_status": current.status, "since": current.updated}


def ensure_unlocked(context: TaskContext, history: list[Release], *, timeout: str | None) -> dict[str, t.Any] | None:
    """Unlocks a stale pending release before an install/upgrade: a never-deployed
    pending-install is uninstalled, anything else rolled back to the last good revision.
    Returns None when the release was not pending, else a report of what was (or, in check
    mode, would be) done."""
    history, report = claim_stale(context, history, timeout=timeout)
    if report is None:
        return None
    current = latest(history)
    assert current is not None
    good = last_good(history, before=current.revision)
    if good is not None:
        report["action"] = "rollback"
        report["to_revision"] = good.revision
        if not context.module.check_mode:
            context.helm.rollback(RollbackSpec(release=current.name, namespace=current.namespace, revision=good.revision))
    else:
        # Never deployed well (a first install, or only failures): only an uninstall unblocks it.
        report["action"] = "uninstall"
        if not context.module.check_mode:
            context.helm.uninstall(UninstallSpec(release=current.name, namespace=current.namespace))
    report["performed"] = not context.module.check_mode
    return report


def repair_failed(context: TaskContext, history: list[Release]) -> dict[str, t.Any] | None:
    """helm 3 computes an upgrade's patch from the last *deployed* revision, so whatever a
    failed revision changed in the cluster (a label, an image) is invisible to it and stays
    live. Rolling back to the last good revision first puts the cluster back where helm 3
    thinks it is; the upgrade then patches from there. helm 4 applies server-side as one
    field manager, which removes those fields itself, so it needs no repair."""
    current = latest(history)
    if current is None or current.status != FAILED or context.helm.major >= 4:
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
        "performed": not context.module.check_mode,
    }
    if not context.module.check_mode:
        context.helm.rollback(RollbackSpec(release=current.name, namespace=current.namespace, revision=good.revision))
    return report
