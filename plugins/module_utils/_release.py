# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The release model: one helm release revision, read from helm's JSON or its storage Secret.

helm 3 and helm 4 store a revision the same way: JSON, gzipped, base64-encoded, in a Secret
``sh.helm.release.v1.<name>.v<revision>`` labelled ``owner=helm``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import typing as t
from dataclasses import dataclass, field

DEPLOYED = "deployed"
SUPERSEDED = "superseded"
FAILED = "failed"
UNINSTALLING = "uninstalling"
UNINSTALLED = "uninstalled"
PENDING_INSTALL = "pending-install"
PENDING_UPGRADE = "pending-upgrade"
PENDING_ROLLBACK = "pending-rollback"
PENDING_STATUSES = (PENDING_INSTALL, PENDING_UPGRADE, PENDING_ROLLBACK)
GOOD_STATUSES = (DEPLOYED, SUPERSEDED)

_GZIP_MAGIC = b"\x1f\x8b\x08"


def decode_storage(data: str | bytes) -> dict[str, t.Any]:
    """Decodes helm's storage payload (base64 of gzipped JSON) to a dict."""
    raw = base64.b64decode(data)
    if raw[:3] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return json.loads(raw)


def encode_storage(release: dict[str, t.Any]) -> str:
    """The inverse of decode_storage, as helm writes it (used by tests and recovery)."""
    return base64.b64encode(gzip.compress(json.dumps(release).encode("utf-8"))).decode("ascii")


@dataclass
class Hook:
    name: str
    kind: str
    events: list[str]
    phase: str
    started_at: str | None
    completed_at: str | None
    manifest: str = field(repr=False, default="")
    weight: int = 0

    @classmethod
    def from_json(cls, data: dict[str, t.Any]) -> Hook:
        last_run = data.get("last_run") or {}
        return cls(
            name=data.get("name", ""),
            kind=data.get("kind", ""),
            events=list(data.get("events") or []),
            phase=last_run.get("phase") or "",
            started_at=last_run.get("started_at") or None,
            completed_at=last_run.get("completed_at") or None,
            manifest=data.get("manifest", ""),
            weight=int(data.get("weight") or 0),
        )

    def summary(self) -> dict[str, t.Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "events": self.events,
            "phase": self.phase,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
        }


@dataclass
class Release:
    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str | None
    updated: str | None
    description: str
    config: dict[str, t.Any]
    manifest: str = field(repr=False)
    hooks: list[Hook] = field(default_factory=list)
    first_deployed: str | None = None
    notes: str = field(default="", repr=False)
    raw: dict[str, t.Any] = field(default_factory=dict, repr=False)
    # The labels of the revision's storage Secret (helm keeps custom labels there, not in
    # the JSON); empty when the release was not read from its Secret.
    labels: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, t.Any]) -> Release:
        info = data.get("info") or {}
        metadata = (data.get("chart") or {}).get("metadata") or {}
        return cls(
            name=data.get("name", ""),
            namespace=data.get("namespace", ""),
            revision=int(data.get("version") or 0),
            status=info.get("status") or "unknown",
            chart=metadata.get("name", ""),
            chart_version=metadata.get("version", ""),
            app_version=metadata.get("appVersion") or None,
            updated=info.get("last_deployed") or None,
            description=info.get("description") or "",
            config=data.get("config") or {},
            manifest=data.get("manifest") or "",
            hooks=[Hook.from_json(h) for h in data.get("hooks") or []],
            first_deployed=info.get("first_deployed") or None,
            notes=info.get("notes") or "",
            raw=data,
        )

    @property
    def is_pending(self) -> bool:
        return self.status in PENDING_STATUSES

    @property
    def is_good(self) -> bool:
        return self.status in GOOD_STATUSES

    @property
    def chart_ref(self) -> str:
        return f"{self.chart}-{self.chart_version}"

    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest.encode("utf-8")).hexdigest()

    def values_digest(self) -> str:
        canonical = json.dumps(self.config, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def summary(self) -> dict[str, t.Any]:
        """What modules return as ``release``: identity and state, never values."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "revision": self.revision,
            "status": self.status,
            "chart": self.chart,
            "chart_version": self.chart_version,
            "app_version": self.app_version,
            "updated": self.updated,
            "description": self.description,
        }

    def all_values(self) -> dict[str, t.Any]:
        """The chart's default values with the user's on top (helm get values --all)."""
        defaults = (self.raw.get("chart") or {}).get("values") or {}
        return _coalesce(defaults, self.config or {})

    def core_status(self, values: dict[str, t.Any]) -> dict[str, t.Any]:
        """``status`` as kubernetes.core's helm and helm_info return it (from helm list), so
        playbooks written for them read the same keys here. ``values`` come redacted."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "revision": str(self.revision),
            "status": self.status,
            "chart": self.chart_ref,
            "app_version": self.app_version or "",
            "updated": self.updated,
            "values": values,
            "release_values": values,
        }

    def history_entry(self) -> dict[str, t.Any]:
        return {
            "revision": self.revision,
            "status": self.status,
            "chart": self.chart_ref,
            "app_version": self.app_version,
            "updated": self.updated,
            "description": self.description,
        }


def storage_secret_name(name: str, revision: int) -> str:
    return f"sh.helm.release.v1.{name}.v{revision}"


def latest(releases: t.Sequence[Release]) -> Release | None:
    return max(releases, key=lambda r: r.revision) if releases else None


def last_good(releases: t.Sequence[Release], *, before: int | None = None) -> Release | None:
    """The newest revision that was deployed successfully (deployed or superseded)."""
    candidates = [r for r in releases if r.is_good and (before is None or r.revision < before)]
    return max(candidates, key=lambda r: r.revision) if candidates else None


def _coalesce(defaults: t.Any, overrides: t.Any) -> t.Any:
    """helm's merge of values: maps merge key by key, anything else is replaced; a null
    override deletes the default key."""
    if not isinstance(defaults, dict) or not isinstance(overrides, dict):
        return overrides
    merged = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = _coalesce(merged[key], value)
        else:
            merged[key] = value
    return merged
