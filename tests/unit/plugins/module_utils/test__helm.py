# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import stat

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
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import HelmError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import (
    HelmClient,
    VERSION_DEADLINE,
    _release_document,
    classify_error,
    deadline_for,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import ProcessTimeout, run_process
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import (
    ChartSource,
    DeploySpec,
    RollbackSpec,
    SetValue,
    TestSpec,
    UninstallSpec,
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
        ("Error: INSTALLATION FAILED: release name check failed: cannot reuse a name that is still in use", RELEASE_LOCKED),
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
        ('Error: unable to build kubernetes objects from release manifest: resource mapping not found for name: "w" '
         'namespace: "" from "": no matches for kind "Widget" in version "example.io/v1"\nensure CRDs are installed first',
         RENDER_FAILED),
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


def test_a_missing_binary_is_helm_missing_with_the_real_runner(tmp_path):
    missing = str(tmp_path / "no-helm-here")
    with pytest.raises(HelmError) as caught:
        HelmClient(run_process, missing).run(["version"])
    assert caught.value.kind == HELM_MISSING
    assert missing in caught.value.msg


def test_a_process_timeout_becomes_a_helm_timeout_with_the_redacted_command(make_client):
    redactor = Redactor()
    redactor.add_secret("hunter22")
    stopped = ProcessTimeout("helm", 30.0, 10.0, "waiting; password hunter22")
    client, _ = make_client(HELM3, {"upgrade": stopped}, redactor=redactor)
    with pytest.raises(HelmError) as caught:
        client.run(["upgrade"], ["web"])
    assert caught.value.kind == TIMEOUT
    assert caught.value.msg.startswith("helm did not finish within 30s")
    assert caught.value.details == {"deadline_seconds": 30.0}
    assert "hunter22" not in caught.value.stderr and caught.value.command[0] == "helm"


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
