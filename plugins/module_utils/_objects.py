# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Reading the parts every Kubernetes object (and helm's records) share: metadata, status
conditions, timestamps. A leaf: it imports nothing of the collection."""

from __future__ import annotations

import datetime
import typing as t

_KUBERNETES_TIME = "%Y-%m-%dT%H:%M:%SZ"


def metadata(obj: dict[str, t.Any]) -> dict[str, t.Any]:
    return obj.get("metadata") or {}


def conditions(obj: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """The object's status conditions by type: ``{"Ready": {"status": "True", ...}}``."""
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or [] if isinstance(c, dict)}


def condition_is_true(obj: dict[str, t.Any], kind: str) -> bool:
    return (conditions(obj).get(kind) or {}).get("status") == "True"


def parse_time(value: str | None) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when unreadable.

    Kubernetes writes whole seconds in UTC (``2024-05-02T11:00:00Z``), read here without
    dateutil, since the fail-fast watcher reads one per pod every poll. helm writes
    nanoseconds and an offset, which dateutil reads (microseconds kept, the rest dropped);
    a time without an offset is taken as UTC."""
    if not value:
        return None
    try:
        return datetime.datetime.strptime(value, _KUBERNETES_TIME).replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        pass
    try:
        from dateutil import parser  # shipped with the kubernetes client
    except ImportError:  # pragma: no cover - kubernetes depends on python-dateutil
        return None
    try:
        parsed = parser.isoparse(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
