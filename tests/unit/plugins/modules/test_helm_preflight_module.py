"""helm_preflight as a whole, with helm and the cluster faked: one failure listing every
problem, the deploy's render argv, nothing written, check mode the same."""

from __future__ import annotations

import json
import sys
import typing as t

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _args, _task
from ansible_collections.ai_mesh.helm_engine.plugins.modules import helm_preflight

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"
RELEASE = {"name": "web", "namespace": "apps", "version": 1, "info": {"status": "pending-install"},
           "chart": {"metadata": {"name": "web", "version": "1.0.0"}}, "manifest": MANIFEST, "hooks": []}
KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config", "current-context": "unit",
    "clusters": [{"name": "unit", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "unit", "user": {"token": "unit-token"}}],
    "contexts": [{"name": "unit", "context": {"cluster": "unit", "user": "unit"}}],
}


class FakeKube:
    namespace_exists = True
    denied: set[str] = set()
    instances: list[FakeKube] = []

    def __init__(self, kubeconfig, context) -> None:
        self.request_count = 0
        self.methods: list[str] = []
        FakeKube.instances.append(self)

    def get_json(self, path, query=None, *, missing_ok=False):
        self.request_count += 1
        self.methods.append("GET")
        if path == "/version":
            return {"gitVersion": "v1.36.3"}
        return {"metadata": {}} if self.namespace_exists else None

    def release_history(self, name, namespace):
        self.methods.append("GET")
        return []

    def _resources_of(self, api_version):
        return {"ConfigMap": {"name": "configmaps", "namespaced": True}}

    def post_json(self, path, body):
        self.methods.append("POST " + path)
        return {"status": {"allowed": body["spec"]["resourceAttributes"]["verb"] not in self.denied}}

    def get_object(self, *args):
        self.methods.append("GET")
        return None


@pytest.fixture(autouse=True)
def fakes(monkeypatch, tmp_path) -> t.Iterator[list[list[str]]]:
    for name in ("KUBECONFIG", "K8S_AUTH_CONTEXT", "K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_SSL_CA_CERT",
                 "K8S_AUTH_VERIFY_SSL", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", str(path))
    calls: list[list[str]] = []

    def runner(argv, *, deadline):
        calls.append(list(argv))
        if argv[1] == "version":
            return 0, "v4.3.1", ""
        if "--values" in " ".join(argv) and "three" in open([a for a in argv if a.startswith("--values=")][0][9:]).read():
            return 1, "", ("Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
                           "web:\n- at '/replicaCount': got string, want integer\n")
        return 0, json.dumps(RELEASE), ""

    monkeypatch.setattr(_task, "run_process", runner)
    monkeypatch.setattr(_task, "KubeClient", FakeKube)
    FakeKube.namespace_exists, FakeKube.denied, FakeKube.instances = True, set(), []
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
    assert all(m == "GET" or m.endswith("/selfsubjectaccessreviews") for m in FakeKube.instances[0].methods)


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
    FakeKube.namespace_exists = False
    result = run(capsys, tmp_path, release_values={"replicaCount": "three"})
    assert result["failed"] is True and result["changed"] is False
    assert [(p["check"], p["kind"]) for p in result["problems"]] == [("namespace", "kubernetes_api_error"),
                                                                      ("render", "invalid_values")]
    assert result["error"]["kind"] == "kubernetes_api_error" and result["error"]["problems"] == 2
    assert "2 problem(s)" in result["msg"] and "/replicaCount" in result["msg"]


def test_forbidden_kinds_are_problems(capsys, tmp_path):
    FakeKube.denied = {"create", "patch"}
    result = run(capsys, tmp_path)
    assert {(p["check"], p["resource_kind"]) for p in result["problems"]} == {("rbac", "ConfigMap"), ("rbac", "Secret")}
    assert result["error"]["kind"] == "forbidden"


def test_missing_helm_is_one_problem_among_others(capsys, tmp_path):
    FakeKube.namespace_exists = False
    result = run(capsys, tmp_path, binary_path=str(tmp_path / "no-helm"))
    assert [(p["check"], p["kind"]) for p in result["problems"]] == [("helm", "helm_missing"), ("namespace", "kubernetes_api_error")]
