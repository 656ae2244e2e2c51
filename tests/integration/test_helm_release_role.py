"""The helm_release role through ansible-playbook against the local cluster, on helm 3 and helm 4:
an idempotent install, automatic rollback after each step that can fail (readiness, chart tests,
the user's post-tasks), a failed first install, adoption of kubectl-applied resources, every
preflight problem in one failure, check mode, and the uninstall."""

from __future__ import annotations

import json
import re
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_playbook

EXAMPLE = REPO / "examples" / "monitoring-web-service"
CHART = str(EXAMPLE / "helm-chart")
RELEASE = "monitoring-web-service"
# Every resource the chart (and the plain manifests) create, without hooks and tests.
KINDS = "deployment,service,configmap,secret,serviceaccount,role,rolebinding,hpa,pdb"
FATAL = re.compile(r"^fatal: \[localhost\]: FAILED! => (\{.*\})$", re.MULTILINE)
RECAP = re.compile(r"^localhost\s+:\s+(.*)$", re.MULTILINE)


class Role:
    """Runs the role in a one-task play with the test's helm, kubeconfig and namespace, and
    writes helm_release_result to a file the test reads back."""

    def __init__(self, tmp_path: Path, helm: str, kubeconfig: str, namespace: str) -> None:
        self.tmp_path = tmp_path
        self.runs = 0
        self.base = {
            "helm_release_name": RELEASE,
            "helm_release_namespace": namespace,
            "helm_release_chart_ref": CHART,
            "helm_release_binary_path": helm,
            "helm_release_kubeconfig": kubeconfig,
            "helm_release_validate_timeout": "60s",
            "helm_release_test_timeout": "30s",
            "helm_release_test_logs": False,
        }

    def __call__(self, *extra_args: str, expect_failure: bool = False, play_defaults: dict[str, t.Any] | None = None,
                 env: dict[str, str] | None = None, earlier: dict[str, t.Any] | None = None,
                 **role_vars: t.Any) -> dict[str, t.Any]:
        """play_defaults: the play's module_defaults; env: added to ansible-playbook's environment;
        earlier: the role's variables for a run of the role before this one in the same play."""
        self.runs += 1
        result_file = self.tmp_path / f"result-{self.runs}.json"
        before = [] if earlier is None else [
            {"name": "An earlier run of the role", "ansible.builtin.include_role": {"name": "ai_mesh.helm_engine.helm_release"},
             "vars": dict(self.base, **earlier)}]
        play = [{
            "name": "Role under test",
            "hosts": "localhost",
            "gather_facts": False,
            **({"module_defaults": play_defaults} if play_defaults else {}),
            "tasks": before + [
                {"name": "Run the role", "ansible.builtin.include_role": {"name": "ai_mesh.helm_engine.helm_release"},
                 "vars": dict(self.base, **role_vars)},
                {"name": "Save the result", "ansible.builtin.copy": {
                    "content": "{{ helm_release_result | to_json }}", "dest": str(result_file), "mode": "0600"},
                 "check_mode": False, "changed_when": False},
            ],
        }]
        proc = run_playbook(yaml.safe_dump(play), tmp_path=self.tmp_path, extra_args=extra_args, env=env)
        output = proc.stdout + proc.stderr
        recap = dict(item.split("=") for item in RECAP.findall(proc.stdout)[-1].split()) if RECAP.search(proc.stdout) else {}
        fatals = [json.loads(m) for m in FATAL.findall(proc.stdout)]
        if expect_failure:
            assert proc.returncode != 0, output[-6000:]
            assert recap.get("failed") == "1", output[-6000:]
            assert "Traceback" not in output, output[-6000:]
        else:
            assert proc.returncode == 0, output[-6000:]
        return {
            "rc": proc.returncode,
            "stdout": proc.stdout,
            "recap": {k: int(v) for k, v in recap.items()},
            # The last failure is the play's: the ones before it were rescued inside the role.
            "msg": fatals[-1]["msg"] if fatals else None,
            "result": json.loads(result_file.read_text()) if result_file.exists() else None,
        }


@pytest.fixture
def role(tmp_path: Path, helm: str, kubeconfig: str, namespace: str) -> Role:
    return Role(tmp_path, helm, kubeconfig, namespace)


def release_secrets(kubectl, namespace: str) -> list[str]:
    return kubectl("-n", namespace, "get", "secrets", "-l", f"owner=helm,name={RELEASE}", "-o", "name",
                   check=False).stdout.split()


def history(helm: str, kubeconfig: str, namespace: str) -> list[dict[str, t.Any]]:
    out = subprocess.run([helm, "--kubeconfig", kubeconfig, "-n", namespace, "history", RELEASE, "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def values_of(helm: str, kubeconfig: str, namespace: str, revision: int) -> dict[str, t.Any]:
    out = subprocess.run([helm, "--kubeconfig", kubeconfig, "-n", namespace, "get", "values", RELEASE,
                          "--revision", str(revision), "-o", "json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out) or {}


def assert_rolled_back_to(run_module, helm: str, kubeconfig: str, namespace: str, good: int, good_values: dict) -> None:
    """The latest revision is a rollback to `good`, with its values, and the release is healthy."""
    revisions = history(helm, kubeconfig, namespace)
    latest = revisions[-1]
    assert latest["status"] == "deployed" and latest["description"] == f"Rollback to {good}", revisions
    assert values_of(helm, kubeconfig, namespace, latest["revision"]) == good_values
    status = run_module("helm_status", {"name": RELEASE, "namespace": namespace, "wait_for": "healthy", "timeout": 60})
    assert status["healthy"] is True and status["revision"] == latest["revision"], status["summary"]


def test_install_then_repeat_changes_nothing(role):
    first = role()
    assert first["result"]["action"] == "install" and first["result"]["changed"] is True, first["result"]
    assert int(first["result"]["revision"]) == 1
    assert [t["phase"] for t in first["result"]["tests"]] == ["Succeeded"], first["result"]["tests"]
    again = role()
    assert again["result"]["action"] == "none" and again["result"]["changed"] is False, again["result"]
    assert int(again["result"]["revision"]) == 1
    assert again["recap"]["changed"] == 0, again["stdout"][-3000:]


def test_the_play_s_module_defaults_for_the_group_reach_the_role(role, helm, kubeconfig, tmp_path):
    """helm and the cluster given once for the play (docs/larger-playbook.md), none to the role:
    every step and the handler use them. KUBECONFIG names no file and helm is not on PATH, so
    a step that missed them would fail."""
    group = {"group/ai_mesh.helm_engine.helm_engine": {"binary_path": helm, "kubeconfig": kubeconfig}}
    env = {"KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
    first = role(play_defaults=group, env=env, helm_release_binary_path="", helm_release_kubeconfig="")
    assert first["result"]["action"] == "install" and int(first["result"]["revision"]) == 1, first["result"]
    assert [t["phase"] for t in first["result"]["tests"]] == ["Succeeded"], first["result"]["tests"]
    failed = role(play_defaults=group, env=env, helm_release_binary_path="", helm_release_kubeconfig="",
                  helm_release_values={"podLabels": {"helm-engine.test/ready": "false"}},
                  helm_release_validate_timeout="10s", expect_failure=True)
    assert "step readiness failed (timeout)" in failed["msg"], failed["msg"]
    assert "revision 1 restored (now revision 3" in failed["msg"], failed["msg"]


def test_failed_post_task_rolls_back_to_the_previous_revision(role, run_module, helm, kubeconfig, namespace, tmp_path):
    check = tmp_path / "check.yml"
    check.write_text("---\n- name: A user check that fails\n  ansible.builtin.fail:\n    msg: the service answered 500\n")
    role(helm_release_values={"replicaCount": 2})
    failed = role(helm_release_values={"replicaCount": 3}, helm_release_post_tasks=[str(check)], expect_failure=True)
    msg = failed["msg"]
    assert msg.startswith(f"helm_release {namespace}/{RELEASE}: step post_tasks failed (task_failed): the service answered 500"), msg
    # No failing resources, so nothing about events (it said "last events: None;" here).
    assert "the service answered 500; revision 1 restored" in msg and "None" not in msg, msg
    assert "revision 1 restored (now revision 3" in msg, msg
    assert failed["recap"]["rescued"] == 1
    assert_rolled_back_to(run_module, helm, kubeconfig, namespace, 1, {"replicaCount": 2})
    assert [r["status"] for r in history(helm, kubeconfig, namespace)] == ["superseded", "superseded", "deployed"]


def test_a_failed_pre_task_is_named_so_after_an_earlier_run_in_the_same_play(role, namespace, tmp_path):
    """The step of a failed task of the user's is told by whether this run deployed yet, not
    by what an earlier run of the role in the play left behind."""
    check = tmp_path / "pre.yml"
    check.write_text("---\n- name: A user pre-check that fails\n  ansible.builtin.fail:\n    msg: the change window is closed\n")
    failed = role(earlier={"helm_release_run_tests": False}, helm_release_pre_tasks=[str(check)], expect_failure=True)
    msg = failed["msg"]
    assert msg.startswith(f"helm_release {namespace}/{RELEASE}: step pre_tasks failed (task_failed): "
                          "the change window is closed; "), msg


def test_upgrade_that_never_becomes_ready_is_rolled_back(role, run_module, helm, kubeconfig, namespace):
    role(helm_release_values={"replicaCount": 2})
    failed = role(helm_release_values={"replicaCount": 2, "podLabels": {"helm-engine.test/ready": "false"}},
                  helm_release_validate_timeout="10s", expect_failure=True)
    assert "step readiness failed (timeout)" in failed["msg"] and "revision 1 restored" in failed["msg"], failed["msg"]
    assert_rolled_back_to(run_module, helm, kubeconfig, namespace, 1, {"replicaCount": 2})


def test_a_crash_looping_upgrade_fails_fast_with_its_cause_and_is_rolled_back(role, run_module, helm, kubeconfig,
                                                                              namespace):
    import time

    role(helm_release_values={"replicaCount": 2})
    started = time.monotonic()
    # helm waits with a 5 minute timeout; fail-fast ends the wait once the restarts reach 3.
    failed = role("-v", helm_release_values={"replicaCount": 2, "podLabels": {"helm-engine.test/crash": "true"}},
                  helm_release_wait=True, helm_release_timeout="5m", expect_failure=True)
    assert time.monotonic() - started < 90, "the role waited out the timeout"
    msg = failed["msg"]
    assert "step deploy failed (rollout_failed)" in msg and "CrashLoopBackOff" in msg, msg
    assert "container web" in msg and "last events: " in msg, msg
    assert "revision 1 restored" in msg, msg
    assert_rolled_back_to(run_module, helm, kubeconfig, namespace, 1, {"replicaCount": 2})


def test_progress_is_one_line_per_step_with_v(role):
    quiet = role()
    assert "readiness: " not in quiet["stdout"]
    verbose = role("-v")
    assert "\"msg\": \"deploy: no change, revision 1 in " in verbose["stdout"], verbose["stdout"][verbose["stdout"].find("Progress"):][:1500]
    assert '"msg": "readiness: deployed, revision 1' in verbose["stdout"], verbose["stdout"][-3000:]


def test_failing_chart_test_is_rolled_back(role, run_module, helm, kubeconfig, namespace):
    role(helm_release_values={"replicaCount": 2})
    failed = role(helm_release_values={"replicaCount": 2, "tests": {"podLabels": {"helm-engine.test/test-fail": "true"}}},
                  helm_release_run_tests=True, expect_failure=True)
    assert "step chart tests failed (hook_failed)" in failed["msg"] and "revision 1 restored" in failed["msg"], failed["msg"]
    assert_rolled_back_to(run_module, helm, kubeconfig, namespace, 1, {"replicaCount": 2})


@pytest.mark.parametrize("on_failed_install", ["uninstall", "keep"])
def test_failed_first_install(role, kubectl, helm, kubeconfig, namespace, on_failed_install):
    failed = role(helm_release_values={"tests": {"podLabels": {"helm-engine.test/test-fail": "true"}}},
                  helm_release_on_failed_install=on_failed_install, expect_failure=True)
    assert "step chart tests failed (hook_failed)" in failed["msg"], failed["msg"]
    if on_failed_install == "uninstall":
        assert failed["msg"].endswith("uninstalled"), failed["msg"]
        assert release_secrets(kubectl, namespace) == []
    else:
        assert "the failed first install was kept" in failed["msg"], failed["msg"]
        assert [r["revision"] for r in history(helm, kubeconfig, namespace)] == [1]


def uids(kubectl, namespace: str) -> dict[tuple[str, str], str]:
    out = kubectl("-n", namespace, "get", KINDS, "-l", f"app.kubernetes.io/instance={RELEASE}",
                  "-o", "custom-columns=KIND:.kind,NAME:.metadata.name,UID:.metadata.uid", "--no-headers").stdout
    return {(kind, name): uid for kind, name, uid in (line.split() for line in out.splitlines())}


def test_adopts_kubectl_applied_resources_in_place(role, kubectl, namespace):
    kubectl("create", "namespace", namespace)
    manifests = "".join("---\n" + p.read_text() for p in sorted((EXAMPLE / "k8s").glob("*.yaml")))
    manifests = re.sub(r"namespace: monitoring$", f"namespace: {namespace}", manifests, flags=re.MULTILINE)
    kubectl("-n", namespace, "apply", "-f", "-", input=manifests)
    before = uids(kubectl, namespace)
    assert len(before) == 9, before

    first = role(helm_release_adopt_existing=True)
    assert first["result"]["action"] == "install" and first["result"]["release"]["status"] == "deployed", first["result"]
    assert uids(kubectl, namespace) == before
    again = role(helm_release_adopt_existing=True)
    assert again["result"]["action"] == "none" and again["result"]["changed"] is False, again["result"]
    assert again["recap"]["changed"] == 0
    assert uids(kubectl, namespace) == before


@pytest.fixture
def restricted_kubeconfig(kubectl, kubeconfig: str, namespace: str, tmp_path: Path) -> t.Iterator[Path]:
    """A kubeconfig for a ServiceAccount of `namespace` that may read Secrets there and read
    namespaces (so a missing one is told from a hidden one), nothing else."""
    kubectl("create", "namespace", namespace)
    kubectl("-n", namespace, "create", "serviceaccount", "deployer")
    kubectl("-n", namespace, "create", "role", "read-secrets", "--verb=get,list,watch", "--resource=secrets")
    kubectl("-n", namespace, "create", "rolebinding", "read-secrets", "--role=read-secrets",
            f"--serviceaccount={namespace}:deployer")
    cluster_wide = f"{namespace}-read-namespaces"
    kubectl("create", "clusterrole", cluster_wide, "--verb=get", "--resource=namespaces")
    kubectl("create", "clusterrolebinding", cluster_wide, f"--clusterrole={cluster_wide}",
            f"--serviceaccount={namespace}:deployer")
    token = kubectl("-n", namespace, "create", "token", "deployer", "--duration=10m").stdout.strip()
    admin = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]
    path = tmp_path / "deployer.kubeconfig"
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "deployer",
        "clusters": [{"name": "local", "cluster": {"server": admin["server"],
                                                   "certificate-authority": admin["certificate-authority"]}}],
        "users": [{"name": "deployer", "user": {"token": token}}],
        "contexts": [{"name": "deployer", "context": {"cluster": "local", "user": "deployer"}}],
    }))
    yield path
    kubectl("delete", "--ignore-not-found", f"clusterrolebinding/{cluster_wide}", f"clusterrole/{cluster_wide}", check=False)


def test_preflight_lists_every_problem_and_deploys_nothing(role, kubectl, namespace, restricted_kubeconfig):
    missing = f"{namespace}-missing"
    failed = role(helm_release_namespace=missing, helm_release_create_namespace=False,
                  helm_release_kubeconfig=str(restricted_kubeconfig), helm_release_values={"replicaCount": "three"},
                  expect_failure=True)
    msg = failed["msg"]
    assert msg.startswith(f"helm_release {missing}/{RELEASE}: step preflight failed"), msg
    assert re.search(r"nothing was deployed; \d+ problem\(s\):", msg), msg
    assert f"namespace (kubernetes_api_error): namespace '{missing}' does not exist" in msg, msg
    # The identity may not read helm's release Secrets there.
    assert "lock (forbidden)" in msg, msg
    assert "render (invalid_values)" in msg and "/replicaCount" in msg, msg
    # Rendered once more without the schema, the chart's resources are checked too: the
    # identity may create none of them, each named in the same failure.
    assert "rbac (forbidden)" in msg and "Deployment" in msg, msg
    assert failed["recap"]["rescued"] == 0 and failed["result"] is None
    # Releases of this name exist in other tests' namespaces: look where this one could be.
    assert release_secrets(kubectl, missing) == [] and release_secrets(kubectl, namespace) == []
    assert kubectl("get", "namespace", missing, check=False).returncode != 0


def test_check_mode_of_a_first_install_changes_nothing_and_shows_the_diff(role, kubectl, namespace):
    checked = role("--check", "--diff")
    assert checked["result"]["action"] == "install" and checked["result"]["changed"] is True, checked["result"]
    assert checked["recap"]["changed"] >= 1
    # The deploy's diff: the chart's resources as they would be created.
    assert "kind: Deployment" in checked["stdout"] and f"name: {RELEASE}" in checked["stdout"], checked["stdout"][-4000:]
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0
    assert release_secrets(kubectl, namespace) == []


def test_absent_uninstalls_and_reports_what_is_left_behind(role, kubectl, namespace):
    role()
    removed = role(helm_release_state="absent")
    assert removed["result"]["action"] == "uninstall" and removed["result"]["changed"] is True, removed["result"]
    assert isinstance(removed["result"]["left_behind"], list)
    assert f"{namespace}/{RELEASE}: uninstall; left behind:" in removed["stdout"]
    assert release_secrets(kubectl, namespace) == []
    assert uids(kubectl, namespace) == {}
    again = role(helm_release_state="absent")
    assert again["result"]["changed"] is False and again["recap"]["changed"] == 0
