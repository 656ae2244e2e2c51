"""helm_preflight as a whole, with helm and the cluster faked: one failure listing every
problem, the deploy's render argv, nothing written, check mode the same."""

from __future__ import annotations

import json
import sys
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _args, _task
from ansible_collections.ai_mesh.helm_engine.plugins.modules import helm_preflight
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, FakeKube

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"
RELEASE = {"name": "web", "namespace": "apps", "version": 1, "info": {"status": "pending-install"},
           "chart": {"metadata": {"name": "web", "version": "1.0.0"}}, "manifest": MANIFEST, "hooks": []}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}


def access_reviews(denied: set[str]) -> t.Callable[..., t.Any]:
    """SelfSubjectAccessReviews: allowed unless the verb is denied."""

    def hook(method: str, path: str, _query: t.Any, body: t.Any) -> t.Any:
        if method == "POST" and path.endswith("/selfsubjectaccessreviews"):
            return {"status": {"allowed": body["spec"]["resourceAttributes"]["verb"] not in denied}}
        return None

    return hook


# The fake cluster of the running test.
API: list[FakeApi] = []


@pytest.fixture(autouse=True)
def fakes(monkeypatch, kubeconfig) -> t.Iterator[list[list[str]]]:
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", kubeconfig)
    calls: list[list[str]] = []

    def runner(argv, *, deadline, env):
        calls.append(list(argv))
        if argv[1] == "version":
            return 0, "v4.3.1", ""
        if "--values" in " ".join(argv) and "three" in open([a for a in argv if a.startswith("--values=")][0][9:]).read():
            return 1, "", ("Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
                           "web:\n- at '/replicaCount': got string, want integer\n")
        return 0, json.dumps(RELEASE), ""

    monkeypatch.setattr(_task, "run_process", runner)
    API.clear()
    API.append(FakeApi())
    API[0].put_object(NAMESPACE)
    API[0].hooks.append(access_reviews(set()))
    monkeypatch.setattr(_task, "KubeClient", FakeKube.bind(API[0]))
    yield calls


def run(capsys, tmp_path, **args) -> dict:
    chart = tmp_path / "chart"
    chart.mkdir(exist_ok=True)
    params = dict({"name": "web", "namespace": "apps", "chart_ref": str(chart), "binary_path": sys.executable}, **args)
    with patch_module_args(params), pytest.raises(SystemExit):
        helm_preflight.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("check", [False, True])
def test_passes_with_two_helm_processes_and_only_reads(capsys, tmp_path, fakes, check):
    result = run(capsys, tmp_path, _ansible_check_mode=check)
    assert result["passed"] is True and result["changed"] is False and not result.get("failed")
    assert [argv[1] for argv in fakes] == ["version", "upgrade"]
    assert "--dry-run=server" in fakes[1]
    assert all(method == "GET" or path.endswith("/selfsubjectaccessreviews") for method, path in API[0].requests)


def test_the_render_argv_is_helm_deploys_dry_run(capsys, tmp_path, fakes):
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import HelmClient
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import Workspace

    run(capsys, tmp_path, release_values={"replicaCount": 2}, create_namespace=True)
    spec = _args.deploy_spec({"chart_ref": str(tmp_path / "chart"), "release_values": {"replicaCount": 2},
                                "create_namespace": True}, "web", "apps", None)
    with Workspace(str(tmp_path)) as workspace:
        client = HelmClient(lambda argv, deadline: (0, "v4.3.1", ""), "helm", workspace=workspace)
        expected, _ = client.upgrade_argv(spec, dry_run=True)
    actual = [a for a in fakes[1][1:] if not a.startswith(("--values=", "--kubeconfig=", "--namespace=", "--output="))]
    assert actual[:actual.index("--")] == [a for a in expected if not a.startswith("--values=")]
    assert sum(a.startswith("--values=") for a in fakes[1]) == sum(a.startswith("--values=") for a in expected) == 1


def test_every_problem_in_one_failure(capsys, tmp_path):
    del API[0].objects["/api/v1/namespaces/apps"]
    result = run(capsys, tmp_path, release_values={"replicaCount": "three"})
    assert result["failed"] is True and result["changed"] is False
    assert [(p["check"], p["kind"]) for p in result["problems"]] == [("namespace", "kubernetes_api_error"),
                                                                      ("render", "invalid_values")]
    assert result["error"]["kind"] == "kubernetes_api_error" and result["error"]["problems"] == 2
    assert "2 problem(s)" in result["msg"] and "/replicaCount" in result["msg"]


def test_forbidden_kinds_are_problems(capsys, tmp_path):
    API[0].hooks[:] = [access_reviews({"create", "patch"})]
    result = run(capsys, tmp_path)
    assert {(p["check"], p["resource_kind"]) for p in result["problems"]} == {("rbac", "ConfigMap"), ("rbac", "Secret")}
    assert result["error"]["kind"] == "forbidden"


def test_missing_helm_is_one_problem_among_others(capsys, tmp_path):
    del API[0].objects["/api/v1/namespaces/apps"]
    result = run(capsys, tmp_path, binary_path=str(tmp_path / "no-helm"))
    assert [(p["check"], p["kind"]) for p in result["problems"]] == [("helm", "helm_missing"), ("namespace", "kubernetes_api_error")]
