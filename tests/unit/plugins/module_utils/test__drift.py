# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Drift detection on a fake cluster: what counts, what does not, and the proof that narrows it."""

from __future__ import annotations

import base64
import copy
import typing as t

import yaml

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._drift import (
    MISSING,
    MODIFIED,
    DriftDetector,
    comparable,
    correct,
    correction_plan,
    leaves,
    owned,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import IgnoreRule
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, FakeKube, object_path

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [
                {"name": "app", "image": "web:1", "args": ["--port", "8080"],
                 "ports": [{"containerPort": 8080, "name": "http"}],
                 "resources": {"requests": {"cpu": "0.5"}}},
                {"name": "sidecar", "image": "proxy:2"},
            ]},
        },
    },
}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}, "data": {"MESSAGE": "hello"}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web-secret"}, "stringData": {"password": "s3cret"}}


def manifest(*objects: dict[str, t.Any]) -> str:
    return "".join("---\n" + yaml.safe_dump(obj) for obj in objects)


def as_live(obj: dict[str, t.Any]) -> dict[str, t.Any]:
    """What the API server makes of a manifest object: namespace, server metadata, defaults,
    normalized quantities, a Secret's stringData as data, status."""
    live = copy.deepcopy(obj)
    live["metadata"].update(namespace="apps", uid=f"uid-{obj['metadata']['name']}", generation=1,
                            annotations=dict(live["metadata"].get("annotations") or {}, **{"meta.helm.sh/release-name": "web"}))
    if obj["kind"] == "Deployment":
        live["spec"]["strategy"] = {"type": "RollingUpdate"}
        live["spec"]["template"]["metadata"].pop("annotations")  # an empty map is not stored
        app = live["spec"]["template"]["spec"]["containers"][0]
        app["resources"]["requests"]["cpu"] = "500m"
        app["ports"][0]["protocol"] = "TCP"
        app["terminationMessagePath"] = "/dev/termination-log"
        live["status"] = {"replicas": 2}
    if obj["kind"] == "Secret":
        live["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in live.pop("stringData").items()}
        live["type"] = "Opaque"
    return live


def cluster(*objects: dict[str, t.Any]) -> FakeApi:
    api = FakeApi()
    for obj in objects:
        api.put_object(as_live(obj))
    api.hooks.append(normalizing_apply(api))
    return api


def normalizing_apply(api: FakeApi) -> t.Callable[..., t.Any]:
    """A server-side apply dry run as the API server answers it: the live object with the
    declared fields set, normalized as the server would store them."""

    def hook(method: str, path: str, query: dict[str, str], body: t.Any) -> t.Any:
        if method != "PATCH" or query.get("dryRun") != "All":
            return None
        applied = as_live(body)
        merged = copy.deepcopy(api.objects[path])
        for key in ("spec", "data"):
            if key in applied:
                merged[key] = _deep(merged.get(key) or {}, applied[key])
        return merged

    return hook


def _deep(base: dict[str, t.Any], patch: dict[str, t.Any]) -> dict[str, t.Any]:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep(base[key], value)
        elif isinstance(value, list) and isinstance(base.get(key), list) and all(isinstance(v, dict) for v in value):
            by_name = {item.get("name"): item for item in base[key] if isinstance(item, dict)}
            base[key] = [_deep(by_name.get(item.get("name"), {}), item) for item in value] + \
                [item for item in base[key] if item.get("name") not in {v.get("name") for v in value}]
        else:
            base[key] = value
    return base


def detect(api: FakeApi, *objects: dict[str, t.Any], rules: t.Sequence[IgnoreRule] = ()) -> tuple[list, DriftDetector]:
    detector = DriftDetector(FakeKube.bind(api)(), "apps", rules)
    return detector.detect(manifest(*objects)), detector


def edit(api: FakeApi, kind_path: str, change: t.Callable[[dict[str, t.Any]], None]) -> None:
    change(api.objects[kind_path])


DEPLOYMENT_PATH = object_path("apps/v1", "Deployment", "apps", "web")
CONFIGMAP_PATH = object_path("v1", "ConfigMap", "apps", "web-config")
SECRET_PATH = object_path("v1", "Secret", "apps", "web-secret")


def test_what_the_server_adds_or_normalizes_is_not_drift():
    api = cluster(DEPLOYMENT, CONFIGMAP, SECRET)
    drift, detector = detect(api, DEPLOYMENT, CONFIGMAP, SECRET)
    assert drift == []
    # cpu 0.5 is stored as 500m: the one suspect, cleared by one server-side apply dry run.
    assert detector.proofs == 1
    assert api.count("PATCH") == 1 and api.writes[-1][0] == "PATCH" and "/deployments/web" in api.writes[-1][1]


def test_one_read_per_kind_and_no_proof_when_nothing_looks_changed():
    api = cluster(CONFIGMAP, SECRET)
    drift, detector = detect(api, CONFIGMAP, SECRET)
    assert drift == [] and detector.proofs == 0 and api.writes == []
    assert len(api.requests) == 2  # a GET each: one object of each kind


def test_a_changed_field_a_scaled_deployment_and_a_missing_object():
    api = cluster(DEPLOYMENT, CONFIGMAP)
    edit(api, DEPLOYMENT_PATH, lambda d: d["spec"].update(replicas=5))
    edit(api, DEPLOYMENT_PATH, lambda d: d["spec"]["template"]["spec"]["containers"][1].update(image="proxy:3"))
    edit(api, CONFIGMAP_PATH, lambda c: c["data"].update(MESSAGE="edited"))
    drift, _ = detect(api, DEPLOYMENT, CONFIGMAP, SECRET)
    found = {(d.kind, d.reason): d.paths for d in drift}
    assert found == {
        ("Deployment", MODIFIED): ["/spec/replicas", "/spec/template/spec/containers/1/image"],
        ("ConfigMap", MODIFIED): ["/data/MESSAGE"],
        ("Secret", MISSING): [],
    }
    assert drift[0].as_dict() == {"api_version": "apps/v1", "kind": "Deployment", "namespace": "apps", "name": "web",
                                  "reason": "modified", "paths": ["/spec/replicas", "/spec/template/spec/containers/1/image"]}


def test_entries_and_fields_others_added_are_not_drift_and_order_does_not_count():
    api = cluster(DEPLOYMENT)

    def others(live: dict[str, t.Any]) -> None:
        containers = live["spec"]["template"]["spec"]["containers"]
        containers.reverse()                                                 # another order
        containers.append({"name": "injected", "image": "mesh:1"})           # a sidecar a webhook added
        containers[1]["env"] = [{"name": "EXTRA", "value": "1"}]             # an env entry added by hand
        live["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}
        live["metadata"]["labels"]["team"] = "a"

    edit(api, DEPLOYMENT_PATH, others)
    assert detect(api, DEPLOYMENT)[0] == []


def test_a_changed_list_of_scalars_is_one_path():
    api = cluster(DEPLOYMENT)
    edit(api, DEPLOYMENT_PATH, lambda d: d["spec"]["template"]["spec"]["containers"][0].update(args=["--port", "9090"]))
    [drift] = detect(api, DEPLOYMENT)[0]
    assert drift.paths == ["/spec/template/spec/containers/0/args"]


def test_a_secret_is_compared_as_data_and_a_changed_value_is_drift():
    api = cluster(SECRET)
    edit(api, SECRET_PATH, lambda s: s["data"].update(password=base64.b64encode(b"other").decode(), extra="eA=="))
    [drift] = detect(api, SECRET)[0]
    assert (drift.reason, drift.paths) == (MODIFIED, ["/data/password"])


def test_ignore_rules_and_the_opt_out_annotation():
    api = cluster(DEPLOYMENT, CONFIGMAP)
    edit(api, DEPLOYMENT_PATH, lambda d: d["spec"].update(replicas=5))
    edit(api, CONFIGMAP_PATH, lambda c: c["data"].update(MESSAGE="edited"))
    rules = [IgnoreRule("Deployment", None, ("/spec/replicas",)), IgnoreRule(None, "web-config", ("/data",))]
    assert detect(api, DEPLOYMENT, CONFIGMAP, rules=rules)[0] == []
    # A rule for another name does not cover it.
    [drift] = detect(api, DEPLOYMENT, rules=[IgnoreRule("Deployment", "other", ("/spec/replicas",))])[0]
    assert drift.paths == ["/spec/replicas"]
    edit(api, DEPLOYMENT_PATH, lambda d: d["metadata"].setdefault("annotations", {}).update(
        {"helm-engine.ai-mesh.io/drift": "ignore"}))
    assert detect(api, DEPLOYMENT)[0] == []
    # A missing object opted out in the chart is not reported either.
    opted = dict(SECRET, metadata={"name": "web-secret", "labels": {"helm-engine.ai-mesh.io/drift": "ignore"}})
    assert detect(api, opted)[0] == []


def test_an_unprovable_suspect_counts_as_drift():
    api = cluster(DEPLOYMENT)
    api.hooks.clear()  # no dry run answers: it is forbidden
    api.fail("PATCH", "/deployments/web", status=403, reason="forbidden")
    [drift] = detect(api, DEPLOYMENT)[0]
    # Without the dry run, cpu 0.5 against 500m cannot be cleared.
    assert drift.paths == ["/spec/template/spec/containers/0/resources/requests/cpu"]


def test_leaves_of_an_empty_mapping_set_nothing_and_keyed_lists_match_by_name():
    declared = {"a": {}, "b": [], "c": None, "d": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}
    live = {"d": [{"name": "y", "v": 2}, {"name": "x", "v": 3}]}
    assert [(p, d, l) for p, d, l in leaves(declared, live)] == [
        ("/d/0/name", "x", "x"), ("/d/0/v", 1, 3), ("/d/1/name", "y", "y"), ("/d/1/v", 2, 2)]


def test_comparable_drops_identity_and_status_and_turns_string_data_into_data():
    shown = comparable(dict(SECRET, status={"x": 1}, metadata={"name": "web-secret", "namespace": "apps", "labels": {"a": "b"}}))
    assert shown == {"metadata": {"labels": {"a": "b"}}, "data": {"password": base64.b64encode(b"s3cret").decode()}}


def test_correct_applies_each_drifted_object_with_helms_ownership_and_force():
    api = cluster(DEPLOYMENT)
    edit(api, DEPLOYMENT_PATH, lambda d: d["spec"].update(replicas=5))
    api.hooks.clear()
    drift, _ = detect(api, DEPLOYMENT, CONFIGMAP)
    correct(FakeKube.bind(api)(), "web", "apps", drift)
    applied = [(m, p) for m, p, _b in api.writes if m == "PATCH"]
    assert applied[-2:] == [(m, p) for m, p in [("PATCH", DEPLOYMENT_PATH), ("PATCH", CONFIGMAP_PATH)]]
    assert api.objects[DEPLOYMENT_PATH]["spec"]["replicas"] == 2
    recreated = api.objects[CONFIGMAP_PATH]
    assert recreated["data"] == {"MESSAGE": "hello"}
    assert recreated["metadata"]["annotations"]["meta.helm.sh/release-name"] == "web"
    assert recreated["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_owned_keeps_the_charts_labels_and_adds_helms():
    obj = owned(dict(CONFIGMAP, metadata={"name": "web-config", "labels": {"app": "web"}}), "web", "apps")
    assert obj["metadata"]["labels"] == {"app": "web", "app.kubernetes.io/managed-by": "Helm"}
    assert obj["metadata"]["annotations"] == {"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": "apps"}
    assert "annotations" not in CONFIGMAP["metadata"]  # the input is left as it was


def test_the_correction_plan_diffs_live_against_declared_for_the_drifted_fields_only():
    api = cluster(DEPLOYMENT)
    edit(api, DEPLOYMENT_PATH, lambda d: d["spec"].update(replicas=5))
    drift, _ = detect(api, DEPLOYMENT, CONFIGMAP)
    plan = correction_plan(drift, {"message": "hello"})
    assert plan.action == "correct_drift" and plan.changed
    assert plan.reasons == ["drift: Deployment/web (/spec/replicas)", "drift: ConfigMap/web-config (missing)"]
    assert [c.summary()["change"] for c in plan.resource_changes] == ["changed", "added"]
    before, after = plan.resource_changes[0].before, plan.resource_changes[0].after
    assert (before["spec"], after["spec"]) == ({"replicas": 5}, {"replicas": 2})


def test_a_refused_correction_says_what_was_put_back_and_that_the_task_changed_something():
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import FORBIDDEN, EngineError

    api = cluster(DEPLOYMENT)
    edit(api, DEPLOYMENT_PATH, lambda d: d["spec"].update(replicas=5))
    drift, _ = detect(api, DEPLOYMENT, CONFIGMAP)
    api.hooks.clear()
    api.fail("PATCH", "/configmaps/web-config", status=403, reason="configmaps is forbidden")
    try:
        correct(FakeKube.bind(api)(), "web", "apps", drift)
    except EngineError as exc:
        assert exc.kind == FORBIDDEN and exc.extra["changed"] is True
        assert exc.msg.startswith("Putting back ConfigMap/web-config (missing) failed (1 of 2 drifted object(s) put back)")
    else:
        raise AssertionError("the refusal was not raised")
    assert api.objects[DEPLOYMENT_PATH]["spec"]["replicas"] == 2


def release_configmaps(release: str, count: int = 3) -> list[dict[str, t.Any]]:
    return [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": f"{release}-cm-{i}", "labels": {"app.kubernetes.io/instance": release, "tier": "web"}},
             "data": {"index": str(i)}} for i in range(count)]


def test_a_namespace_of_many_releases_is_read_by_the_labels_its_objects_share():
    """One LIST narrowed to the labels the release's objects all declare, not the whole
    namespace for each release; and nothing of another release is read."""
    mine, theirs = release_configmaps("web"), release_configmaps("other")
    api = cluster(*mine, *theirs)
    drift, _ = detect(api, *mine)
    assert drift == []
    lists = [query for path, query in api.reads if path.endswith("/configmaps")]
    assert lists == [{"limit": "500", "labelSelector": "app.kubernetes.io/instance=web,tier=web"}]


def test_an_object_whose_label_was_removed_is_read_by_name_and_its_drift_found():
    mine = release_configmaps("web")
    api = cluster(*mine)

    def relabel_and_edit(obj: dict[str, t.Any]) -> None:
        obj["metadata"]["labels"].pop("tier")
        obj["data"]["index"] = "edited"

    edit(api, object_path("v1", "ConfigMap", "apps", "web-cm-1"), relabel_and_edit)
    drift, _ = detect(api, *mine)
    assert [(d.name, d.reason, d.paths) for d in drift] == [("web-cm-1", "modified", ["/data/index"])]
    assert [path for path, _ in api.reads if "/configmaps/" in path] == [object_path("v1", "ConfigMap", "apps", "web-cm-1")]


def test_objects_that_share_no_label_are_listed_whole():
    mine = release_configmaps("web", 2)
    mine[1]["metadata"]["labels"] = {"app.kubernetes.io/instance": "web-two"}
    api = cluster(*mine, *release_configmaps("other"))
    drift, _ = detect(api, *mine)
    assert drift == []
    assert [query for path, query in api.reads if path.endswith("/configmaps")] == [{"limit": "500"}]
