# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CHART_NOT_FOUND,
    CLUSTER_UNREACHABLE,
    FORBIDDEN,
    HELM_FAILED,
    HELM_MISSING,
    HELM_OUTPUT,
    HELM_UNSUPPORTED,
    HOOK_FAILED,
    INVALID_ARGUMENTS,
    INVALID_VALUES,
    RELEASE_LOCKED,
    RELEASE_NOT_FOUND,
    RENDER_FAILED,
    RESOURCE_CONFLICT,
    TIMEOUT,
    UNAUTHORIZED,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import (
    ChartSource,
    DeploySpec,
    HelmVersion,
    RollbackSpec,
    SetValue,
    UninstallSpec,
    classify_error,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import MASK, Redactor

HELM3 = "v3.22.0"
HELM4 = "v4.3.1"
CHART = "oci://registry.example/charts/web"


def deploy_spec(**overrides) -> DeploySpec:
    args = {"release": "web", "namespace": "apps", "chart": ChartSource(CHART, version="1.2.3")}
    args.update(overrides)
    return DeploySpec(**args)


def flags_after_install(argv: list[str]) -> list[str]:
    return argv[argv.index("--install") + 1:]


# ---- HelmVersion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("v3.22.0", (3, 22, 0, "v3.22.0")),
        ("v4.3.1+g1b2c3d4\n", (4, 3, 1, "v4.3.1")),
        ("3.13.2", (3, 13, 2, "v3.13.2")),
        ('version.BuildInfo{Version:"v3.14.4", GitCommit:"81c902a1"}', (3, 14, 4, "v3.14.4")),
    ],
)
def test_version_parse(text, expected):
    version = HelmVersion.parse(text)
    assert (version.major, version.minor, version.patch, version.raw) == expected


@pytest.mark.parametrize("text", ["", "not a version", "v3.x", "helm: command not found"])
def test_version_parse_garbage_is_unsupported(text):
    with pytest.raises(EngineError) as caught:
        HelmVersion.parse(text)
    assert caught.value.kind == HELM_UNSUPPORTED


@pytest.mark.parametrize("text", ["v3.13.0", "v3.13.3", "v3.22.0", "v4.0.0", "v4.3.1"])
def test_supported_versions(text):
    HelmVersion.parse(text).check_supported()


@pytest.mark.parametrize("text", ["v2.17.0", "v3.0.0", "v3.12.3", "v5.0.0"])
def test_unsupported_versions(text):
    with pytest.raises(EngineError) as caught:
        HelmVersion.parse(text).check_supported()
    assert caught.value.kind == HELM_UNSUPPORTED
    assert text in caught.value.msg


# ---- classify_error ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "stderr, kind",
    [
        ("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress", RELEASE_LOCKED),
        (
            'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:1/version": '
            "dial tcp 127.0.0.1:1: connect: connection refused",
            CLUSTER_UNREACHABLE,
        ),
        (
            'Error: INSTALLATION FAILED: Kubernetes cluster unreachable: Get "https://kube.example.invalid:6443/version": '
            "dial tcp: lookup kube.example.invalid: no such host",
            CLUSTER_UNREACHABLE,
        ),
        ("Error: INSTALLATION FAILED: failed pre-install: 1 error occurred:\n\t* job failed: BackoffLimitExceeded", HOOK_FAILED),
        # The hook is the cause; the deadline is only its symptom.
        ("Error: UPGRADE FAILED: pre-upgrade hooks failed: 1 error occurred:\n\t* timed out waiting for the condition", HOOK_FAILED),
        ("Error: UPGRADE FAILED: context deadline exceeded", TIMEOUT),
        ("Error: INSTALLATION FAILED: timed out waiting for the condition", TIMEOUT),
        ("Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the following chart(s):\n"
         "sample:\n- replicaCount: Invalid type. Expected: integer, given: string", INVALID_VALUES),
        ('Error: failed parsing --set data: key "image" has no value (cannot end with ,)', INVALID_VALUES),
        ('Error: path "./nope" not found', CHART_NOT_FOUND),
        ("Error: repo bitnami not found", CHART_NOT_FOUND),
        ('Error: chart "web" version "9.9.9" not found in https://charts.example.com repository', CHART_NOT_FOUND),
        (
            "Error: INSTALLATION FAILED: rendered manifests contain a resource that already exists. Unable to continue "
            'with install: ConfigMap "web-config" in namespace "apps" exists and cannot be imported into the current '
            "release: invalid ownership metadata",
            RESOURCE_CONFLICT,
        ),
        (
            'Error: UPGRADE FAILED: cannot patch "web" with kind Deployment: Deployment.apps "web" is invalid: '
            "spec.selector: Invalid value: v1.LabelSelector{}: field is immutable",
            RESOURCE_CONFLICT,
        ),
        ("Error: INSTALLATION FAILED: Unauthorized", UNAUTHORIZED),
        # Credentials are the cause even when helm words it as "unreachable".
        ("Error: Kubernetes cluster unreachable: the server has asked for the client to provide credentials", UNAUTHORIZED),
        (
            'Error: INSTALLATION FAILED: configmaps is forbidden: User "system:serviceaccount:ci:deployer" cannot '
            'create resource "configmaps" in API group "" in the namespace "apps"',
            FORBIDDEN,
        ),
        (
            'Error: query: failed to query with labels: secrets is forbidden: User "dev" cannot list resource '
            '"secrets" in API group "" in the namespace "apps"',
            FORBIDDEN,
        ),
        ('Error: INSTALLATION FAILED: parse error at (sample/templates/configmap.yaml:7): function "nope" not defined', RENDER_FAILED),
        (
            'Error: INSTALLATION FAILED: template: sample/templates/deployment.yaml:12:20: executing '
            '"sample/templates/deployment.yaml" at <.Values.image.tag>: nil pointer evaluating interface {}.tag',
            RENDER_FAILED,
        ),
        ("Error: INSTALLATION FAILED: execution error at (sample/templates/secret.yaml:3:4): auth.password is required", RENDER_FAILED),
        ('Error: UPGRADE FAILED: "web" has no deployed releases', RELEASE_NOT_FOUND),
        ("Error: uninstall: Release not loaded: web: release: not found", RELEASE_NOT_FOUND),
        ("Error: something nobody has seen before", HELM_FAILED),
        ("", HELM_FAILED),
    ],
)
def test_classify_error(stderr, kind):
    assert classify_error(stderr) == kind


def test_classify_error_default_kind():
    assert classify_error("Error: something new", default="custom") == "custom"


def test_classify_template_yaml_error_is_render_failed():
    # What helm prints when a template renders invalid YAML (releaseutil wraps sigs.k8s.io/yaml).
    stderr = (
        "Error: INSTALLATION FAILED: YAML parse error on sample/templates/configmap.yaml: "
        "error converting YAML to JSON: yaml: line 5: did not find expected key"
    )
    assert classify_error(stderr) == RENDER_FAILED


def test_classify_values_file_yaml_error_is_invalid_values():
    stderr = (
        "Error: INSTALLATION FAILED: failed to parse /tmp/values.yaml: "
        "error converting YAML to JSON: yaml: line 2: mapping values are not allowed in this context"
    )
    assert classify_error(stderr) == INVALID_VALUES


def test_helm_error_to_result():
    error = EngineError(TIMEOUT, "timed out", command=["helm", "upgrade", "web"], rc=1, stderr="Error: timed out",
                      details={"pending": {"revision": 3}})
    error.extra["changed"] = True
    assert error.to_result() == {
        "msg": "timed out",
        "changed": True,
        "error": {
            "kind": TIMEOUT,
            "message": "timed out",
            "rc": 1,
            "stderr": "Error: timed out",
            "command": "helm upgrade web",
            "pending": {"revision": 3},
        },
    }


# ---- version detection -------------------------------------------------------------------


def test_version_is_detected_once(make_client):
    client, fake = make_client(HELM4)
    client.upgrade_argv(deploy_spec(wait=True), dry_run=True)
    client.upgrade_argv(deploy_spec(wait=True), dry_run=False)
    client.rollback_argv(RollbackSpec(release="web", namespace="apps", revision=2, force=True))
    assert fake.calls == [["helm", "version", "--template", "{{.Version}}"]]
    assert client.version.raw == HELM4
    assert client.major == 4


def test_unsupported_helm_fails_the_first_argv(make_client):
    client, _ = make_client("v3.12.3")
    with pytest.raises(EngineError) as caught:
        client.upgrade_argv(deploy_spec(atomic=True), dry_run=False)
    assert caught.value.kind == HELM_UNSUPPORTED


# ---- upgrade_argv ------------------------------------------------------------------------


def test_upgrade_argv_minimal(make_client):
    client, _ = make_client(HELM3)
    assert client.upgrade_argv(deploy_spec(), dry_run=False) == [
        "upgrade", "web", CHART, "--version", "1.2.3", "--install", "--reset-values",
    ]


@pytest.mark.parametrize(
    "overrides, helm3_flags, helm4_flags",
    [
        pytest.param({}, ["--reset-values"], ["--reset-values"], id="defaults"),
        pytest.param({"wait": True}, ["--reset-values", "--wait"], ["--reset-values", "--wait=watcher"], id="wait"),
        pytest.param(
            {"wait": True, "wait_strategy": "legacy"},
            ["--reset-values", "--wait"],
            ["--reset-values", "--wait=legacy"],
            id="wait-strategy",
        ),
        pytest.param(
            {"atomic": True},
            ["--reset-values", "--wait", "--atomic"],
            ["--reset-values", "--wait=watcher", "--rollback-on-failure"],
            id="atomic-implies-wait",
        ),
        pytest.param({"force": True}, ["--reset-values", "--force"], ["--reset-values", "--force-replace"], id="force"),
        pytest.param({"wait_for_jobs": True}, ["--reset-values"], ["--reset-values"], id="wait-for-jobs-needs-wait"),
        pytest.param(
            {"wait": True, "wait_for_jobs": True, "timeout": "5m0s"},
            ["--reset-values", "--wait", "--wait-for-jobs", "--timeout", "5m0s"],
            ["--reset-values", "--wait=watcher", "--wait-for-jobs", "--timeout", "5m0s"],
            id="wait-for-jobs",
        ),
        pytest.param({"reuse_values": True}, ["--reuse-values"], ["--reuse-values"], id="reuse-values"),
        pytest.param({"reset_values": False}, [], [], id="no-reset"),
        pytest.param({"server_side": "false"}, ["--reset-values"], ["--reset-values", "--server-side=false"], id="ssa-off"),
        pytest.param(
            {
                "create_namespace": True,
                "skip_crds": True,
                "disable_hooks": True,
                "description": "deploy 42",
                "history_max": 5,
                "take_ownership": True,
                "cleanup_on_fail": True,
            },
            ["--create-namespace", "--reset-values", "--skip-crds", "--no-hooks", "--description", "deploy 42",
             "--history-max", "5", "--take-ownership", "--cleanup-on-fail"],
            ["--create-namespace", "--reset-values", "--skip-crds", "--no-hooks", "--description", "deploy 42",
             "--history-max", "5", "--take-ownership", "--cleanup-on-fail"],
            id="version-independent",
        ),
    ],
)
@pytest.mark.parametrize("version", [HELM3, HELM4])
def test_upgrade_argv_flags(make_client, version, overrides, helm3_flags, helm4_flags):
    client, _ = make_client(version)
    argv = client.upgrade_argv(deploy_spec(**overrides), dry_run=False)
    assert flags_after_install(argv) == (helm4_flags if version == HELM4 else helm3_flags)


def test_upgrade_argv_server_side_on_helm4(make_client):
    client, _ = make_client(HELM4)
    argv = client.upgrade_argv(deploy_spec(server_side="true", force_conflicts=True), dry_run=False)
    assert flags_after_install(argv) == ["--reset-values", "--server-side=true", "--force-conflicts"]


@pytest.mark.parametrize("overrides", [{"server_side": "true"}, {"server_side": "auto"}, {"force_conflicts": True}])
def test_upgrade_argv_server_side_needs_helm4(make_client, overrides):
    client, _ = make_client(HELM3)
    with pytest.raises(EngineError) as caught:
        client.upgrade_argv(deploy_spec(**overrides), dry_run=False)
    assert caught.value.kind == HELM_UNSUPPORTED
    assert HELM3 in caught.value.msg


@pytest.mark.parametrize("version", [HELM3, HELM4])
def test_dry_run_differs_only_by_dry_run_server(make_client, version):
    client, _ = make_client(version)
    spec = deploy_spec(
        values_files=["base.yaml"],
        values={"replicaCount": 3, "auth": {"password": "hunter22"}},
        set_values=[SetValue("image.tag=1.2")],
        wait=True,
        atomic=True,
        force=True,
        timeout="5m0s",
    )
    dry = client.upgrade_argv(spec, dry_run=True)
    real = client.upgrade_argv(spec, dry_run=False)
    assert dry[-1] == "--dry-run=server"
    assert real == dry[:-1]
    assert "--dry-run=server" not in real
    # The very same values file, written once.
    assert os.listdir(client.workspace.path) == [os.path.basename(real[real.index("base.yaml") + 2])]


def test_values_go_through_a_private_file(make_client):
    client, _ = make_client(HELM4)
    values = {"replicaCount": 3, "auth": {"password": "hunter22"}}
    argv = client.upgrade_argv(deploy_spec(values=values), dry_run=False)
    path = argv[argv.index("--values") + 1]
    assert os.path.dirname(path) == client.workspace.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle) == values
    assert not any("hunter22" in arg or "replicaCount" in arg for arg in argv)


def test_values_precedence_files_then_values_then_set(make_client):
    client, _ = make_client(HELM3)
    spec = deploy_spec(
        values_files=["base.yaml", "prod.yaml"],
        values={"replicaCount": 3},
        set_values=[SetValue("image.tag=1.2"), SetValue("name=web", "string"), SetValue('ports=[80]', "json")],
    )
    argv = client.upgrade_argv(spec, dry_run=False)
    start = argv.index("--values")
    generated = argv[start + 5]
    assert argv[start:start + 12] == [
        "--values", "base.yaml", "--values", "prod.yaml", "--values", generated,
        "--set", "image.tag=1.2", "--set-string", "name=web", "--set-json", "ports=[80]",
    ]


def test_values_file_reused_per_distinct_values(make_client):
    client, _ = make_client(HELM3)

    def values_path(values):
        argv = client.upgrade_argv(deploy_spec(values=values), dry_run=False)
        return argv[argv.index("--values") + 1]

    first = values_path({"a": 1, "b": 2})
    assert values_path({"b": 2, "a": 1}) == first
    assert values_path({"a": 2}) != first
    assert len(os.listdir(client.workspace.path)) == 2


def test_values_need_a_workspace(make_client):
    client, _ = make_client(HELM3, with_workspace=False)
    with pytest.raises(EngineError) as caught:
        client.upgrade_argv(deploy_spec(values={"a": 1}), dry_run=False)
    assert caught.value.kind == INVALID_ARGUMENTS


def test_local_chart_path_is_expanded(make_client, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    client, _ = make_client(HELM3)
    spec = deploy_spec(chart=ChartSource("~/charts/web", repo_url=None, dependency_update=True))
    assert client.upgrade_argv(spec, dry_run=False)[:5] == [
        "upgrade", "web", str(tmp_path / "charts" / "web"), "--dependency-update", "--install",
    ]


def test_repo_chart_argv(make_client):
    client, _ = make_client(HELM3)
    spec = deploy_spec(chart=ChartSource("web", repo_url="https://charts.example.com", version="2.0.0"))
    assert client.upgrade_argv(spec, dry_run=False)[:8] == [
        "upgrade", "web", "web", "--repo", "https://charts.example.com", "--version", "2.0.0", "--install",
    ]


# ---- rollback_argv / uninstall_argv ------------------------------------------------------


@pytest.mark.parametrize(
    "version, expected",
    [
        (HELM3, ["rollback", "web", "4", "--wait", "--timeout", "2m", "--cleanup-on-fail", "--force", "--no-hooks",
                 "--history-max", "10"]),
        (HELM4, ["rollback", "web", "4", "--wait=watcher", "--timeout", "2m", "--cleanup-on-fail", "--force-replace",
                 "--no-hooks", "--history-max", "10"]),
    ],
)
def test_rollback_argv(make_client, version, expected):
    client, _ = make_client(version)
    spec = RollbackSpec(release="web", namespace="apps", revision=4, wait=True, timeout="2m", cleanup_on_fail=True,
                        force=True, disable_hooks=True, history_max=10)
    assert client.rollback_argv(spec) == expected


def test_rollback_argv_minimal_and_wait_strategy(make_client):
    client, _ = make_client(HELM4)
    assert client.rollback_argv(RollbackSpec(release="web", namespace="apps", revision=1)) == ["rollback", "web", "1"]
    spec = RollbackSpec(release="web", namespace="apps", revision=1, wait=True, wait_strategy="legacy")
    assert client.rollback_argv(spec) == ["rollback", "web", "1", "--wait=legacy"]


@pytest.mark.parametrize(
    "spec, expected",
    [
        (UninstallSpec(release="web", namespace="apps"), ["uninstall", "web"]),
        (
            UninstallSpec(release="web", namespace="apps", wait=True, timeout="90s", keep_history=True, disable_hooks=True),
            ["uninstall", "web", "--wait", "--timeout", "90s", "--keep-history", "--no-hooks"],
        ),
    ],
)
def test_uninstall_argv(make_client, spec, expected):
    client, _ = make_client(HELM4)
    assert client.uninstall_argv(spec) == expected


# ---- running -----------------------------------------------------------------------------


def test_run_appends_global_args_and_records_redacted_command(make_client):
    redactor = Redactor()
    redactor.add_secret("hunter22")
    client, fake = make_client(HELM3, redactor=redactor, kubeconfig="/tmp/kc", context="kind-web")
    result = client.run(["upgrade", "web", "./chart", "--set", "auth.password=hunter22", "--description", "pw hunter22"],
                        namespace="apps")
    assert fake.calls == [[
        "helm", "upgrade", "web", "./chart", "--set", "auth.password=hunter22", "--description", "pw hunter22",
        "--namespace", "apps", "--kubeconfig", "/tmp/kc", "--kube-context", "kind-web",
    ]]
    assert fake.kwargs == [{"expand_user_and_vars": False}]
    shown = (f"helm upgrade web ./chart --set auth.password={MASK} --description pw {MASK} "
             "--namespace apps --kubeconfig /tmp/kc --kube-context kind-web")
    assert client.commands == [shown]
    assert " ".join(result.argv) == shown
    assert client.process_count == 1


def test_process_count_includes_version_detection(make_client):
    client, fake = make_client(HELM4, {"upgrade": (0, '{"name": "web", "version": 1}', "")})
    spec = deploy_spec()
    assert client.render(spec) == {"name": "web", "version": 1}
    client.upgrade(spec)
    assert client.process_count == 3
    assert [argv[1] for argv in fake.calls] == ["version", "upgrade", "upgrade"]
    assert len(client.commands) == 3


def test_render_and_upgrade_run_the_same_argv_but_dry_run(make_client):
    client, fake = make_client(HELM4, {"upgrade": (0, "{}", "")}, kubeconfig="/tmp/kc")
    spec = deploy_spec(values={"auth": {"password": "hunter22"}}, atomic=True)
    client.render(spec)
    client.upgrade(spec)
    dry, real = fake.calls_of("upgrade")
    assert "--dry-run=server" in dry
    assert real == [arg for arg in dry if arg != "--dry-run=server"]
    assert real[-6:] == ["--output", "json", "--namespace", "apps", "--kubeconfig", "/tmp/kc"]


def test_failing_run_raises_classified_redacted_error(make_client):
    redactor = Redactor()
    redactor.add_secret("hunter22")
    stderr = ("Error: INSTALLATION FAILED: execution error at (sample/templates/secret.yaml:3:4): "
              "password hunter22 is too weak\n")
    client, _ = make_client(HELM3, {"upgrade": (1, "", stderr)}, redactor=redactor)
    with pytest.raises(EngineError) as caught:
        client.run(["upgrade", "web", "./chart", "--set", "auth.password=hunter22"], namespace="apps")
    error = caught.value
    assert error.kind == RENDER_FAILED
    assert error.rc == 1
    assert error.msg == f"INSTALLATION FAILED: execution error at (sample/templates/secret.yaml:3:4): password {MASK} is too weak"
    assert "hunter22" not in error.stderr
    assert "hunter22" not in " ".join(error.command)
    assert error.command[:5] == ["helm", "upgrade", "web", "./chart", "--set"]


def test_failing_run_release_locked(make_client):
    stderr = "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n"
    client, _ = make_client(HELM3, {"upgrade": (1, "", stderr)})
    with pytest.raises(EngineError) as caught:
        client.upgrade(deploy_spec())
    assert caught.value.kind == RELEASE_LOCKED
    assert caught.value.msg == "UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress"


def test_vanished_binary_is_helm_missing(make_client):
    client, _ = make_client(HELM3, {"status": FileNotFoundError(2, "No such file or directory")})
    with pytest.raises(EngineError) as caught:
        client.run(["status", "web"])
    assert caught.value.kind == HELM_MISSING


def test_failing_version_detection_is_classified(make_client):
    client, fake = make_client(HELM3)
    fake.answers["version"] = (1, "", 'Error: Kubernetes cluster unreachable: dial tcp 127.0.0.1:1: connect: connection refused')
    with pytest.raises(EngineError) as caught:
        client.upgrade_argv(deploy_spec(), dry_run=False)
    assert caught.value.kind == CLUSTER_UNREACHABLE


@pytest.mark.parametrize(
    "stdout, expected",
    [
        ('{"name": "web", "version": 3}', {"name": "web", "version": 3}),
        (
            "WARNING: Kubernetes configuration file is group-readable. This is insecure. Location: /root/.kube/config\n"
            '{"name": "web", "version": 3}\n',
            {"name": "web", "version": 3},
        ),
        ('walrus: deprecated\n[{"revision": 1}, {"revision": 2}]', [{"revision": 1}, {"revision": 2}]),
    ],
)
def test_run_json_tolerates_leading_warnings(make_client, stdout, expected):
    client, fake = make_client(HELM3, {"status": (0, stdout, "")})
    assert client.run_json(["status", "web"], namespace="apps") == expected
    assert fake.calls[-1] == ["helm", "status", "web", "--output", "json", "--namespace", "apps"]


@pytest.mark.parametrize("stdout", ['Release "web" has been upgraded. Happy Helming!', '{"name": "web"', ""])
def test_run_json_rejects_non_json(make_client, stdout):
    client, _ = make_client(HELM3, {"history": (0, stdout, "")})
    with pytest.raises(EngineError) as caught:
        client.run_json(["history", "web"], namespace="apps")
    assert caught.value.kind == HELM_OUTPUT
    assert caught.value.command[:5] == ["helm", "history", "web", "--output", "json"]
