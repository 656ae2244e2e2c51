# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Release documents as helm prints them (``-o json``) and stores them (a Secret)."""

from __future__ import annotations

import base64
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import (
    Release,
    encode_storage,
    storage_secret_name,
)

CONFIGMAP_MANIFEST = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  MESSAGE: hello\n"


def release_json(
    revision: int = 1,
    status: str = "deployed",
    *,
    name: str = "web",
    namespace: str = "apps",
    config: dict[str, t.Any] | None = None,
    manifest: str = CONFIGMAP_MANIFEST,
    chart: str = "sample",
    chart_version: str = "0.1.0",
    app_version: str = "1.0.0",
    description: str = "Install complete",
    updated: str | None = "2026-11-25T10:00:00Z",
    hooks: list[dict[str, t.Any]] | None = None,
    values: dict[str, t.Any] | None = None,
    files: list[dict[str, t.Any]] | None = None,
) -> dict[str, t.Any]:
    """One revision as helm's JSON has it; every field a test does not name has a plain value.
    ``values`` are the chart's defaults, ``files`` its other files (``{"name", "data"}``, the
    data base64, as helm keeps crds/ there)."""
    info: dict[str, t.Any] = {"status": status, "description": description}
    if updated is not None:
        info["last_deployed"] = updated
    return {
        "name": name, "namespace": namespace, "version": revision, "info": info,
        "chart": {"metadata": {"name": chart, "version": chart_version, "appVersion": app_version},
                  "values": values or {}, "files": files or []},
        "config": config or {}, "manifest": manifest, "hooks": hooks or [],
    }


def release(revision: int = 1, status: str = "deployed", **fields: t.Any) -> Release:
    """The same revision as the Release model reads it."""
    return Release.from_json(release_json(revision, status, **fields))


def storage_secret(document: dict[str, t.Any], labels: dict[str, str] | None = None) -> dict[str, t.Any]:
    """The Secret helm stores a revision in: type, labels and the double-base64 payload."""
    name, revision = document["name"], int(document["version"])
    payload = base64.b64encode(encode_storage(document).encode("ascii")).decode("ascii")
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {
            "name": storage_secret_name(name, revision), "namespace": document["namespace"],
            "labels": dict({"owner": "helm", "name": name, "status": document["info"]["status"],
                            "version": str(revision)}, **(labels or {})),
        },
        "data": {"release": payload},
    }
