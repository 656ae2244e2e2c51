# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import copy

import pytest
import yaml

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _plan
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._plan import (
    INSTALL,
    NONE,
    UNINSTALL,
    UPGRADE,
    plan_install,
    plan_uninstall,
    plan_upgrade,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import (
    MASK,
    REDACTED,
    REDACTED_CHANGED,
    Redactor,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release_json

MANIFEST = """\
---
# Source: sample/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  MESSAGE: "hello"
---
# Source: sample/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
"""

HOOK = {
    "name": "web-pre-upgrade",
    "kind": "Job",
    "manifest": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-pre-upgrade\nspec:\n  backoffLimit: 0\n",
    "events": ["pre-upgrade"],
    "last_run": {"phase": "Succeeded"},
}

BASE = release_json(3, chart_version="0.3.0", app_version="1.0", updated="2024-05-02T11:00:00Z",
                    config={"replicaCount": 2, "auth": {"password": "old-pw"}}, manifest=MANIFEST, hooks=[HOOK])


def make_release(edit=None) -> Release:
    data = copy.deepcopy(BASE)
    if edit:
        edit(data)
    return Release.from_json(data)


def set_in(path: str, value):
    """An edit: sets a dotted path of the release JSON."""

    def edit(data):
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[leaf] = value

    return edit


# ---- plan_upgrade ------------------------------------------------------------------------


def test_identical_release_is_no_change():
    # The rendered release differs in what never counts: revision, timestamps, hook runs, comments.
    def cosmetic(data):
        data["version"] = 4
        data["info"]["last_deployed"] = "2024-06-01T00:00:00Z"
        data["hooks"][0]["last_run"] = {}
        data["manifest"] = MANIFEST.replace("# Source:", "# Rendered from:")

    plan = plan_upgrade(make_release(), make_release(cosmetic))
    assert (plan.action, plan.changed, plan.reasons, plan.resource_changes) == (NONE, False, [], [])


def test_an_unchanged_manifest_is_not_parsed_and_an_edited_one_is(monkeypatch):
    """A no-op compares the same text: parsing it twice could only find nothing."""
    parsed: list[str] = []
    real_parse = _plan.parse_manifest
    monkeypatch.setattr(_plan, "parse_manifest", lambda text, namespace="": parsed.append(text) or real_parse(text, namespace))
    assert plan_upgrade(make_release(), make_release()).resource_changes == []
    assert parsed == []
    edited = make_release(set_in("manifest", MANIFEST.replace("replicas: 2", "replicas: 3")))
    assert [c.change for c in plan_upgrade(make_release(), edited).resource_changes] == ["changed"]
    assert len(parsed) == 2


@pytest.mark.parametrize(
    "edit, reason",
    [
        pytest.param(set_in("chart.metadata.version", "0.4.0"), "chart sample-0.3.0 -> sample-0.4.0", id="chart-version"),
        pytest.param(set_in("chart.metadata.name", "other"), "chart sample-0.3.0 -> other-0.3.0", id="chart-name"),
        pytest.param(set_in("chart.metadata.appVersion", "1.1"), "app_version 1.0 -> 1.1", id="app-version"),
        pytest.param(set_in("config.replicaCount", 3), "values changed", id="values"),
        pytest.param(set_in("config.auth.password", "new-pw"), "values changed", id="secret-value"),
        pytest.param(set_in("manifest", MANIFEST.replace("replicas: 2", "replicas: 3")), "1 resource(s) changed",
                     id="manifest"),
        pytest.param(set_in("hooks.0.manifest", HOOK["manifest"].replace("backoffLimit: 0", "backoffLimit: 1")),
                     "hooks changed", id="hook-manifest"),
        pytest.param(set_in("hooks.0.events", ["pre-upgrade", "pre-install"]), "hooks changed", id="hook-events"),
        pytest.param(set_in("hooks", []), "hooks changed", id="hook-removed"),
    ],
)
def test_changes_force_an_upgrade(edit, reason):
    plan = plan_upgrade(make_release(), make_release(edit))
    assert plan.action == UPGRADE
    assert plan.changed
    assert plan.reasons == [reason]


def test_manifest_change_lists_the_resource():
    plan = plan_upgrade(make_release(), make_release(set_in("manifest", MANIFEST.replace("replicas: 2", "replicas: 3"))))
    assert plan.summary() == [
        {"api_version": "apps/v1", "kind": "Deployment", "namespace": "apps", "name": "web", "change": "changed"},
    ]


@pytest.mark.parametrize("status", ["failed", "pending-upgrade", "superseded"])
def test_not_deployed_status_forces_an_upgrade(status):
    plan = plan_upgrade(make_release(set_in("info.status", status)), make_release())
    assert plan.action == UPGRADE
    assert plan.reasons == [f"release status is {status}"]


# ---- Plan.diff ---------------------------------------------------------------------------


def test_no_op_diff_has_equal_sides_without_secrets():
    redactor = Redactor()
    redactor.add_values(BASE["config"])
    plan = plan_upgrade(make_release(), make_release())
    [entry] = plan.diff(redactor, "apps/web")
    assert entry["before_header"] == "apps/web values (before)"
    assert entry["before"] == entry["after"]
    assert yaml.safe_load(entry["after"]) == {"replicaCount": 2, "auth": {"password": REDACTED}}


def test_diff_redacts_changed_secrets():
    redactor = Redactor()
    redactor.add_values(BASE["config"])
    redactor.add_values({"auth": {"password": "new-pw"}})

    def edit(data):
        data["config"]["auth"]["password"] = "new-pw"
        data["manifest"] += "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-dsn\ndata:\n  DSN: db://web:new-pw@db\n"

    plan = plan_upgrade(make_release(), make_release(edit))
    values_entry, resource_entry = plan.diff(redactor, "apps/web")
    assert yaml.safe_load(values_entry["before"]) == {"replicaCount": 2, "auth": {"password": REDACTED_CHANGED}}
    assert yaml.safe_load(values_entry["after"]) == {"replicaCount": 2, "auth": {"password": REDACTED_CHANGED}}
    assert resource_entry["after_header"] == "ConfigMap/apps/web-dsn (after)"
    assert yaml.safe_load(resource_entry["after"])["data"] == {"DSN": f"db://web:{MASK}@db"}
    text = yaml.safe_dump(plan.diff(redactor, "apps/web"))
    assert "old-pw" not in text and "new-pw" not in text


def test_diff_without_value_changes_lists_only_resources():
    plan = plan_upgrade(make_release(), make_release(set_in("manifest", MANIFEST.replace("replicas: 2", "replicas: 3"))))
    [entry] = plan.diff(Redactor(), "apps/web")
    assert entry["before_header"] == "Deployment/apps/web (before)"
    assert yaml.safe_load(entry["before"])["spec"] == {"replicas": 2}
    assert yaml.safe_load(entry["after"])["spec"] == {"replicas": 3}


# ---- plan_install / plan_uninstall -------------------------------------------------------


def test_plan_install():
    plan = plan_install(make_release())
    assert (plan.action, plan.reasons) == (INSTALL, ["release does not exist"])
    assert [(c.change, c.key[1]) for c in plan.resource_changes] == [("added", "Deployment"), ("added", "ConfigMap")]
    values_entry = plan.diff(Redactor(), "apps/web")[0]
    assert values_entry["before"] == ""
    assert yaml.safe_load(values_entry["after"]) == {"replicaCount": 2, "auth": {"password": REDACTED}}


@pytest.mark.parametrize("current", [None, make_release(set_in("info.status", "uninstalled"))])
def test_plan_uninstall_of_nothing(current):
    plan = plan_uninstall(current)
    assert (plan.action, plan.changed) == (NONE, False)


def test_plan_uninstall():
    plan = plan_uninstall(make_release(set_in("info.status", "failed")))
    assert plan.action == UNINSTALL
    assert plan.reasons == ["release exists (revision 3, failed)"]
    assert sorted((c.change, c.key[1]) for c in plan.resource_changes) == [("removed", "ConfigMap"), ("removed", "Deployment")]
    values_entry = plan.diff(Redactor(), "apps/web")[0]
    assert values_entry["after"] == ""
