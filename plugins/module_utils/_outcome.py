# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The one failure path of the operations that change a release (helm_deploy, helm_rollback).

A helm run that fails may still have changed the cluster: a failed revision, an atomic rollback,
a rollback that failed while it waited. ``record_failure`` is the one place an exception is
enriched with what was attempted and the state it left, read back from the cluster, so every
caller (a playbook's rescue, the role, the audit log) reads the same fields:

- ``changed``: true only when the release history moved (or a recovery changed it);
- ``previous_revision``: the revision before the operation;
- ``release``, ``revision``, ``hooks``: the latest revision now;
- ``timeline``: what the rollout watcher saw while helm waited;
- for ``rollout_failed``, a message that says what helm left (rolled back, uninstalled, failed).
"""

from __future__ import annotations

import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    RELEASE_LOCKED,
    ROLLOUT_FAILED,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import UNINSTALLED, Release, latest
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rollout import resources_from_helm

if t.TYPE_CHECKING:
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._storage import ReleaseStore


def record_failure(
    exc: EngineError,
    store: ReleaseStore,
    name: str,
    namespace: str,
    *,
    before: Release | None,
    recovered: bool,
    atomic: bool = False,
    attempted: dict[str, t.Any] | None = None,
    timeline: list[dict[str, t.Any]] | None = None,
) -> None:
    """Enriches ``exc`` in place; the caller re-raises it."""
    exc.extra.update(attempted or {})
    exc.extra.update(state_after_failure(exc, store, name, namespace, before=before, recovered=recovered))
    if timeline:
        exc.extra["timeline"] = timeline
    if exc.kind == ROLLOUT_FAILED:
        exc.msg = _rollout_failed_message(exc, atomic=atomic, before=before)


def state_after_failure(exc: EngineError, store: ReleaseStore, name: str, namespace: str, *,
                        before: Release | None, recovered: bool) -> dict[str, t.Any]:
    """What the failed operation left, and ``changed`` only when the history moved."""
    state: dict[str, t.Any] = {"previous_revision": before.revision if before else None}
    try:
        after = latest(store.history(name, namespace))
    except EngineError:
        state["changed"] = recovered  # the state cannot be read; only what we know we did
        return state
    if after is not None and before is not None:
        moved = (after.revision, after.status) != (before.revision, before.status)
    else:
        moved = after is not None and after.status != UNINSTALLED
    # helm refuses a locked release before it writes anything: whatever moved, another run moved.
    state["changed"] = bool((moved and exc.kind != RELEASE_LOCKED) or recovered)
    if after is not None:
        state.update(release=after.summary(), revision=after.revision,
                     hooks=[h.summary() for h in after.hooks if h.phase])
    return state


def _rollout_failed_message(exc: EngineError, *, atomic: bool, before: Release | None) -> str:
    """fail-fast's verdict (or helm 4's own), then what helm left after it was stopped or gave up."""
    stopped = "resources" in exc.details  # fail-fast stopped helm; else helm's own waiter gave up
    message = exc.msg
    if not stopped:
        resources = resources_from_helm(exc.stderr or exc.msg)
        exc.details["resources"] = resources
        if resources:  # the same words as fail-fast's verdict; helm's own are in error.stderr
            message = "The rollout cannot succeed: " + "; ".join(
                f"{r['kind']}/{r['name']}: {r['reason']} ({r['message']})" for r in resources) + "."
    after = exc.extra.get("release") or {}
    what = "helm was stopped" if stopped else "helm gave up"
    if atomic and before is not None and after.get("status") == "deployed" and after.get("revision") != before.revision:
        return f"{message} {what} and rolled back: revision {after['revision']} deploys revision {before.revision} again."
    if atomic and before is None:
        return f"{message} {what} and uninstalled the release it was installing."
    return f"{message} {what}; revision {after.get('revision', '?')} is {after.get('status', 'unknown')}."
