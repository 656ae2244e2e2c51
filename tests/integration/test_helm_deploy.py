"""helm_deploy against the local cluster, every case on helm 3 and helm 4.

Changes run four ways (check, real, idempotent check, idempotent real) through ``converge``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHARTS, converge, helm_work, run_playbook

SAMPLE = str(CHARTS / "sample")


def deploy_args(namespace: str, **extra) -> dict:
    args = {"name": "web", "namespace": namespace, "create_namespace": True, "chart_ref": SAMPLE,
            "wait": True, "timeout": "60s"}
    args.update(extra)
    return args


def configmap(kubectl, namespace: str, name: str = "web-config") -> dict:
    return json.loads(kubectl("-n", namespace, "get", "configmap", name, "-o", "json").stdout)["data"]


def test_first_install(run_module, namespace, kubectl):
    result = converge(run_module, "helm_deploy", deploy_args(namespace, release_values={"replicaCount": 3}), "install")
    real, repeat = result["real"], result["again"]
    assert real["release"]["revision"] == 1 and real["release"]["status"] == "deployed"
    assert real["previous_revision"] is None
    assert {c["kind"] for c in real["changes"]} == {"Deployment", "Service", "ConfigMap"}
    assert [(h["name"], h["phase"]) for h in real["hooks"]] == [("web-pre-install", "Succeeded")]
    assert repeat["helm_processes"] <= 2, repeat["commands"]
    deployment = json.loads(kubectl("-n", namespace, "get", "deployment", "web-web", "-o", "json").stdout)
    assert deployment["status"]["readyReplicas"] == 3
    # The check run of a new install already showed every resource it would create.
    assert any("Deployment/" in d["after_header"] and "replicas: 3" in d["after"] for d in result["check"]["diff"])


def test_values_change(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "one"}))
    result = converge(run_module, "helm_deploy", deploy_args(namespace, release_values={"message": "two"}), "upgrade")
    real = result["real"]
    assert "values changed" in real["reasons"]
    assert real["previous_revision"] == 1 and real["release"]["revision"] == 2
    values_diff = real["diff"][0]
    assert "message: one" in values_diff["before"] and "message: two" in values_diff["after"]


def test_chart_version_change(run_module, namespace, chart_copy):
    chart = chart_copy()
    run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    chart_yaml = chart / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("version: 0.1.0", "version: 0.2.0"))
    real = converge(run_module, "helm_deploy", deploy_args(namespace, chart_ref=str(chart)), "upgrade")["real"]
    assert "chart sample-0.1.0 -> sample-0.2.0" in real["reasons"]
    assert real["release"]["chart_version"] == "0.2.0"


def test_template_edit_without_version_bump_is_a_change(run_module, namespace, chart_copy):
    chart = chart_copy()
    run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    template = chart / "templates" / "configmap.yaml"
    template.write_text(template.read_text().replace("\ndata:\n", "\ndata:\n  EDITED: \"yes\"\n"))
    real = converge(run_module, "helm_deploy", deploy_args(namespace, chart_ref=str(chart)), "upgrade")["real"]
    assert {(c["kind"], c["change"]) for c in real["changes"]} >= {("ConfigMap", "changed")}
    assert real["release"]["chart_version"] == "0.1.0"


def test_comment_only_template_edit_is_not_a_change(run_module, namespace, chart_copy):
    chart = chart_copy()
    run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    template = chart / "templates" / "service.yaml"
    template.write_text("# a comment that renders into the manifest\n" + template.read_text())
    result = run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    assert result["changed"] is False and result["action"] == "none"


def test_values_files_then_values_then_set_values(run_module, namespace, kubectl, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("message: from-base\nextraConfig:\n  FROM_BASE: base\n  OVERRIDDEN: base\n")
    prod = tmp_path / "prod.yaml"
    prod.write_text("message: from-prod\nextraConfig:\n  OVERRIDDEN: prod\n")
    args = deploy_args(namespace, values_files=[str(base), str(prod)],
                       release_values={"extraConfig": {"FROM_VALUES": "values"}},
                       set_values=[{"value": "extraConfig.FROM_SET=set"}])
    converge(run_module, "helm_deploy", args, "install")
    data = configmap(kubectl, namespace)
    assert data == {"MESSAGE": "from-prod", "FROM_BASE": "base", "OVERRIDDEN": "prod",
                    "FROM_VALUES": "values", "FROM_SET": "set"}
    args["release_values"] = {"message": "from-values"}
    converge(run_module, "helm_deploy", args, "upgrade")
    assert configmap(kubectl, namespace)["MESSAGE"] == "from-values"


def test_set_values_with_spaces_quotes_and_equals(run_module, namespace, kubectl):
    tricky = 'say "hi" to a=b and \'c\''
    args = deploy_args(namespace, set_values=[
        {"value": f"message={tricky}", "value_type": "literal"},
        {"value": "extraConfig.NUMBER=0123", "value_type": "string"},
        {"value": 'extraConfig.JSON={"a": 1}', "value_type": "json"},
    ])
    real = converge(run_module, "helm_deploy", args, "install")["real"]
    data = configmap(kubectl, namespace)
    assert data["MESSAGE"] == tricky
    assert data["NUMBER"] == "0123"
    assert data["JSON"] == "map[a:1]"
    echoed = "\n".join(real["commands"])
    assert tricky not in echoed and "0123" not in echoed
    assert "--set-literal=message=********" in echoed


def test_upgrade_of_a_failed_release(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace))
    failed = run_module("helm_deploy", deploy_args(namespace, release_values={"notReady": True}, timeout="6s"),
                        expect_failure=True)
    assert failed["error"]["kind"] == "timeout"
    assert failed["release"]["status"] == "failed" and failed["changed"] is True
    real = converge(run_module, "helm_deploy", deploy_args(namespace), "upgrade")["real"]
    assert real["reasons"][0] == "release status is failed"
    assert real["release"]["status"] == "deployed"


def test_atomic_upgrade_that_fails_readiness_keeps_the_previous_state(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "good"}))
    bad = deploy_args(namespace, release_values={"message": "bad", "notReady": True}, atomic=True, timeout="6s")
    check = run_module("helm_deploy", bad, check=True)
    assert check["changed"] and check["action"] == "upgrade"
    failed = run_module("helm_deploy", bad, expect_failure=True)
    assert failed["error"]["kind"] == "timeout"
    assert failed["release"]["status"] == "deployed"
    assert failed["release"]["revision"] == 3  # 1 good, 2 failed, 3 = rollback to 1
    assert configmap(kubectl, namespace)["MESSAGE"] == "good"
    repeat = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "good"}))
    assert repeat["changed"] is False


def test_atomic_first_install_that_fails_leaves_nothing(run_module, namespace, kubectl):
    failed = run_module("helm_deploy", deploy_args(namespace, release_values={"notReady": True}, atomic=True,
                                                   timeout="6s"), expect_failure=True)
    assert failed["error"]["kind"] == "timeout"
    assert failed.get("release") is None
    assert kubectl("-n", namespace, "get", "deployment", "web-web", check=False).returncode != 0


def test_uninstall_twice(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace))
    real = converge(run_module, "helm_deploy", {"name": "web", "namespace": namespace, "state": "absent", "wait": True},
                    "uninstall")["real"]
    # The chart's pre-install hook Job has no delete policy, and create_namespace made the namespace:
    # helm leaves both (cleanup: test_behaviour_cleanup.py).
    assert sorted((e["kind"], e["name"]) for e in real["left_behind"]) == [("Job", "web-pre-install"), ("Namespace", namespace)]
    assert real["previous_revision"] == 1
    assert kubectl("-n", namespace, "get", "deployment", "web-web", check=False).returncode != 0
    assert kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm", "-o", "name").stdout.strip() == ""


def test_uninstall_reports_what_helm_kept(run_module, namespace, kubectl, chart_copy):
    chart = chart_copy()
    (chart / "templates" / "kept.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-kept\n"
        "  annotations:\n    helm.sh/resource-policy: keep\ndata: {a: b}\n")
    run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    removed = run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent"})
    kept = [e for e in removed["left_behind"] if e["kind"] == "ConfigMap"]
    assert kept == [{"api_version": "v1", "kind": "ConfigMap", "namespace": namespace, "name": "web-kept",
                     "reason": "resource-policy: keep"}]


@pytest.mark.parametrize("case", ["chart_not_found", "invalid_values", "render_failed", "cluster_unreachable", "helm_missing"])
def test_errors_have_a_stable_kind_and_change_nothing(run_module, namespace, kubectl, tmp_path, case):
    args = deploy_args(namespace)
    if case == "chart_not_found":
        args["chart_ref"] = str(tmp_path / "no-such-chart")
    elif case == "invalid_values":
        args["values_files"] = [str(tmp_path / "missing.yaml")]
    elif case == "render_failed":
        args["set_values"] = [{"value": "image=oops"}]  # the template reads image.repository
    elif case == "cluster_unreachable":
        bad = tmp_path / "kubeconfig"
        bad.write_text(re.sub(r"https://127\.0\.0\.1:\d+", "https://127.0.0.1:1", Path(run_module.defaults["kubeconfig"]).read_text()))
        args["kubeconfig"] = str(bad)
    elif case == "helm_missing":
        args["binary_path"] = str(tmp_path / "helm")
    failed = run_module("helm_deploy", args, expect_failure=True)
    assert failed["error"]["kind"] == case, failed["error"]
    assert failed["msg"]
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0, "nothing may be created"


def test_server_side_needs_helm_4(run_module, namespace, helm):
    args = deploy_args(namespace, server_side="true")
    if "helm3" in Path(helm).name:
        failed = run_module("helm_deploy", args, expect_failure=True)
        assert failed["error"]["kind"] == "helm_unsupported"
    else:
        assert run_module("helm_deploy", args)["changed"] is True


SECRET = "Sup3r-S3cret-Value-7f3a"
SET_SECRET = "Set-Token-9c1e-Value"


def test_secrets_appear_in_no_output_at_vvv(namespace, kubeconfig, helm, tmp_path):
    # This run's own temp dirs: the check below must not see other runs on the machine.
    temp_root = tmp_path / "ansible-tmp"
    temp_env = {"ANSIBLE_REMOTE_TMP": str(temp_root / "remote"), "ANSIBLE_LOCAL_TMP": str(temp_root / "local"),
                "TMPDIR": str(temp_root / "tmp")}
    for path in temp_env.values():
        os.makedirs(path, exist_ok=True)
    playbook = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: deploy with secrets, check mode then real, with diff
      ai_mesh.helm_engine.helm_deploy:
        name: web
        namespace: {namespace}
        create_namespace: true
        chart_ref: {SAMPLE}
        binary_path: {helm}
        kubeconfig: {kubeconfig}
        release_values:
          message: visible-message
          auth:
            password: {SECRET}
        set_values:
          - value: extraConfig.API_TOKEN={SET_SECRET}
      check_mode: "{{{{ item }}}}"
      diff: true
      loop: [true, false, false]
      register: deployed
    - name: show the registered results
      ansible.builtin.debug:
        var: deployed
"""
    proc = run_playbook(playbook, tmp_path=tmp_path, extra_args=["-vvv"], env=temp_env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "visible-message" in output, "the test must see non-secret values to be meaningful"
    assert SECRET not in output
    assert SET_SECRET not in output
    assert "<redacted" in output
    assert re.search(re.escape(str(temp_root)) + r"\S*/helm-engine-", output), \
        "the module's private workspace must have been under this run's temp dir"
    assert not list(temp_root.rglob("helm-engine-*")), "temp values files left behind"


def test_packaged_chart_and_chart_repository(run_module, namespace, helm, tmp_path, kubectl):
    """A .tgz, then the same chart from a chart repository served on 127.0.0.1 (chart_repo_url)."""
    repo_dir = tmp_path / "repo"
    repo_dir.mkdir()
    subprocess.run([helm, "package", SAMPLE, "--destination", str(repo_dir)], check=True, capture_output=True)
    tgz = repo_dir / "sample-0.1.0.tgz"
    converge(run_module, "helm_deploy", deploy_args(namespace, chart_ref=str(tgz)), "install")
    subprocess.run([helm, "repo", "index", str(repo_dir)], check=True, capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(repo_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))
        args = deploy_args(namespace, chart_ref="sample", chart_repo_url=f"http://127.0.0.1:{port}",
                           chart_version="0.1.0", release_values={"message": "from the repository"})
        real = converge(run_module, "helm_deploy", args, "upgrade")["real"]
        assert real["reasons"] == ["values changed", "2 resource(s) changed"]
        assert "--repo=http://127.0.0.1:" in real["commands"][-1]
        missing = run_module("helm_deploy", dict(args, chart_version="9.9.9"), expect_failure=True)
        assert missing["error"]["kind"] == "chart_not_found"
    finally:
        server.terminate()
        server.wait()
    assert configmap(kubectl, namespace)["MESSAGE"] == "from the repository"


def test_failing_hook_is_hook_failed(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace))
    failed = run_module("helm_deploy", deploy_args(namespace, release_values={"hooks": {"failPreUpgrade": True}}),
                        expect_failure=True)
    assert failed["error"]["kind"] == "hook_failed", failed["error"]
    assert failed["release"]["status"] == "failed"
    assert [(h["name"], h["phase"]) for h in failed["hooks"]] == [("web-pre-upgrade", "Failed")]


def test_existing_resource_is_resource_conflict(run_module, namespace, kubectl):
    kubectl("create", "namespace", namespace)
    kubectl("-n", namespace, "create", "configmap", "web-config", "--from-literal=owner=someone-else")
    failed = run_module("helm_deploy", deploy_args(namespace), expect_failure=True)
    assert failed["error"]["kind"] == "resource_conflict", failed["error"]
    assert kubectl("-n", namespace, "get", "configmap", "web-config", "-o", "jsonpath={.data.owner}").stdout == "someone-else"


def test_bad_token_is_unauthorized_and_no_rights_is_forbidden(run_module, namespace, kubectl, kubeconfig):
    server = re.search(r"server: (\S+)", Path(kubeconfig).read_text()).group(1)
    ca_cert = re.search(r"certificate-authority: (\S+)", Path(kubeconfig).read_text()).group(1)
    auth = {"kubeconfig": None, "host": server, "ca_cert": ca_cert}
    bad = run_module("helm_deploy", dict(deploy_args(namespace), api_key="not-a-valid-token", **auth), expect_failure=True)
    assert bad["error"]["kind"] == "unauthorized"
    assert "not-a-valid-token" not in bad["_stdout"]
    kubectl("create", "namespace", namespace)
    kubectl("-n", namespace, "create", "serviceaccount", "nobody")
    token = kubectl("-n", namespace, "create", "token", "nobody").stdout.strip()
    denied = run_module("helm_deploy", dict(deploy_args(namespace), api_key=token, **auth), expect_failure=True)
    assert denied["error"]["kind"] == "forbidden"
    assert token not in denied["_stdout"]


def _without_dry_run(command: str) -> str:
    """A dry run's argv as the real run has it: without --dry-run=server, and with
    --disable-openapi-validation in its place (the dry run validated the same manifest)."""
    assert " --dry-run=server" in command, command
    return command.replace(" --dry-run=server", " --disable-openapi-validation")


def _workspace_neutral(command: str) -> str:
    """Each task has its own private workspace; its name is the only thing two runs may not share."""
    return re.sub(r"helm-engine-[^/ ]+", "helm-engine-*", command)


def test_upgrade_runs_the_dry_run_argv_minus_the_flag_and_a_no_op_runs_no_helm(run_module, namespace):
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "one"}))
    args = deploy_args(namespace, release_values={"message": "two"}, set_values=[{"value": "extraConfig.K=v"}])
    check = run_module("helm_deploy", args, check=True)
    real = run_module("helm_deploy", args)
    assert check["action"] == real["action"] == "upgrade"
    # check mode: the dry run and nothing else (and `helm version`, unless cached for this binary).
    assert helm_work(check) == ["upgrade"]
    # the real run: the dry run, then the very same argv without --dry-run=server.
    assert helm_work(real) == ["upgrade", "upgrade"], real["commands"]
    dry, applied = real["commands"][-2], real["commands"][-1]
    assert "--dry-run" not in applied
    assert _without_dry_run(dry) == applied
    # and the check run rendered exactly what the real run applied.
    assert _workspace_neutral(_without_dry_run(check["commands"][-1])) == _workspace_neutral(applied)
    # A no-op: the deployed revision carries this task's inputs digest, so no render, and helm's
    # version was cached by the runs above: no helm process at all.
    again = run_module("helm_deploy", args)
    assert again["changed"] is False and again["action"] == "none" and again["rendered"] is False
    assert again["helm_processes"] == 0, again["commands"]
