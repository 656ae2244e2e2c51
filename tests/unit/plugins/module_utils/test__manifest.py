# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import copy

import pytest
import yaml

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import (
    compare,
    diff_entries,
    key_label,
    parse_manifest,
    redact_resource,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import (
    MASK,
    REDACTED,
    REDACTED_CHANGED,
    Redactor,
)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Shaped like `helm get manifest`: a leading ---, "# Source:" comments, an empty document.
MANIFEST = """\
---
# Source: sample/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
    - port: 80
---
# Source: sample/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: other
data:
  MESSAGE: "hello"
---
# Source: sample/templates/empty.yaml
---
# not a resource: no kind
foo: bar
---
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
  - apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata:
      name: web-reader
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(data: dict[str, str] | None = None, string_data: dict[str, str] | None = None) -> dict:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-auth", "namespace": "apps"}, "type": "Opaque"}
    if data is not None:
        obj["data"] = {k: b64(v) for k, v in data.items()}
    if string_data is not None:
        obj["stringData"] = dict(string_data)
    return obj


def key_of(obj: dict) -> tuple[str, str, str, str]:
    return (obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace", "apps"), obj["metadata"]["name"])


# ---- parse_manifest ----------------------------------------------------------------------


def test_parse_manifest_keys():
    resources = parse_manifest(MANIFEST, "apps")
    assert sorted(resources) == [
        ("apps/v1", "Deployment", "apps", "web"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", "apps", "web-reader"),
        ("v1", "ConfigMap", "other", "web-config"),
        ("v1", "Service", "apps", "web"),
    ]
    assert resources[("v1", "ConfigMap", "other", "web-config")]["data"] == {"MESSAGE": "hello"}


@pytest.mark.parametrize("text", ["", None, "---\n---\n", "# only a comment\n", "- a\n- b\n"])
def test_parse_manifest_without_resources(text):
    assert parse_manifest(text, "apps") == {}


def test_parse_manifest_without_default_namespace():
    assert list(parse_manifest("kind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\n")) == [("v1", "ConfigMap", "", "c")]


def test_key_label():
    assert key_label(("v1", "ConfigMap", "apps", "web-config")) == "ConfigMap/apps/web-config"
    assert key_label(("v1", "Namespace", "", "apps")) == "Namespace/apps"


# ---- compare -----------------------------------------------------------------------------


def test_compare_added_removed_changed():
    before = parse_manifest(MANIFEST, "apps")
    after_text = (
        MANIFEST.replace('MESSAGE: "hello"', 'MESSAGE: "bye"')  # changed
        .replace("kind: Service", "kind: Service\n# still a service")  # a comment: no change
        .replace("name: web-reader", "name: web-admin")  # removed + added
    )
    changes = compare(before, parse_manifest(after_text, "apps"))
    assert [(c.change, c.key) for c in changes] == [
        ("added", ("rbac.authorization.k8s.io/v1", "ClusterRole", "apps", "web-admin")),
        ("removed", ("rbac.authorization.k8s.io/v1", "ClusterRole", "apps", "web-reader")),
        ("changed", ("v1", "ConfigMap", "other", "web-config")),
    ]
    added, removed, changed = changes
    assert added.before is None and added.after["metadata"]["name"] == "web-admin"
    assert removed.after is None and removed.before["metadata"]["name"] == "web-reader"
    assert (changed.before["data"], changed.after["data"]) == ({"MESSAGE": "hello"}, {"MESSAGE": "bye"})
    assert changed.summary() == {
        "api_version": "v1", "kind": "ConfigMap", "namespace": "other", "name": "web-config", "change": "changed",
    }


def test_compare_ignores_comments_document_order_and_formatting():
    docs = MANIFEST.split("---\n")
    reordered = "---\n".join(reversed(docs))
    reformatted = reordered.replace('MESSAGE: "hello"', "MESSAGE: hello  # greeting").replace("# Source:", "# Src:")
    assert compare(parse_manifest(MANIFEST, "apps"), parse_manifest(reformatted, "apps")) == []


def test_compare_identical_is_empty():
    assert compare(parse_manifest(MANIFEST, "apps"), parse_manifest(MANIFEST, "apps")) == []


# ---- redaction of resources in diffs -----------------------------------------------------


def test_secret_data_shows_only_markers():
    before = secret(data={"password": "old-pw", "user": "admin"}, string_data={"token": "tok-1"})
    after = secret(data={"password": "new-pw", "user": "admin", "extra": "x"}, string_data={"token": "tok-1"})
    [entry] = diff_entries(compare({key_of(before): before}, {key_of(after): after}), Redactor())
    assert entry["before_header"] == "Secret/apps/web-auth (before)"
    assert entry["after_header"] == "Secret/apps/web-auth (after)"
    shown_before, shown_after = yaml.safe_load(entry["before"]), yaml.safe_load(entry["after"])
    assert shown_before["data"] == {"password": REDACTED_CHANGED, "user": REDACTED}
    assert shown_after["data"] == {"password": REDACTED_CHANGED, "user": REDACTED, "extra": REDACTED_CHANGED}
    assert shown_before["stringData"] == shown_after["stringData"] == {"token": REDACTED}
    assert shown_after["type"] == "Opaque"
    text = entry["before"] + entry["after"]
    for value in ("old-pw", "new-pw", "admin", "tok-1", b64("old-pw"), b64("new-pw"), b64("admin")):
        assert value not in text


def test_added_secret_has_empty_before():
    after = secret(data={"password": "pw-123"})
    [entry] = diff_entries(compare({}, {key_of(after): after}), Redactor())
    assert (entry["before_header"], entry["before"]) == ("/dev/null", "")
    assert yaml.safe_load(entry["after"])["data"] == {"password": REDACTED}


def test_removed_resource_has_empty_after():
    before = secret(data={"password": "pw-123"})
    [entry] = diff_entries(compare({key_of(before): before}, {}), Redactor())
    assert (entry["after_header"], entry["after"]) == ("/dev/null", "")
    assert yaml.safe_load(entry["before"])["data"] == {"password": REDACTED}


def test_registered_secrets_are_masked_in_other_resources():
    redactor = Redactor()
    redactor.add_secret("hunter22")
    before = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "apps"},
              "data": {"DSN": "postgres://web:old-secret@db/web", "LEVEL": "info"}}
    after = copy.deepcopy(before)
    after["data"]["DSN"] = "postgres://web:hunter22@db/web"
    [entry] = diff_entries(compare({key_of(before): before}, {key_of(after): after}), redactor)
    assert yaml.safe_load(entry["after"])["data"] == {"DSN": f"postgres://web:{MASK}@db/web", "LEVEL": "info"}
    assert "hunter22" not in entry["after"]


def test_last_applied_annotation_is_redacted():
    obj = secret(data={"password": "pw-123"})
    obj["metadata"]["annotations"] = {LAST_APPLIED: '{"data":{"password":"cHctMTIz"}}', "team": "web"}
    original = copy.deepcopy(obj)
    shown = redact_resource(obj, obj, Redactor())
    assert shown["metadata"]["annotations"] == {LAST_APPLIED: REDACTED, "team": "web"}
    assert shown["data"] == {"password": REDACTED}
    assert obj == original  # the input is not modified


def test_redact_resource_none():
    assert redact_resource(None, {"kind": "Secret"}, Redactor()) is None
