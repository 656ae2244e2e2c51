# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The decision "what would change", shared by helm_deploy and helm_rollback.

A plan compares the release as it is with the release as it would be (rendered by helm
itself), so check mode, --diff and the real run all rest on one comparison.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import (
    ResourceChange,
    compare,
    diff_entries,
    parse_manifest,
    to_yaml,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release

INSTALL = "install"
UPGRADE = "upgrade"
UNINSTALL = "uninstall"
ROLLBACK = "rollback"
# Live objects put back as the deployed revision declares them, without a new revision.
CORRECT_DRIFT = "correct_drift"
NONE = "none"


@dataclass
class Plan:
    action: str
    reasons: list[str] = field(default_factory=list)
    resource_changes: list[ResourceChange] = field(default_factory=list)
    values_before: dict[str, t.Any] | None = None
    values_after: dict[str, t.Any] | None = None

    @property
    def changed(self) -> bool:
        return self.action != NONE

    def diff(self, redactor: Redactor, release_label: str) -> list[dict[str, str]]:
        """Ansible diff entries: the user values first, then one per changed resource."""
        entries: list[dict[str, str]] = []
        if self.values_before != self.values_after or not self.resource_changes:
            before = redactor.redact_values(self.values_before, self.values_after) if self.values_before is not None else None
            after = redactor.redact_values(self.values_after, self.values_before) if self.values_after is not None else None
            entries.append(
                {
                    "before_header": f"{release_label} values (before)",
                    "after_header": f"{release_label} values (after)",
                    "before": to_yaml(before),
                    "after": to_yaml(after),
                }
            )
        entries.extend(diff_entries(self.resource_changes, redactor))
        return entries

    def summary(self) -> list[dict[str, str]]:
        return [c.summary() for c in self.resource_changes]


def _hooks_by_name(release: Release) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {h.name: (h.manifest, tuple(h.events)) for h in release.hooks}


def differences(current: Release, desired: Release) -> tuple[list[str], list[ResourceChange]]:
    """Why ``desired`` differs from ``current``: chart identity, user values, rendered
    resources and hooks. An empty reason list means nothing would change."""
    reasons = []
    if (current.chart, current.chart_version) != (desired.chart, desired.chart_version):
        reasons.append(f"chart {current.chart_ref} -> {desired.chart_ref}")
    if (current.app_version or None) != (desired.app_version or None):
        reasons.append(f"app_version {current.app_version} -> {desired.app_version}")
    if (current.config or {}) != (desired.config or {}):
        reasons.append("values changed")
    if (current.manifest, current.namespace) == (desired.manifest, desired.namespace):
        changes = []  # the same text parses to the same objects: a no-op need not parse it twice
    else:
        changes = compare(parse_manifest(current.manifest, current.namespace),
                          parse_manifest(desired.manifest, desired.namespace))
    if changes:
        reasons.append(f"{len(changes)} resource(s) changed")
    if _hooks_by_name(current) != _hooks_by_name(desired):
        reasons.append("hooks changed")
    return reasons, changes


def plan_install(desired: Release) -> Plan:
    return Plan(
        action=INSTALL,
        reasons=["release does not exist"],
        resource_changes=compare({}, parse_manifest(desired.manifest, desired.namespace)),
        values_before=None,
        values_after=desired.config or {},
    )


def plan_upgrade(current: Release, desired: Release) -> Plan:
    return _plan_towards(current, desired, UPGRADE)


def _plan_towards(current: Release, desired: Release, action: str) -> Plan:
    """``action`` when anything differs (or the release is not deployed), else no change."""
    reasons, changes = differences(current, desired)
    if current.status != "deployed":
        reasons.insert(0, f"release status is {current.status}")
    return Plan(
        action=action if reasons else NONE,
        reasons=reasons,
        resource_changes=changes,
        values_before=current.config or {},
        values_after=desired.config or {},
    )


def plan_uninstall(current: Release | None) -> Plan:
    if current is None or current.status == "uninstalled":
        return Plan(action=NONE, reasons=["release does not exist"])
    return Plan(
        action=UNINSTALL,
        reasons=[f"release exists (revision {current.revision}, {current.status})"],
        resource_changes=compare(parse_manifest(current.manifest, current.namespace), {}),
        values_before=current.config or {},
        values_after=None,
    )


def plan_rollback(current: Release, target: Release) -> Plan:
    """A rollback makes the release match ``target`` again: the same comparison as an upgrade."""
    return _plan_towards(current, target, ROLLBACK)
