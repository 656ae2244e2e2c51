# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import (
    Release,
    decode_storage,
    encode_storage,
    last_good,
    latest,
)
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release

# Shaped like a helm release record (`helm status -o json`, or a decoded storage Secret).
HELM_RELEASE = {
    "name": "web",
    "namespace": "apps",
    "version": 3,
    "info": {
        "first_deployed": "2024-05-01T10:00:00.123456789Z",
        "last_deployed": "2024-05-02T11:00:00.5Z",
        "deleted": "",
        "description": "Upgrade complete",
        "status": "deployed",
        "notes": "Visit http://web.apps",
    },
    "chart": {
        "metadata": {"name": "sample", "version": "0.3.0", "appVersion": "1.25.3", "apiVersion": "v2"},
        "values": {"replicaCount": 1},
    },
    "config": {"replicaCount": 2, "auth": {"password": "hunter22"}},
    "manifest": "---\n# Source: sample/templates/service.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
    "hooks": [
        {
            "name": "web-pre-upgrade",
            "kind": "Job",
            "path": "sample/templates/hooks.yaml",
            "manifest": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-pre-upgrade\n",
            "events": ["pre-upgrade"],
            "last_run": {
                "started_at": "2024-05-02T10:59:50Z",
                "completed_at": "2024-05-02T10:59:58Z",
                "phase": "Succeeded",
            },
            "weight": -5,
            "delete_policies": ["before-hook-creation"],
        },
        {"name": "web-test", "kind": "Pod", "manifest": "kind: Pod\n", "events": ["test"], "last_run": {}},
    ],
}


# ---- storage -----------------------------------------------------------------------------


def test_storage_round_trip():
    encoded = encode_storage(HELM_RELEASE)
    assert base64.b64decode(encoded)[:2] == b"\x1f\x8b"  # gzip, as helm writes it
    assert decode_storage(encoded) == HELM_RELEASE
    assert decode_storage(encoded.encode("ascii")) == HELM_RELEASE


def test_decode_storage_accepts_uncompressed_payload():
    plain = base64.b64encode(json.dumps({"name": "web"}).encode()).decode()
    assert decode_storage(plain) == {"name": "web"}


# ---- Release.from_json -------------------------------------------------------------------


def test_release_from_json():
    rel = Release.from_json(HELM_RELEASE)
    assert rel.summary() == {
        "name": "web",
        "namespace": "apps",
        "revision": 3,
        "status": "deployed",
        "chart": "sample",
        "chart_version": "0.3.0",
        "app_version": "1.25.3",
        "updated": "2024-05-02T11:00:00.5Z",
        "description": "Upgrade complete",
    }
    assert rel.config == {"replicaCount": 2, "auth": {"password": "hunter22"}}
    assert rel.manifest == HELM_RELEASE["manifest"]
    assert rel.first_deployed == "2024-05-01T10:00:00.123456789Z"
    assert rel.notes == "Visit http://web.apps"
    assert rel.chart_ref == "sample-0.3.0"
    assert rel.is_good and not rel.is_pending
    assert "hunter22" not in json.dumps(rel.summary()) + json.dumps(rel.history_entry())


def test_release_hooks():
    hook, test_hook = Release.from_json(HELM_RELEASE).hooks
    assert hook.summary() == {
        "name": "web-pre-upgrade",
        "kind": "Job",
        "events": ["pre-upgrade"],
        "phase": "Succeeded",
        "started_at": "2024-05-02T10:59:50Z",
        "completed_at": "2024-05-02T10:59:58Z",
    }
    assert hook.weight == -5
    assert hook.manifest.startswith("apiVersion: batch/v1")
    assert (test_hook.phase, test_hook.started_at, test_hook.completed_at, test_hook.weight) == ("", None, None, 0)


def test_release_from_sparse_json():
    rel = Release.from_json({"name": "web"})
    assert (rel.revision, rel.status, rel.chart, rel.app_version, rel.config, rel.manifest, rel.hooks) == (
        0, "unknown", "", None, {}, "", [],
    )


@pytest.mark.parametrize(
    "status, good, pending",
    [
        ("deployed", True, False),
        ("superseded", True, False),
        ("failed", False, False),
        ("pending-install", False, True),
        ("pending-upgrade", False, True),
        ("pending-rollback", False, True),
        ("uninstalled", False, False),
    ],
)
def test_release_status_classes(status, good, pending):
    rel = release(1, status)
    assert (rel.is_good, rel.is_pending) == (good, pending)


def test_digests():
    rel = Release.from_json(HELM_RELEASE)
    reordered = Release.from_json(dict(HELM_RELEASE, config={"auth": {"password": "hunter22"}, "replicaCount": 2}))
    other = Release.from_json(dict(HELM_RELEASE, config={"replicaCount": 3}, manifest="kind: Service\n"))
    assert rel.values_digest() == reordered.values_digest()
    assert rel.values_digest() != other.values_digest()
    assert rel.manifest_digest() != other.manifest_digest()
    assert rel.manifest_digest().startswith("sha256:")


# ---- latest / last_good ------------------------------------------------------------------

HISTORY = [release(4, "pending-upgrade"), release(1, "superseded"), release(3, "failed"), release(2, "superseded")]


def test_latest():
    assert latest(HISTORY).revision == 4
    assert latest([]) is None


def test_last_good():
    assert last_good(HISTORY).revision == 2
    assert last_good(HISTORY, before=2).revision == 1
    assert last_good(HISTORY, before=1) is None
    assert last_good([release(1, "failed"), release(2, "pending-install")]) is None
    assert last_good([release(5, "deployed"), release(4, "superseded")]).revision == 5
