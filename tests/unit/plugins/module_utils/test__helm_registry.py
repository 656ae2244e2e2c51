# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""OCI registry credentials: how _helm.py hands them to helm (a 0600 registry config, never
argv), how _args.py validates and redacts them, and the kinds of helm's registry errors."""

from __future__ import annotations

import base64
import json
import os
import stat
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import (
    CHART_ARG_SPEC,
    argument_spec,
    deploy_spec,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import EngineModule, TaskContext
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CHART_NOT_FOUND,
    REGISTRY_UNREACHABLE,
    UNAUTHORIZED,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import HelmClient, classify_error
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import (
    ChartSource,
    DeploySpec,
    RegistryLogin,
    oci_registry_host,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import Workspace

PASSWORD = "Registry-Unit-Secret-31x:y"
CHART = "oci://127.0.0.1:5000/charts/web"


@pytest.fixture
def workspace(tmp_path) -> t.Iterator[Workspace]:
    with Workspace(str(tmp_path)) as ws:
        yield ws


def fake_runner(calls: list[list[str]]) -> t.Callable[..., tuple[int, str, str]]:
    def run(argv: list[str], *, deadline: float) -> tuple[int, str, str]:
        calls.append(argv)
        if argv[1] == "version":
            return 0, "v4.3.1", ""
        return 0, json.dumps({"name": "web", "version": 1, "info": {"status": "deployed"}, "manifest": ""}), ""
    return run


def oci_spec(**chart: t.Any) -> DeploySpec:
    source = ChartSource(CHART, version="1.2.3", login=RegistryLogin("127.0.0.1:5000", "ci", PASSWORD), **chart)
    return DeploySpec(release="web", namespace="apps", chart=source)


# ---- the registry config -------------------------------------------------------------


@pytest.mark.parametrize("ref, host", [
    ("oci://127.0.0.1:5000/charts/web", "127.0.0.1:5000"),
    ("oci://registry.example/web:1.0.0", "registry.example"),
    ("oci://localhost:17681/a/b/c", "localhost:17681"),
    ("./charts/web", None),
    ("repo/web", None),
    ("https://charts.example/web-1.0.0.tgz", None),
])
def test_registry_host_of_a_chart_ref(ref, host):
    assert oci_registry_host(ref) == host


def test_the_login_is_a_docker_style_auth_entry_and_never_in_its_repr():
    login = RegistryLogin("127.0.0.1:5000", "ci", PASSWORD)
    config = json.loads(login.config_json())
    assert list(config["auths"]) == ["127.0.0.1:5000"]
    assert base64.b64decode(config["auths"]["127.0.0.1:5000"]["auth"]).decode() == f"ci:{PASSWORD}"
    assert PASSWORD not in repr(login) and PASSWORD not in repr(ChartSource(CHART, login=login))


@pytest.mark.parametrize("major", ["v3.22.0", "v4.3.1"])
def test_credentials_reach_helm_through_one_private_file_never_argv(workspace, major):
    calls: list[list[str]] = []
    runner = fake_runner(calls)

    def versioned(argv: list[str], *, deadline: float) -> tuple[int, str, str]:
        rc, out, err = runner(argv, deadline=deadline)
        return (0, major, "") if argv[1] == "version" else (rc, out, err)

    helm = HelmClient(versioned, "helm", workspace=workspace)
    spec = oci_spec(ca_file="/etc/registry-ca.crt")
    dry, _ = helm.upgrade_argv(spec, dry_run=True)
    real, positionals = helm.upgrade_argv(spec, dry_run=False)
    template, _ = helm.template_argv(spec)
    assert dry == real[:-1] + ["--dry-run=server"] and real[-1] == "--disable-openapi-validation", \
        "check mode and the real run must fetch the chart the same way"
    assert positionals == ["web", CHART]
    configs = {a for a in dry + template if a.startswith("--registry-config=")}
    assert len(configs) == 1, "one file per task, shared by the dry run, the real run and template"
    path = configs.pop().split("=", 1)[1]
    assert os.path.dirname(path) == workspace.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(open(path).read()) == json.loads(spec.chart.login.config_json())
    assert "--ca-file=/etc/registry-ca.crt" in real and "--ca-file=/etc/registry-ca.crt" in template
    token = spec.chart.login.auth_token()
    helm.render(spec)
    helm.upgrade(spec)
    for argv in calls + [dry, real, template]:
        assert not any(PASSWORD in a or token in a for a in argv), argv
        assert not any(a.startswith(("--password", "--username")) for a in argv), argv
    assert all(PASSWORD not in c for c in helm.commands)


def test_without_credentials_helm_keeps_its_own_registry_logins(workspace):
    helm = HelmClient(fake_runner([]), "helm", workspace=workspace)
    flags, _ = helm.template_argv(DeploySpec(release="web", namespace="apps", chart=ChartSource(CHART, version="1.2.3")))
    assert not any(a.startswith(("--registry-config", "--ca-file")) for a in flags)
    assert os.listdir(workspace.path) == []


def test_the_registry_config_is_removed_with_the_workspace(tmp_path):
    workspace = Workspace(str(tmp_path))
    helm = HelmClient(fake_runner([]), "helm", workspace=workspace)
    helm.template_argv(oci_spec())
    assert os.listdir(workspace.path)
    workspace.close()
    assert not os.path.exists(workspace.path)


# ---- validation and redaction in the shared options ------------------------------------


def params(**overrides: t.Any) -> dict[str, t.Any]:
    base = {name: spec.get("default") for name, spec in CHART_ARG_SPEC.items()}
    base.update(chart_ref=CHART, chart_version="1.2.3", chart_repo_username="ci", chart_repo_password=PASSWORD)
    base.update(overrides)
    return base


def test_deploy_spec_carries_the_login_and_the_ca(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    spec = deploy_spec(params(chart_ca_cert=str(ca)), "web", "apps", None)
    assert spec.chart.login == RegistryLogin("127.0.0.1:5000", "ci", PASSWORD)
    assert spec.chart.ca_file == str(ca)
    assert deploy_spec(params(chart_repo_username=None, chart_repo_password=None), "web", "apps", None).chart.login is None


@pytest.mark.parametrize("overrides, option, needle", [
    ({"chart_repo_password": None}, "chart_repo_password", "go together"),
    ({"chart_repo_username": None}, "chart_repo_username", "go together"),
    ({"chart_ref": "bitnami/redis"}, "chart_repo_username", "oci:// charts only"),
    ({"chart_ref": "redis", "chart_repo_url": "https://charts.example"}, "chart_repo_username", "oci:// charts only"),
    ({"chart_repo_username": "a:b"}, "chart_repo_username", "':'"),
    ({"chart_repo_username": "-u"}, "chart_repo_username", "flag"),
    ({"chart_repo_password": ""}, "chart_repo_password", "empty"),
    ({"chart_ca_cert": "/nonexistent/ca.crt"}, "chart_ca_cert", "not a file"),
])
def test_unusable_registry_options_are_refused(overrides, option, needle):
    with pytest.raises(EngineError) as caught:
        deploy_spec(params(**overrides), "web", "apps", None)
    assert caught.value.kind == "invalid_arguments"
    assert caught.value.details["option"] == option and needle in caught.value.msg
    assert PASSWORD not in caught.value.msg


def test_the_password_is_a_secret_of_the_task(kubeconfig):
    args = {"name": "web", "namespace": "apps", "kubeconfig": kubeconfig, "chart_ref": CHART,
            "chart_repo_username": "ci", "repo_password": PASSWORD, "_ansible_check_mode": False}
    with patch_module_args(args):
        module = EngineModule(argument_spec=argument_spec(**CHART_ARG_SPEC), supports_check_mode=True)
    context = TaskContext(module, needs_helm=False)
    try:
        token = RegistryLogin("", "ci", PASSWORD).auth_token()
        assert module.params["chart_repo_password"] == PASSWORD, "repo_password is kubernetes.core's alias"
        assert context.invocation()["module_args"]["chart_repo_password"] == "<redacted>"
        echoed = context.redactor.redact_text(f"GET with {PASSWORD} and Basic {token}")
        assert PASSWORD not in echoed and token not in echoed
        assert PASSWORD in module.no_log_values, "Ansible keeps masking the password"
    finally:
        context.close()


# ---- helm's registry errors, as helm 3.22 and helm 4.3 print them -------------------------

_FETCH = 'Error: failed to perform "FetchReference" on source: '


@pytest.mark.parametrize("stderr, kind", [
    (_FETCH + "127.0.0.1:17681/charts/sample:9.9.9: not found", CHART_NOT_FOUND),
    ("Error: Could not locate a version matching provided version string ^9", CHART_NOT_FOUND),  # helm 3
    ("Error: could not locate a version matching provided version string ^9", CHART_NOT_FOUND),  # helm 4
    (_FETCH + 'GET "https://127.0.0.1:17681/v2/charts/sample/manifests/0.1.0": response status code 401: '
     "unauthorized: authentication required: [map[Action:pull Class: Name:charts/sample Type:repository]]", UNAUTHORIZED),
    (_FETCH + 'GET "https://127.0.0.1:17681/v2/charts/sample/manifests/0.1.0": basic credential not found', UNAUTHORIZED),
    (_FETCH + 'Get "https://127.0.0.1:17699/v2/charts/sample/manifests/0.1.0": dial tcp 127.0.0.1:17699: '
     "connect: connection refused", REGISTRY_UNREACHABLE),
    (_FETCH + 'Get "https://127.0.0.1:17681/v2/charts/sample/manifests/0.1.0": tls: failed to verify certificate: '
     "x509: certificate signed by unknown authority", REGISTRY_UNREACHABLE),
])
def test_registry_errors_have_their_kind(stderr, kind):
    assert classify_error(stderr) == kind
