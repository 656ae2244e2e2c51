# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CHART_INVALID,
    CHART_NOT_FOUND,
    CLUSTER_UNREACHABLE,
    FORBIDDEN,
    HELM_FAILED,
    HELM_MISSING,
    HELM_OUTPUT,
    HELM_UNSUPPORTED,
    HOOK_FAILED,
    INVALID_VALUES,
    REGISTRY_UNREACHABLE,
    RELEASE_LOCKED,
    RELEASE_NOT_FOUND,
    RENDER_FAILED,
    RESOURCE_CONFLICT,
    ROLLOUT_FAILED,
    TIMEOUT,
    UNAUTHORIZED,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _helm
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import (
    VERSION_DEADLINE,
    ChartSource,
    DeploySpec,
    HelmClient,
    HelmError,
    HelmVersion,
    RollbackSpec,
    SetValue,
    TestSpec,
    UninstallSpec,
    _release_document,
    classify_error,
    deadline_for,
    run_process,
    version_cache_path,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import MASK, Redactor

HELM3 = "v3.22.0"
HELM4 = "v4.3.1"
CHART = "oci://registry.example/charts/web"


def real_run(built: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    """upgrade_argv(dry_run=False) without its last flag, which must be --disable-openapi-validation:
    the real run follows the task's dry run, which validated the same manifest."""
    flags, positionals = built
    assert flags[-1] == "--disable-openapi-validation", flags
    return flags[:-1], positionals


def deploy_spec(**overrides) -> DeploySpec:
    args = {"release": "web", "namespace": "apps", "chart": ChartSource(CHART, version="1.2.3")}
    args.update(overrides)
    return DeploySpec(**args)


def flags_after_chart(built: tuple[list[str], list[str]]) -> list[str]:
    """The flags an upgrade_argv result has after ``upgrade --install --version=1.2.3``; its
    positionals must be exactly the release and the chart."""
    flags, positionals = built
    assert flags[:3] == ["upgrade", "--install", "--version=1.2.3"]
    assert positionals == ["web", CHART]
    return flags[3:]


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
        # Two runs at once, measured on helm 3.22 and 4.3: the loser's create of the revision
        # Secret meets the winner's (first install, and upgrade), or the name is taken meanwhile.
        ("Error: release: already exists", RELEASE_LOCKED),
        ("Error: UPGRADE FAILED: release: already exists", RELEASE_LOCKED),
        ("Error: INSTALLATION FAILED: cannot re-use a name that is still in use", RELEASE_LOCKED),
        # A resource that already exists is a conflict, not a lock.
        ('Error: INSTALLATION FAILED: configmaps "web-config" already exists', RESOURCE_CONFLICT),
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
        # A template syntax error is the chart's, not the network's, even when it says EOF.
        ("parse error at (sample/templates/x.yaml:3): unexpected EOF", RENDER_FAILED),
        ("Error: INSTALLATION FAILED: parse error at (sample/templates/x.yaml:3): unexpected EOF", RENDER_FAILED),
        ('Error: failed parsing --set data: key "a" has no value: unexpected EOF', INVALID_VALUES),
        # A chart registry that cannot be reached is not an unreachable cluster.
        (
            'Error: INSTALLATION FAILED: failed to do request: Head "https://127.0.0.1:5999/v2/charts/sample/manifests/0.1.0": '
            "dial tcp 127.0.0.1:5999: connect: connection refused",
            REGISTRY_UNREACHABLE,
        ),
        (
            'Error: looks like "http://127.0.0.1:1" is not a valid chart repository or cannot be reached: '
            'Get "http://127.0.0.1:1/index.yaml": dial tcp 127.0.0.1:1: connect: connection refused',
            REGISTRY_UNREACHABLE,
        ),
        # Chart.yaml's YAML error is the chart's, not the values'.
        (
            "Error: INSTALLATION FAILED: cannot load Chart.yaml: error converting YAML to JSON: yaml: line 2: "
            "mapping values are not allowed in this context",
            CHART_INVALID,
        ),
        # helm 4's waiter found a workload failed for good (the verdict fail-fast would give).
        ("Error: UPGRADE FAILED: release web failed, and has been rolled back due to rollback-on-failure being set: "
         "resource Deployment/apps/web-web not ready. status: Failed, message: Progress deadline exceeded", ROLLOUT_FAILED),
        # ... but a hook Job that failed stays a hook failure.
        ("Error: UPGRADE FAILED: pre-upgrade hooks failed: resource Job/apps/migrate not ready. status: Failed, "
         "message: Job has reached the specified backoff limit", HOOK_FAILED),
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

RELEASE = {"name": "web", "version": 1, "info": {"status": "deployed"}}


def test_version_is_detected_once(make_client):
    client, fake = make_client(HELM4)
    client.upgrade_argv(deploy_spec(wait=True), dry_run=True)
    real_run(client.upgrade_argv(deploy_spec(wait=True), dry_run=False))
    client.rollback_argv(RollbackSpec(release="web", namespace="apps", revision=2, force=True))
    assert fake.calls == [["helm", "version", "--template={{.Version}}"]]
    assert fake.kwargs == [{"deadline": VERSION_DEADLINE}]
    assert client.version.raw == HELM4
    assert client.major == 4
    assert client.process_count == 1


def test_unsupported_helm_fails_the_first_argv(make_client):
    client, _ = make_client("v3.12.3")
    with pytest.raises(EngineError) as caught:
        real_run(client.upgrade_argv(deploy_spec(atomic=True), dry_run=False))
    assert caught.value.kind == HELM_UNSUPPORTED


# ---- upgrade_argv ------------------------------------------------------------------------


def test_upgrade_argv_minimal(make_client):
    client, _ = make_client(HELM3)
    assert real_run(client.upgrade_argv(deploy_spec(), dry_run=False)) == (
        ["upgrade", "--install", "--version=1.2.3", "--reset-values"],
        ["web", CHART],
    )


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
        pytest.param({"force": True}, ["--reset-values", "--force"], ["--reset-values", "--server-side=false", "--force-replace"], id="force"),
        pytest.param({"wait_for_jobs": True}, ["--reset-values"], ["--reset-values"], id="wait-for-jobs-needs-wait"),
        pytest.param(
            {"wait": True, "wait_for_jobs": True, "timeout": "5m0s"},
            ["--reset-values", "--wait", "--wait-for-jobs", "--timeout=5m0s"],
            ["--reset-values", "--wait=watcher", "--wait-for-jobs", "--timeout=5m0s"],
            id="wait-for-jobs",
        ),
        pytest.param({"reuse_values": True}, ["--reuse-values"], ["--reuse-values"], id="reuse-values"),
        pytest.param({"reset_then_reuse_values": True}, ["--reset-then-reuse-values"], ["--reset-then-reuse-values"],
                     id="reset-then-reuse-values"),
        pytest.param({"reuse_values": True, "reset_then_reuse_values": True}, ["--reuse-values"], ["--reuse-values"],
                     id="reuse-wins"),
        pytest.param({"reset_values": False}, [], [], id="no-reset"),
        pytest.param(
            {
                "create_namespace": True,
                "skip_crds": True,
                "skip_schema_validation": True,
                "disable_hooks": True,
                "description": "deploy 42",
                "history_max": 5,
                "take_ownership": True,
                "post_renderer": "/usr/local/bin/render",
                "post_renderer_args": ["--strict"],
                "cleanup_on_fail": True,
            },
            ["--create-namespace", "--reset-values", "--skip-crds", "--skip-schema-validation", "--no-hooks",
             "--description=deploy 42", "--history-max=5", "--take-ownership", "--post-renderer=/usr/local/bin/render",
             "--post-renderer-args=--strict", "--cleanup-on-fail"],
            ["--create-namespace", "--reset-values", "--skip-crds", "--skip-schema-validation", "--no-hooks",
             "--description=deploy 42", "--history-max=5", "--take-ownership", "--post-renderer=/usr/local/bin/render",
             "--post-renderer-args=--strict", "--cleanup-on-fail"],
            id="version-independent",
        ),
    ],
)
@pytest.mark.parametrize("version", [HELM3, HELM4])
def test_upgrade_argv_flags(make_client, version, overrides, helm3_flags, helm4_flags):
    client, _ = make_client(version)
    built = real_run(client.upgrade_argv(deploy_spec(**overrides), dry_run=False))
    assert flags_after_chart(built) == (helm4_flags if version == HELM4 else helm3_flags)


@pytest.mark.parametrize(
    "overrides, flags",
    [
        ({"server_side": "true", "force_conflicts": True}, ["--reset-values", "--server-side=true", "--force-conflicts"]),
        ({"server_side": "false"}, ["--reset-values", "--server-side=false"]),
        ({"server_side": "auto"}, ["--reset-values", "--server-side=auto"]),
    ],
)
def test_upgrade_argv_server_side_on_helm4(make_client, overrides, flags):
    client, _ = make_client(HELM4)
    assert flags_after_chart(real_run(client.upgrade_argv(deploy_spec(**overrides), dry_run=False))) == flags


@pytest.mark.parametrize(
    "overrides",
    [{"server_side": "true"}, {"server_side": "auto"}, {"server_side": "false"}, {"force_conflicts": True}],
)
def test_upgrade_argv_server_side_needs_helm4(make_client, overrides):
    client, _ = make_client(HELM3)
    with pytest.raises(EngineError) as caught:
        real_run(client.upgrade_argv(deploy_spec(**overrides), dry_run=False))
    assert caught.value.kind == HELM_UNSUPPORTED
    assert HELM3 in caught.value.msg


def test_chart_source_flags(make_client):
    client, _ = make_client(HELM3)
    chart = ChartSource("web", repo_url="https://charts.example.com", version="2.0.0", dependency_update=True,
                        plain_http=True, insecure_skip_tls_verify=True)
    assert real_run(client.upgrade_argv(deploy_spec(chart=chart), dry_run=False)) == (
        ["upgrade", "--install", "--repo=https://charts.example.com", "--version=2.0.0", "--dependency-update",
         "--plain-http", "--insecure-skip-tls-verify", "--reset-values"],
        ["web", "web"],
    )


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
    dry_flags, dry_positionals = client.upgrade_argv(spec, dry_run=True)
    real_flags, real_positionals = real_run(client.upgrade_argv(spec, dry_run=False))
    assert dry_flags[-1] == "--dry-run=server"
    # The real run differs only by not validating again what the dry run just validated.
    assert real_flags == dry_flags[:-1]
    assert "--dry-run=server" not in real_flags
    assert dry_positionals == real_positionals == ["web", CHART]
    # The very same values file, written once.
    generated = real_flags[real_flags.index("--values=base.yaml") + 1]
    assert generated.startswith("--values=")
    assert os.listdir(client.workspace.path) == [os.path.basename(generated[len("--values="):])]


def values_paths(flags: list[str]) -> list[str]:
    return [arg[len("--values="):] for arg in flags if arg.startswith("--values=")]


def test_values_go_through_a_private_file(make_client):
    client, _ = make_client(HELM4)
    values = {"replicaCount": 3, "auth": {"password": "hunter22"}}
    flags, positionals = real_run(client.upgrade_argv(deploy_spec(values=values), dry_run=False))
    [path] = values_paths(flags)
    assert os.path.dirname(path) == client.workspace.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle) == values
    assert not any("hunter22" in arg or "replicaCount" in arg for arg in flags + positionals)


def test_values_precedence_files_then_values_then_set(make_client):
    client, _ = make_client(HELM3)
    spec = deploy_spec(
        values_files=["base.yaml", "prod.yaml"],
        values={"replicaCount": 3},
        set_values=[SetValue("image.tag=1.2"), SetValue("name=web", "string"), SetValue('ports=[80]', "json"),
                    SetValue("ca=ca.pem", "file"), SetValue("a.b=x,y", "literal")],
    )
    flags, positionals = real_run(client.upgrade_argv(spec, dry_run=False))
    generated = values_paths(flags)[2]
    assert os.path.dirname(generated) == client.workspace.path
    assert flags == [
        "upgrade", "--install", "--version=1.2.3",
        "--values=base.yaml", "--values=prod.yaml", f"--values={generated}",
        "--set=image.tag=1.2", "--set-string=name=web", "--set-json=ports=[80]", "--set-file=ca=ca.pem",
        "--set-literal=a.b=x,y", "--reset-values",
    ]
    assert positionals == ["web", CHART]


def test_values_file_reused_per_distinct_values(make_client):
    client, _ = make_client(HELM3)

    def values_path(values):
        [path] = values_paths(real_run(client.upgrade_argv(deploy_spec(values=values), dry_run=False))[0])
        return path

    first = values_path({"a": 1, "b": 2})
    assert values_path({"b": 2, "a": 1}) == first
    assert values_path({"a": 2}) != first
    assert len(os.listdir(client.workspace.path)) == 2


def test_values_need_a_workspace(make_client):
    client, fake = make_client(HELM3, with_workspace=False)
    with pytest.raises(EngineError) as caught:
        real_run(client.upgrade_argv(deploy_spec(values={"a": 1}), dry_run=False))
    assert caught.value.kind == HELM_FAILED
    assert fake.calls == []


def test_local_chart_path_is_expanded(make_client, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    client, _ = make_client(HELM3)
    spec = deploy_spec(chart=ChartSource("~/charts/web", repo_url=None, dependency_update=True))
    assert real_run(client.upgrade_argv(spec, dry_run=False)) == (
        ["upgrade", "--install", "--dependency-update", "--reset-values"],
        ["web", str(tmp_path / "charts" / "web")],
    )


# ---- user values that look like flags -------------------------------------------------------


def test_flag_like_upgrade_inputs_stay_values(make_client):
    """A release name, chart ref or --set value starting with '-' reaches helm after '--' or
    inside its own flag=value argument, never as a flag of its own."""
    client, _ = make_client(HELM3, kubeconfig="/tmp/kc")
    spec = deploy_spec(
        release="--kubeconfig=/etc/evil",
        chart=ChartSource("-chart", version="--devel"),
        set_values=[SetValue("--post-renderer=/bin/evil"), SetValue("-x", "string")],
        values_files=["-values.yaml"],
        description="--dry-run=none",
    )
    argv = client.argv(*real_run(client.upgrade_argv(spec, dry_run=False)), namespace="apps")
    assert argv == [
        "helm", "upgrade", "--install", "--version=--devel", "--values=-values.yaml",
        "--set=--post-renderer=/bin/evil", "--set-string=-x", "--reset-values", "--description=--dry-run=none",
        "--namespace=apps", "--kubeconfig=/tmp/kc", "--", "--kubeconfig=/etc/evil", "-chart",
    ]


def test_flag_like_release_names_stay_positionals(make_client):
    client, _ = make_client(HELM4)
    rollback = client.argv(*client.rollback_argv(RollbackSpec(release="-web", namespace="apps", revision=3)),
                           namespace="apps")
    assert rollback == ["helm", "rollback", "--namespace=apps", "--", "-web", "3"]
    uninstall = client.argv(*client.uninstall_argv(UninstallSpec(release="--no-hooks", namespace="apps")),
                            namespace="apps")
    assert uninstall == ["helm", "uninstall", "--namespace=apps", "--", "--no-hooks"]


def test_argv_without_positionals_has_no_separator(make_client):
    client, _ = make_client(HELM3, context="kind-web")
    assert client.argv(["repo", "update"]) == ["helm", "repo", "update", "--kube-context=kind-web"]


# ---- rollback_argv / uninstall_argv ------------------------------------------------------


@pytest.mark.parametrize(
    "version, expected",
    [
        (HELM3, ["rollback", "--wait", "--timeout=2m", "--cleanup-on-fail", "--force", "--no-hooks", "--history-max=10"]),
        (HELM4, ["rollback", "--wait=watcher", "--timeout=2m", "--cleanup-on-fail", "--server-side=false", "--force-replace", "--no-hooks",
                 "--history-max=10"]),
    ],
)
def test_rollback_argv(make_client, version, expected):
    client, _ = make_client(version)
    spec = RollbackSpec(release="web", namespace="apps", revision=4, wait=True, timeout="2m", cleanup_on_fail=True,
                        force=True, disable_hooks=True, history_max=10)
    assert client.rollback_argv(spec) == (expected, ["web", "4"])


def test_rollback_argv_minimal_and_wait_strategy(make_client):
    client, _ = make_client(HELM4)
    assert client.rollback_argv(RollbackSpec(release="web", namespace="apps", revision=1)) == (["rollback"], ["web", "1"])
    spec = RollbackSpec(release="web", namespace="apps", revision=1, wait=True, wait_strategy="legacy")
    assert client.rollback_argv(spec) == (["rollback", "--wait=legacy"], ["web", "1"])


@pytest.mark.parametrize(
    "spec, expected",
    [
        (UninstallSpec(release="web", namespace="apps"), (["uninstall"], ["web"])),
        (
            UninstallSpec(release="web", namespace="apps", wait=True, timeout="90s", keep_history=True, disable_hooks=True),
            (["uninstall", "--wait", "--timeout=90s", "--keep-history", "--no-hooks"], ["web"]),
        ),
    ],
)
def test_uninstall_argv(make_client, spec, expected):
    client, _ = make_client(HELM4)
    assert client.uninstall_argv(spec) == expected


def test_rollback_and_uninstall_run_in_the_release_namespace(make_client):
    client, fake = make_client(HELM3, kubeconfig="/tmp/kc")
    client.rollback(RollbackSpec(release="web", namespace="apps", revision=2, timeout="1m"))
    client.uninstall(UninstallSpec(release="web", namespace="apps", keep_history=True))
    assert fake.calls == [
        ["helm", "rollback", "--timeout=1m", "--namespace=apps", "--kubeconfig=/tmp/kc", "--", "web", "2"],
        ["helm", "uninstall", "--keep-history", "--namespace=apps", "--kubeconfig=/tmp/kc", "--", "web"],
    ]


# ---- running -----------------------------------------------------------------------------


def test_run_appends_global_args_and_records_redacted_command(make_client):
    redactor = Redactor()
    redactor.add_secret("hunter22")
    client, fake = make_client(HELM3, redactor=redactor, kubeconfig="/tmp/kc", context="kind-web")
    result = client.run(["upgrade", "--install", "--set=auth.password=hunter22", "--description=pw hunter22"],
                        ["web", "./chart"], namespace="apps")
    assert fake.calls == [[
        "helm", "upgrade", "--install", "--set=auth.password=hunter22", "--description=pw hunter22",
        "--namespace=apps", "--kubeconfig=/tmp/kc", "--kube-context=kind-web", "--", "web", "./chart",
    ]]
    assert fake.kwargs == [{"deadline": deadline_for(None)}]
    shown = (f"helm upgrade --install --set=auth.password={MASK} --description=pw {MASK} "
             "--namespace=apps --kubeconfig=/tmp/kc --kube-context=kind-web -- web ./chart")
    assert client.commands == [shown]
    assert " ".join(result.argv) == shown
    assert client.process_count == 1


@pytest.mark.parametrize("timeout, deadline", [(None, 300 * 3 + 30.0), (60.0, 60 * 3 + 30.0)])
def test_each_process_gets_a_deadline_from_the_task_timeout(make_client, timeout, deadline):
    client, fake = make_client(HELM4, timeout=timeout)
    client.run(["status"], ["web"], namespace="apps")
    assert client.version.raw == HELM4
    assert fake.kwargs == [{"deadline": deadline}, {"deadline": VERSION_DEADLINE}]


def test_process_count_includes_version_detection(make_client):
    client, fake = make_client(HELM4, {"upgrade": (0, json.dumps(RELEASE), "")})
    spec = deploy_spec(wait=True)
    assert client.render(spec) == RELEASE
    assert client.upgrade(spec) == RELEASE
    assert client.process_count == 3
    assert [argv[1] for argv in fake.calls] == ["version", "upgrade", "upgrade"]
    assert len(client.commands) == 3


def test_render_and_upgrade_run_the_same_argv_but_dry_run(make_client):
    client, fake = make_client(HELM4, {"upgrade": (0, json.dumps(RELEASE), "")}, kubeconfig="/tmp/kc")
    spec = deploy_spec(values={"auth": {"password": "hunter22"}}, atomic=True)
    client.render(spec)
    client.upgrade(spec)
    dry, real = fake.calls_of("upgrade")
    [values] = values_paths(real)
    assert real == [
        "helm", "upgrade", "--install", "--version=1.2.3", f"--values={values}", "--reset-values", "--wait=watcher",
        "--rollback-on-failure", "--disable-openapi-validation", "--output=json", "--namespace=apps", "--kubeconfig=/tmp/kc",
        "--", "web", CHART,
    ]
    assert dry == real[:8] + ["--dry-run=server"] + real[9:]


@pytest.mark.parametrize(
    "stdout",
    ["{}", "[]", '[{"name": "web", "version": 1, "info": {}}]', '{"name": "web", "version": 1}',
     '{"name": "web", "version": "one", "info": {}}', '{"name": "", "version": 1, "info": {}}'],
)
@pytest.mark.parametrize("operation", ["render", "upgrade"])
def test_render_and_upgrade_reject_json_that_is_not_a_release(make_client, stdout, operation):
    client, _ = make_client(HELM3, {"upgrade": (0, stdout, "")})
    with pytest.raises(HelmError) as caught:
        getattr(client, operation)(deploy_spec())
    assert caught.value.kind == HELM_OUTPUT
    assert caught.value.command == [client.commands[-1]]


@pytest.mark.parametrize("document", [{}, [], None, "web"])
def test_release_document_rejects_non_releases(document):
    with pytest.raises(HelmError) as caught:
        _release_document(document, "helm upgrade")
    assert caught.value.kind == HELM_OUTPUT


def test_release_document_accepts_a_release():
    assert _release_document(dict(RELEASE), "helm upgrade") == RELEASE


def test_failing_run_raises_classified_redacted_error(make_client):
    redactor = Redactor()
    redactor.add_secret("hunter22")
    stderr = ("Error: INSTALLATION FAILED: execution error at (sample/templates/secret.yaml:3:4): "
              "password hunter22 is too weak\n")
    client, _ = make_client(HELM3, {"upgrade": (1, "", stderr)}, redactor=redactor)
    with pytest.raises(EngineError) as caught:
        client.run(["upgrade", "--install", "--set=auth.password=hunter22"], ["web", "./chart"], namespace="apps")
    error = caught.value
    assert error.kind == RENDER_FAILED
    assert error.rc == 1
    assert error.msg == f"INSTALLATION FAILED: execution error at (sample/templates/secret.yaml:3:4): password {MASK} is too weak"
    assert "hunter22" not in error.stderr
    assert error.command == [
        "helm", "upgrade", "--install", f"--set=auth.password={MASK}", "--namespace=apps", "--", "web", "./chart",
    ]


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
        client.run(["status"], ["web"])
    assert caught.value.kind == HELM_MISSING


def test_runner_timeout_gets_the_redacted_command(make_client):
    redactor = Redactor()
    redactor.add_secret("hunter22")
    stopped = HelmError(TIMEOUT, "helm did not finish", stderr="waiting; password hunter22")
    client, _ = make_client(HELM3, {"upgrade": stopped}, redactor=redactor)
    with pytest.raises(HelmError) as caught:
        client.run(["upgrade", "--set=pw=hunter22"], ["web", "./chart"], namespace="apps")
    assert caught.value.kind == TIMEOUT
    assert caught.value.command == ["helm", "upgrade", f"--set=pw={MASK}", "--namespace=apps", "--", "web", "./chart"]
    assert caught.value.stderr == f"waiting; password {MASK}"
    assert client.process_count == 1


def test_failing_version_detection_is_classified(make_client):
    client, fake = make_client(HELM3)
    fake.answers["version"] = (1, "", 'Error: Kubernetes cluster unreachable: dial tcp 127.0.0.1:1: connect: connection refused')
    with pytest.raises(EngineError) as caught:
        client.version  # noqa: B018
    assert caught.value.kind == CLUSTER_UNREACHABLE
    with pytest.raises(EngineError):
        real_run(client.upgrade_argv(deploy_spec(wait=True), dry_run=False))


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
    assert client.run_json(["status"], ["web"], namespace="apps") == expected
    assert fake.calls[-1] == ["helm", "status", "--output=json", "--namespace=apps", "--", "web"]


@pytest.mark.parametrize("stdout", ['Release "web" has been upgraded. Happy Helming!', '{"name": "web"', ""])
def test_run_json_rejects_non_json(make_client, stdout):
    client, _ = make_client(HELM3, {"history": (0, stdout, "")})
    with pytest.raises(EngineError) as caught:
        client.run_json(["history"], ["web"], namespace="apps")
    assert caught.value.kind == HELM_OUTPUT
    assert caught.value.command == ["helm", "history", "--output=json", "--namespace=apps", "--", "web"]


# ---- run_process: real processes ---------------------------------------------------------

SIGNALS = (signal.SIGTERM, signal.SIGINT)
IGNORE_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "time.sleep(30)\n"
)


@pytest.fixture
def started(monkeypatch):
    """The Popen objects run_process creates, to check how each process ended."""
    processes: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        processes.append(process)
        return process

    monkeypatch.setattr(_helm.subprocess, "Popen", popen)
    return processes


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_run_process_returns_rc_and_output():
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    assert run_process(["printf", "%s\\n", "hello"], deadline=10) == (0, "hello\n", "")
    assert run_process([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"], deadline=10) == (
        3, "", "boom",
    )
    # No stdin: a process that reads it ends at once instead of waiting for input.
    assert run_process(["cat"], deadline=10) == (0, "", "")
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers


def test_run_process_stops_a_process_past_its_deadline(started):
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    begin = time.monotonic()
    with pytest.raises(HelmError) as caught:
        run_process(["sleep", "30"], deadline=0.5, grace=0.5)
    elapsed = time.monotonic() - begin
    assert caught.value.kind == TIMEOUT
    assert caught.value.details == {"deadline_seconds": 0.5}
    assert 0.5 <= elapsed < 2.0
    [process] = started
    assert process.returncode == -signal.SIGTERM  # SIGTERM was enough
    assert group_is_gone(process.pid)
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers


def test_run_process_kills_a_process_that_ignores_sigterm(started):
    begin = time.monotonic()
    with pytest.raises(HelmError) as caught:
        run_process([sys.executable, "-c", IGNORE_SIGTERM], deadline=1.5, grace=0.5)
    elapsed = time.monotonic() - begin
    assert caught.value.kind == TIMEOUT
    [process] = started
    assert process.returncode == -signal.SIGKILL
    assert 2.0 <= elapsed < 4.0
    assert group_is_gone(process.pid)


# Like helm with --atomic: on SIGTERM it rolls back (takes a moment), then exits 1.
ROLLS_BACK_ON_SIGTERM = (
    "import signal, sys, time\n"
    "def cancelled(*_):\n"
    "    time.sleep(0.5)\n"
    "    sys.stderr.write('UPGRADE FAILED: rolled back: context canceled')\n"
    "    sys.exit(1)\n"
    "signal.signal(signal.SIGTERM, cancelled)\n"
    "time.sleep(30)\n"
)


def test_a_monitor_that_reports_a_failure_ends_helm_gently(started):
    calls = []

    def monitor():
        calls.append(time.monotonic())
        return HelmError(ROLLOUT_FAILED, "doomed") if len(calls) == 2 else None

    begin = time.monotonic()
    with pytest.raises(HelmError) as caught:
        run_process([sys.executable, "-c", ROLLS_BACK_ON_SIGTERM], deadline=60, grace=0.2, monitor=monitor,
                    monitor_interval=0.2)
    elapsed = time.monotonic() - begin
    assert caught.value.kind == ROLLOUT_FAILED and caught.value.msg == "doomed"
    # SIGTERM, then helm's own time to roll back: longer than the grace, far less than the deadline.
    assert caught.value.stderr == "UPGRADE FAILED: rolled back: context canceled"
    assert caught.value.rc == 1
    assert len(calls) == 2 and 0.8 <= elapsed < 5
    [process] = started
    assert process.returncode == 1 and group_is_gone(process.pid)


def test_a_quiet_monitor_changes_nothing():
    calls = []
    rc, out, _err = run_process([sys.executable, "-c", "import time; time.sleep(0.5); print('done')"], deadline=10,
                                monitor=lambda: calls.append(1), monitor_interval=0.1)
    assert (rc, out) == (0, "done\n") and len(calls) >= 2


def test_the_deadline_holds_with_a_monitor(started):
    with pytest.raises(HelmError) as caught:
        run_process(["sleep", "30"], deadline=0.6, grace=0.5, monitor=lambda: None, monitor_interval=0.2)
    assert caught.value.kind == TIMEOUT


def test_run_process_missing_binary_is_helm_missing(tmp_path):
    missing = str(tmp_path / "no-helm-here")
    with pytest.raises(HelmError) as caught:
        run_process([missing, "version"], deadline=10)
    assert caught.value.kind == HELM_MISSING
    assert missing in caught.value.msg


def test_stdout_abandoned_once_a_pipe_has_no_reader(tmp_path):
    read_end, write_end = os.pipe()
    try:
        assert _helm.stdout_abandoned(write_end) is False
        os.close(read_end)
        assert _helm.stdout_abandoned(write_end) is True
    finally:
        os.close(write_end)


def test_stdout_abandoned_once_a_socket_peer_is_gone():
    ours, theirs = socket.socketpair()
    with ours:
        assert _helm.stdout_abandoned(ours.fileno()) is False
        theirs.close()
        assert _helm.stdout_abandoned(ours.fileno()) is True


def test_stdout_is_never_abandoned_when_it_is_a_file_or_dev_null_or_closed(tmp_path):
    with open(tmp_path / "out", "w") as file, open(os.devnull, "w") as devnull:
        assert _helm.stdout_abandoned(file.fileno()) is False
        assert _helm.stdout_abandoned(devnull.fileno()) is False
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    assert _helm.stdout_abandoned(write_end) is False  # a closed fd is no evidence


def test_run_process_starts_nothing_once_abandoned(started):
    with pytest.raises(SystemExit) as caught:
        run_process(["sleep", "30"], deadline=10, abandoned=lambda: True)
    assert caught.value.code == 128 + signal.SIGPIPE
    assert started == []


def test_run_process_stops_the_process_when_abandoned_mid_run(started):
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    checks = []

    def abandoned() -> bool:
        checks.append(time.monotonic())
        return len(checks) > 3  # the check before the start, then two polls, then gone

    begin = time.monotonic()
    with pytest.raises(SystemExit) as caught:
        run_process(["sleep", "30"], deadline=60, grace=2, abandoned=abandoned, poll=0.1)
    assert caught.value.code == 128 + signal.SIGPIPE
    assert time.monotonic() - begin < 2.0
    [process] = started
    assert process.returncode == -signal.SIGTERM  # SIGTERM (helm marks the release failed), not SIGKILL
    assert group_is_gone(process.pid)
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers


def test_run_process_watches_for_abandonment_and_the_monitor_together(started):
    looks = []

    def monitor():
        looks.append(time.monotonic())
        return None

    checks = []

    def abandoned() -> bool:
        checks.append(time.monotonic())
        return time.monotonic() - checks[0] > 0.5

    with pytest.raises(SystemExit):
        run_process(["sleep", "30"], deadline=60, grace=2, monitor=monitor, monitor_interval=0.2,
                    abandoned=abandoned, poll=0.05)
    assert 1 <= len(looks) <= 3  # every monitor_interval, not at every abandonment check
    assert len(checks) > len(looks)
    assert started[0].returncode == -signal.SIGTERM and group_is_gone(started[0].pid)


def test_run_process_keeps_the_deadline_while_polling(started):
    with pytest.raises(HelmError) as caught:
        run_process(["sleep", "30"], deadline=0.35, grace=0.5, abandoned=lambda: False, poll=0.1)
    assert caught.value.kind == TIMEOUT
    assert started[0].returncode == -signal.SIGTERM


ORPHANED_MODULE = """
import sys
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import run_process
run_process([sys.executable, "-c", sys.argv[1]], deadline=60, grace=5, poll=0.2)
"""
FAKE_HELM = """
import os, signal, sys, time
def term(signum, frame):
    open(os.environ["MARK"], "a").write("SIGTERM")
    sys.exit(1)
signal.signal(signal.SIGTERM, term)
open(os.environ["MARK"], "w").write(str(os.getpid()) + " ")
time.sleep(30)
"""


def test_a_module_whose_reader_exits_sigterms_helm_and_exits(tmp_path):
    """What a task timeout does under ansible-core 2.19: the worker that reads the module's
    stdout exits without a signal. The module must notice, SIGTERM helm and end."""
    mark = tmp_path / "mark"
    root = str(Path(_helm.__file__).parents[5])
    env = dict(os.environ, MARK=str(mark), PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    module = subprocess.Popen([sys.executable, "-c", ORPHANED_MODULE, FAKE_HELM], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 20
    while not mark.exists() or not mark.read_text().strip():
        assert module.poll() is None and time.monotonic() < deadline, "the fake helm never started"
        time.sleep(0.05)
    helm_pid = int(mark.read_text().split()[0])
    module.stdout.close()  # the reader is gone
    begin = time.monotonic()
    assert module.wait(timeout=10) == 128 + signal.SIGPIPE
    assert time.monotonic() - begin < 3.0
    assert mark.read_text().endswith("SIGTERM")
    assert group_is_gone(helm_pid)


FAKE_ANSIBLE_PLAYBOOK = """
import os, subprocess, sys, time
worker = os.fork()
if worker == 0:  # the worker: a fork of ansible-playbook that leads its own session
    os.setsid()
    module = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)
    module.communicate()  # it keeps reading the module whatever happens to ansible-playbook
    os._exit(0)
time.sleep(60)
"""


def test_a_module_whose_ansible_playbook_was_sigkilled_sigterms_helm_and_exits(tmp_path):
    """ansible-playbook SIGKILLed: its worker survives and still reads the module's stdout, but
    the worker's parent is gone. The module must notice that too, SIGTERM helm and end."""
    mark = tmp_path / "mark"
    script = tmp_path / "module.py"
    script.write_text(ORPHANED_MODULE)
    root = str(Path(_helm.__file__).parents[5])
    env = dict(os.environ, MARK=str(mark), PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    fake = tmp_path / "bin" / "ansible-playbook"
    fake.parent.mkdir()
    fake.write_text(FAKE_ANSIBLE_PLAYBOOK)
    main = subprocess.Popen([sys.executable, str(fake), str(script), FAKE_HELM],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 20
        while not mark.exists() or not mark.read_text().strip():
            assert main.poll() is None and time.monotonic() < deadline, "the fake helm never started"
            time.sleep(0.05)
        helm_pid = int(mark.read_text().split()[0])
        time.sleep(1.0)  # several polls with ansible-playbook alive: nothing happens
        assert not mark.read_text().endswith("SIGTERM") and not group_is_gone(helm_pid)
        main.kill()
        main.wait()
        deadline = time.monotonic() + 5
        while not group_is_gone(helm_pid):
            assert time.monotonic() < deadline, "helm outlived its ansible-playbook"
            time.sleep(0.05)
        assert mark.read_text().endswith("SIGTERM")
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()


def test_ansible_worker_is_the_session_leader_forked_from_ansible_playbook(tmp_path):
    """The marker is found only when the session leader and its parent share a command line
    naming ansible; this test process runs under no ansible worker."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import json, os, sys\n"
        "from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import ansible_worker\n"
        "sys.stdout.write(json.dumps([ansible_worker(), os.getsid(0), os.getppid()]))\n")
    root = str(Path(_helm.__file__).parents[5])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    fork_and_probe = (
        "import os, subprocess, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    sys.stdout.write(subprocess.run([sys.executable, sys.argv[1]], capture_output=True, text=True).stdout)\n"
        "    sys.stdout.flush()\n"
        "    os._exit(0)\n"
        "os.wait()\n"
    )
    (tmp_path / "bin").mkdir()
    found = {}
    for name in ("ansible-playbook", "some-other-tool"):
        (tmp_path / "bin" / name).write_text(fork_and_probe)
        out = subprocess.run([sys.executable, str(tmp_path / "bin" / name), str(script)], capture_output=True,
                             text=True, env=env, check=True).stdout
        found[name] = json.loads(out)
    worker, sid, parent = found["ansible-playbook"]
    assert worker is not None and worker[0] == sid == parent
    assert found["some-other-tool"][0] is None


# ---- test_argv -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [HELM3, HELM4])
def test_test_argv_is_the_same_on_both_majors(make_client, version):
    client, fake = make_client(version, kubeconfig="/tmp/kc")
    spec = TestSpec(release="web", namespace="apps", timeout="2m", logs=True)
    assert client.test_argv(spec) == (["test", "--timeout=2m", "--logs"], ["web"])
    assert client.test_argv(TestSpec(release="web", namespace="apps")) == (["test"], ["web"])
    assert client.argv(*client.test_argv(spec), namespace="apps") == [
        "helm", "test", "--timeout=2m", "--logs", "--namespace=apps", "--kubeconfig=/tmp/kc", "--", "web"]
    assert fake.calls == []  # no version detection: nothing in it depends on the major


# ---- the helm version cache -------------------------------------------------------------------


def test_the_version_is_asked_once_per_binary_and_again_when_it_changes(tmp_path, workspace, private_cache, runner_class):
    FakeRunner = runner_class  # noqa: N806
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    first_fake = FakeRunner(HELM3)
    assert HelmClient(first_fake, str(binary), workspace=workspace).version.raw == HELM3
    assert [argv[1] for argv in first_fake.calls] == ["version"]
    cached_fake = FakeRunner(HELM4)  # would answer 4: the cache must answer first
    assert HelmClient(cached_fake, str(binary), workspace=workspace).version.raw == HELM3
    assert cached_fake.calls == []
    binary.write_text("#!/bin/sh\n# rebuilt\n")  # another size and mtime: another binary
    rebuilt_fake = FakeRunner(HELM4)
    assert HelmClient(rebuilt_fake, str(binary), workspace=workspace).version.raw == HELM4
    assert [argv[1] for argv in rebuilt_fake.calls] == ["version"]


def test_an_unreadable_or_garbled_cache_only_costs_a_version_process(tmp_path, workspace, private_cache, runner_class):
    FakeRunner = runner_class  # noqa: N806
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    cache = version_cache_path()
    os.makedirs(os.path.dirname(cache))
    with open(cache, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    fake = FakeRunner(HELM4)
    assert HelmClient(fake, str(binary), workspace=workspace).version.raw == HELM4
    assert [argv[1] for argv in fake.calls] == ["version"]
    with open(cache, encoding="utf-8") as handle:
        assert HELM4 in handle.read()  # rewritten whole


def test_an_unsupported_cached_version_is_still_refused(tmp_path, workspace, private_cache, runner_class):
    FakeRunner = runner_class  # noqa: N806
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    with pytest.raises(HelmError) as caught:
        HelmClient(FakeRunner("v3.12.0"), str(binary), workspace=workspace).version  # noqa: B018
    assert caught.value.kind == "helm_unsupported"
    with pytest.raises(HelmError) as again:
        HelmClient(FakeRunner(HELM4), str(binary), workspace=workspace).version  # noqa: B018
    assert again.value.kind == "helm_unsupported"
