# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""helm's release records, as the modules see them: every revision is decoded here, and its
values are registered as secrets with the task's redactor before any caller can show them.

helm 3 and 4 keep a revision in a Secret ``sh.helm.release.v1.<name>.v<revision>`` labelled
``owner=helm`` (gzipped JSON, base64, in ``data.release``); what helm prints with ``-o json`` is
the same document. Modules never decode a release themselves, so none can forget its secrets.
"""

from __future__ import annotations

import base64
import json
import re
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import InputError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient, path_segment
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import (
    Release,
    decode_storage,
    encode_storage,
    storage_secret_name,
)

RELEASE_SECRET_TYPE = "helm.sh/release.v1"
# A label value (the selector's right-hand side must be one, or it reshapes the selector).
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class ReleaseStore:
    """Reads (and, for recovery and the inputs digest, annotates) helm's release records."""

    def __init__(self, kube: KubeClient, redactor: Redactor) -> None:
        self.kube = kube
        self.redactor = redactor

    def decode(self, document: dict[str, t.Any], labels: dict[str, str] | None = None) -> Release:
        """A release from helm's JSON (``-o json``, or a storage payload), its values registered
        as secrets: a chart may copy any of them into a resource, a diff or a message."""
        release = Release.from_json(document)
        if labels is not None:
            release.labels = dict(labels)
        self.redactor.add_values(release.config)
        return release

    def history(self, name: str, namespace: str) -> list[Release]:
        """Every stored revision of a release, oldest first. The name is checked again on each
        item: the label selector is only a filter."""
        if not _LABEL_VALUE.match(name):
            raise InputError(f"{name!r} cannot be a release name: it is not a valid label value.", option="name")
        listing = self.kube.get_json(
            f"/api/v1/namespaces/{path_segment(namespace)}/secrets",
            {"labelSelector": f"owner=helm,name={name}"},
        )
        releases = []
        for item in listing.get("items") or []:
            if item.get("type") != RELEASE_SECRET_TYPE:
                continue
            payload = (item.get("data") or {}).get("release")
            if not payload:
                continue
            # The API base64-encodes Secret data; helm's payload inside is base64 again.
            release = self.decode(decode_storage(base64.b64decode(payload)),
                                  labels=(item.get("metadata") or {}).get("labels") or {})
            if release.name == name and (release.namespace or namespace) == namespace:
                releases.append(release)
        return sorted(releases, key=lambda r: r.revision)

    def mark_failed(self, release: Release, description: str) -> None:
        """Rewrites a stuck revision as failed, as helm itself does when it is interrupted
        gently (SIGTERM), so the history says what happened instead of pending forever."""
        data = json.loads(json.dumps(release.raw))
        data.setdefault("info", {})["status"] = "failed"
        data["info"]["description"] = description
        payload = base64.b64encode(encode_storage(data).encode("ascii")).decode("ascii")
        self.kube.patch_json(self._secret_path(release),
                             {"metadata": {"labels": {"status": "failed"}}, "data": {"release": payload}})

    def label(self, release: Release, key: str, value: str) -> None:
        """Sets one label on a revision's storage Secret; its content stays as helm wrote it."""
        self.kube.patch_json(self._secret_path(release), {"metadata": {"labels": {key: value}}})

    @staticmethod
    def _secret_path(release: Release) -> str:
        secret = storage_secret_name(release.name, release.revision)
        return f"/api/v1/namespaces/{path_segment(release.namespace)}/secrets/{path_segment(secret)}"
