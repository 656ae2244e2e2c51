"""helm_deploy as a whole, with helm processes and the cluster faked: decisions, argv, secrets.

The same behaviours are proven against the real cluster in tests/integration; these cases pin
the contract cheaply: how many helm processes, which argv, and what never leaves the module.
"""

from __future__ import annotations

import base64
import json
import types
import typing as t

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _task
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._inputs import INPUTS_LABEL
from ansible_collections.ai_mesh.helm_engine.plugins.modules import helm_deploy
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, FakeKube
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import CONFIGMAP_MANIFEST, release_json


MANIFEST = CONFIGMAP_MANIFEST
SECRET = "Unit-Secret-Value-81"


# The local chart of the task (made per test by the kubeconfig fixture).
CHART: dict[str, str] = {}


@pytest.fixture(autouse=True)
def kubeconfig(kubeconfig, monkeypatch, tmp_path, chart_maker) -> str:
    """The test's kubeconfig through the module's env fallback, and a local chart."""
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", kubeconfig)
    CHART["path"] = chart_maker(tmp_path)
    return kubeconfig


def run(monkeypatch, capsys, args: dict[str, t.Any], history: list[dict], rendered: dict, *, check: bool = False,
        upgraded: dict | None = None, version: str = "v4.3.1", labels: dict[str, str] | None = None,
        api: FakeApi | None = None) -> tuple[dict, t.Any]:
    """helm_deploy once, on a fake cluster holding ``history`` and the latest deployed revision's
    objects, or on ``api`` as an earlier run left it."""
    fake = types.SimpleNamespace(calls=[], deadlines=[], environments=[])
    fake.calls_of_upgrade = lambda: [argv for argv in fake.calls if argv[1] == "upgrade"]

    def answer(argv: list[str], *, deadline: float, env: dict[str, str]) -> tuple[int, str, str]:
        fake.calls.append(list(argv))
        fake.deadlines.append(deadline)
        fake.environments.append(env)
        if argv[1] == "version":
            return 0, version, ""
        if argv[1] == "upgrade":
            body = rendered if "--dry-run=server" in argv else (upgraded or rendered)
            return 0, json.dumps(body), ""
        return 0, "", ""

    monkeypatch.setattr(_task, "run_process", answer)
    if api is None:
        api = FakeApi()
        api.set_releases(history, labels)  # labels: the storage Secret's labels of the latest revision
        if history and history[-1]["info"]["status"] == "deployed":
            api.deploy(history[-1])  # its objects are live, as deployed (drift: see the end of this file)
    monkeypatch.setattr(_task, "KubeClient", FakeKube.bind(api))
    fake.api = api
    full_args = dict({"name": "web", "namespace": "apps", "chart_ref": CHART["path"], "binary_path": "/bin/sh",
                      "_ansible_check_mode": check, "_ansible_diff": True}, **args)
    with patch_module_args(full_args), pytest.raises(SystemExit):
        helm_deploy.main()
    result = json.loads(capsys.readouterr().out)
    assert "exception" not in result, result.get("exception")
    return result, fake


def test_no_op_runs_one_dry_run_and_changes_nothing(monkeypatch, capsys, kubeconfig):
    current = release_json(config={"message": "hello"})
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], current)
    assert result["changed"] is False and result["action"] == "none"
    assert all(d["before"] == d["after"] for d in result["diff"])
    [dry_run] = fake.calls_of_upgrade()
    [values] = [arg for arg in dry_run if arg.startswith("--values=")]
    # The user's single kubeconfig is passed as it is; no context flag since none was set.
    digest = result["inputs_digest"]
    assert len(digest) == 40 and result["rendered"] is True
    assert dry_run == [
        "/bin/sh", "upgrade", "--install", values, "--reset-values", f"--labels={INPUTS_LABEL}={digest}",
        "--dry-run=server", "--output=json", "--namespace=apps", f"--kubeconfig={kubeconfig}", "--", "web", CHART["path"],
    ]
    assert result["commands"][1:] == [" ".join(dry_run)]
    assert result["commands"][0] == f"/bin/sh version --template={{{{.Version}}}} --kubeconfig={kubeconfig}"
    # The server's version (part of the digest), the history, one read of the live ConfigMap (the
    # drift check), and the digest stored on revision 1; no lock: a no-op is decided without it.
    assert result["kube_requests"] == 4
    assert fake.api.count("GET", "/configmaps/web-config") == 1 and result["drift"] == []
    assert fake.api.label_patches() == [(1, INPUTS_LABEL, digest)]


# helm_deploy.py DeployManager.prepare relies on upgrade_argv() to detect helm, but upgrade_argv
# only reads the version for version-dependent options (wait, atomic, force, server_side).


def test_no_op_starts_two_helm_processes(monkeypatch, capsys):
    current = release_json(config={"message": "hello"})
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], current)
    assert result["changed"] is False and result["action"] == "none"
    assert [argv[1] for argv in fake.calls] == ["version", "upgrade"]
    assert result["helm_processes"] == 2
    assert result["helm_version"] == "v4.3.1"


@pytest.mark.parametrize("environment, expected", [({}, "400"), ({"GOGC": "50"}, "50")])
def test_helm_collects_garbage_less_often_unless_the_environment_says(monkeypatch, capsys, environment, expected):
    """A helm process lives a second or two: GOGC=400 unless the task's environment sets GOGC;
    the rest of the environment reaches helm as it is."""
    monkeypatch.delenv("GOGC", raising=False)
    for name, value in dict(environment, HELM_ENGINE_PROBE="kept").items():
        monkeypatch.setenv(name, value)
    current = release_json(config={"message": "hello"})
    _, fake = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], current)
    assert len(fake.environments) == 2
    assert all(env["GOGC"] == expected and env["HELM_ENGINE_PROBE"] == "kept" for env in fake.environments)


def test_check_mode_install_renders_and_stops(monkeypatch, capsys):
    result, fake = run(monkeypatch, capsys, {}, [], release_json(status="pending-install"), check=True)
    assert (result["changed"], result["action"]) == (True, "install")
    [dry_run] = fake.calls_of_upgrade()
    assert "--dry-run=server" in dry_run
    assert result["helm_processes"] == len(fake.calls)
    assert result["changes"] == [{"api_version": "v1", "kind": "ConfigMap", "namespace": "apps", "name": "web-config",
                                  "change": "added"}]


def test_real_first_install_without_diff_runs_helm_once_and_lets_it_validate(monkeypatch, capsys, kubeconfig):
    """No dry run before a first install: its plan is "install" whatever renders, and helm
    validates (OpenAPI schemas included) before it writes anything, so nothing skips that."""
    installed = release_json(config={"message": "hello"})
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "hello"}, "_ansible_diff": False}, [],
                       release_json(status="pending-install"), upgraded=installed)
    assert (result["changed"], result["action"], result["rendered"]) == (True, "install", False)
    [real] = fake.calls_of_upgrade()
    assert "--dry-run=server" not in real and "--disable-openapi-validation" not in real
    assert [argv[1] for argv in fake.calls] == ["version", "upgrade"]
    # What changed is read from the revision helm recorded.
    assert result["changes"] == [{"api_version": "v1", "kind": "ConfigMap", "namespace": "apps", "name": "web-config",
                                  "change": "added"}]
    assert result["previous_revision"] is None and result["release"]["status"] == "deployed"
    assert "diff" not in result


def test_real_first_install_with_diff_renders_first(monkeypatch, capsys, kubeconfig):
    installed = release_json(config={"message": "hello"})
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [],
                       release_json(status="pending-install"), upgraded=installed)
    assert (result["changed"], result["action"], result["rendered"]) == (True, "install", True)
    dry, real = fake.calls_of_upgrade()
    assert [a for a in dry if a != "--dry-run=server"] == [a for a in real if a != "--disable-openapi-validation"]
    assert result["diff"]


def test_check_mode_install_detects_helm_first(monkeypatch, capsys):
    result, fake = run(monkeypatch, capsys, {}, [], release_json(status="pending-install"), check=True)
    assert [argv[1] for argv in fake.calls] == ["version", "upgrade"]


def test_unsupported_helm_is_refused_before_any_change(monkeypatch, capsys):
    """With a version-dependent option helm is detected first, and helm 3.12 refused."""
    current = release_json(config={"message": "hello"})
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "bye"}, "atomic": True}, [current], current,
                       version="v3.12.3")
    assert result["failed"] is True and result["changed"] is False
    assert result["error"]["kind"] == "helm_unsupported"
    assert [argv[1] for argv in fake.calls] == ["version"]


def test_real_upgrade_uses_the_dry_run_argv_minus_the_flag(monkeypatch, capsys, kubeconfig):
    current = release_json(config={"message": "hello"})
    desired = release_json(revision=2, status="pending-upgrade", config={"message": "bye"},
                           manifest=MANIFEST.replace("hello", "bye"))
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "bye"}, "wait": True}, [current], desired,
                       upgraded=dict(desired, info=dict(desired["info"], status="deployed")))
    assert (result["changed"], result["action"], result["reasons"]) == (True, "upgrade", ["values changed", "1 resource(s) changed"])
    assert [argv[1] for argv in fake.calls] == ["version", "upgrade", "upgrade"]
    dry, real = fake.calls_of_upgrade()
    # The same argv; the real run does not validate again what the dry run just validated.
    assert [a for a in dry if a != "--dry-run=server"] == [a for a in real if a != "--disable-openapi-validation"]
    [values] = [arg for arg in real if arg.startswith("--values=")]
    assert real == [
        "/bin/sh", "upgrade", "--install", values, "--reset-values", f"--labels={INPUTS_LABEL}={result['inputs_digest']}",
        "--wait=watcher", "--disable-openapi-validation", "--output=json", "--namespace=apps", f"--kubeconfig={kubeconfig}",
        "--", "web", CHART["path"],
    ]
    # No timeout given: helm's 5m per operation, three of them, plus a margin.
    assert fake.deadlines[1:] == [930.0, 930.0]
    assert result["helm_processes"] == 3 and result["helm_version"] == "v4.3.1"
    assert result["release"]["status"] == "deployed" and result["previous_revision"] == 1


def test_secrets_reach_neither_argv_nor_result(monkeypatch, capsys):
    current = release_json(config={"auth": {"password": "old"}})
    desired = release_json(revision=2, config={"auth": {"password": SECRET}})
    result, fake = run(monkeypatch, capsys,
                       {"release_values": {"auth": {"password": SECRET}},
                        "set_values": [{"value": f"extra.token={SECRET}-set"}]},
                       [current], desired)
    printed = json.dumps(result)
    assert SECRET not in printed
    assert SECRET not in " ".join(result["commands"])
    values_args = [arg for argv in fake.calls for arg in argv if arg.startswith("--values=")]
    assert values_args and all(SECRET not in a for a in values_args)
    assert result["invocation"]["module_args"]["release_values"] == {"auth": {"password": "<redacted>"}}
    assert "<redacted: changed>" in result["diff"][0]["after"]


def test_an_old_secret_a_chart_copied_is_masked_in_the_upgrade_diff(monkeypatch, capsys):
    """The stored revision's values are not in the task, yet its ConfigMap copy is in the diff's
    "before"; a values file's secret, not in the task either, is in its "after"."""
    old, new = "Old-Copied-Secret-42", "New-Copied-From-File-43"
    copy = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-copy\ndata:\n  PASSWORD: {}\n"
    current = release_json(config={"auth": {"password": old}}, manifest=copy.format(old))
    desired = release_json(revision=2, config={"auth": {"password": new}}, manifest=copy.format(new))
    result, _fake = run(monkeypatch, capsys, {}, [current], desired, check=True)
    assert result["changed"] is True and len(result["diff"]) == 2
    printed = json.dumps(result)
    assert old not in printed and new not in printed
    assert "PASSWORD: '********'" in result["diff"][1]["before"] and "PASSWORD: '********'" in result["diff"][1]["after"]


def test_timeout_bounds_helm_and_each_process(monkeypatch, capsys):
    current = release_json(config={"message": "hello"})
    desired = release_json(revision=2, config={"message": "bye"}, manifest=MANIFEST.replace("hello", "bye"))
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "bye"}, "timeout": "2m"}, [current], desired)
    assert result["changed"] is True
    dry, real = fake.calls_of_upgrade()
    assert "--timeout=120s" in real and "--timeout=120s" in dry
    assert fake.deadlines[-2:] == [2 * 120 + 120 + 30.0] * 2


@pytest.mark.parametrize(
    "args, option",
    [
        ({"name": "Web"}, "name"),
        ({"name": "web/../x"}, "name"),
        ({"namespace": "ns/../other"}, "namespace"),
        ({"chart_ref": "-chart"}, "chart_ref"),
        ({"timeout": "-5s"}, "timeout"),
        ({"set_values": [{"value": "no-equals-sign"}]}, "set_values"),
    ],
)
def test_invalid_input_fails_before_any_helm_process(monkeypatch, capsys, args, option):
    result, fake = run(monkeypatch, capsys, args, [], release_json())
    assert result["failed"] is True and result["changed"] is False
    assert result["error"]["kind"] == "invalid_arguments"
    assert result["error"]["option"] == option
    assert fake.calls == []


def test_common_result_fields_come_with_an_early_rejection(monkeypatch, capsys):
    result, fake = run(monkeypatch, capsys, {"name": "Web"}, [], release_json())
    assert result["error"]["kind"] == "invalid_arguments"
    assert (result["commands"], result["helm_processes"], result["kube_requests"]) == ([], 0, 0)


# ---- the render skipped when the deployed revision carries today's inputs digest ----------------


def test_a_matching_inputs_digest_skips_the_render_and_the_lock(monkeypatch, capsys, kubeconfig):
    current = release_json(config={"message": "hello"})
    first, _ = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], current)
    digest = first["inputs_digest"]
    for check in (True, False):
        result, fake = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], current,
                           check=check, labels={INPUTS_LABEL: digest})
        assert (result["changed"], result["action"], result["rendered"]) == (False, "none", False)
        # Not even `helm version`: the first run left its answer in the (per-test) cache.
        assert fake.calls == [] and result["helm_processes"] == 0
        assert result["inputs_digest"] == digest and result["values_digest"] == first["values_digest"]
        assert fake.api.lease_writes() == [] and fake.api.label_patches() == []
        # The server's version, the history and the live ConfigMap (drift); drift=ignore saves the last.
        assert result["kube_requests"] == 3


def test_an_edited_template_is_rendered_despite_the_stored_digest(monkeypatch, capsys, kubeconfig):
    current = release_json(config={"message": "hello"})
    first, _ = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], current)
    with open(f"{CHART['path']}/templates/cm.yaml", "a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    edited = release_json(revision=2, status="pending-upgrade", config={"message": "hello"},
                          manifest=MANIFEST + "  EDITED: yes\n")
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], edited, check=True,
                       labels={INPUTS_LABEL: first["inputs_digest"]})
    assert result["inputs_digest"] != first["inputs_digest"]
    assert (result["changed"], result["action"], result["rendered"]) == (True, "upgrade", True)


def test_changed_values_are_rendered_and_the_new_digest_is_stored_by_helm(monkeypatch, capsys, kubeconfig):
    current = release_json(config={"message": "hello"})
    first, _ = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], current)
    desired = release_json(revision=2, status="pending-upgrade", config={"message": "bye"},
                           manifest=MANIFEST.replace("hello", "bye"))
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "bye"}}, [current], desired,
                       labels={INPUTS_LABEL: first["inputs_digest"]},
                       upgraded=dict(desired, info=dict(desired["info"], status="deployed")))
    assert result["changed"] is True and result["rendered"] is True
    dry, real = fake.calls_of_upgrade()
    assert f"--labels={INPUTS_LABEL}={result['inputs_digest']}" in real
    assert fake.api.lease_writes()  # a change takes the release's lock
    assert fake.api.label_patches() == []  # helm stores the digest with the new revision itself


def test_inputs_that_cannot_be_pinned_clear_a_stored_digest(monkeypatch, capsys, kubeconfig):
    """A remote chart has no digest: the new revision must not keep the old one (helm merges labels)."""
    current = release_json(config={"message": "hello"})
    desired = release_json(revision=2, status="pending-upgrade", config={"message": "bye"},
                           manifest=MANIFEST.replace("hello", "bye"))
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "bye"}, "chart_ref": "oci://registry.example/sample",
                                             "chart_version": "0.1.0"},
                       [current], desired, labels={INPUTS_LABEL: "0" * 40},
                       upgraded=dict(desired, info=dict(desired["info"], status="deployed")))
    assert result["inputs_digest"] is None and result["rendered"] is True
    dry, real = fake.calls_of_upgrade()
    assert f"--labels={INPUTS_LABEL}=null" in real and f"--labels={INPUTS_LABEL}=null" in dry


def test_uninstalling_a_missing_release_takes_no_lock(monkeypatch, capsys, kubeconfig):
    result, fake = run(monkeypatch, capsys, {"state": "absent"}, [], release_json())
    assert (result["changed"], result["action"]) == (False, "none")
    assert fake.api.lease_writes() == [] and fake.calls == []
    removed = release_json(status="uninstalled")
    result, fake = run(monkeypatch, capsys, {"state": "absent"}, [removed], removed)
    assert result["changed"] is False and fake.api.lease_writes() == []


def test_a_change_takes_the_lock_and_reuses_the_decision_render(monkeypatch, capsys, kubeconfig):
    current = release_json(config={"message": "hello"})
    desired = release_json(revision=2, status="pending-upgrade", config={"message": "bye"},
                           manifest=MANIFEST.replace("hello", "bye"))
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "bye"}}, [current], desired,
                       upgraded=dict(desired, info=dict(desired["info"], status="deployed")))
    assert result["changed"] is True
    assert fake.api.lease_writes()[0] == "POST"  # the Lease was created before the change
    # One dry run (before the lock, reused under it since the release had not moved), one real run.
    assert ["--dry-run=server" in argv for argv in fake.calls_of_upgrade()] == [True, False]


# ---- drift ---------------------------------------------------------------------------------------

DRIFT_MANIFEST = MANIFEST + "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\nstringData:\n  password: " + SECRET + "\n"
CONFIGMAP_PATH = "/api/v1/namespaces/apps/configmaps/web-config"
SECRET_PATH = "/api/v1/namespaces/apps/secrets/web-secret"


def drifted(**edits: t.Any) -> tuple[dict, FakeApi]:
    """A deployed revision whose digest matches the task's inputs (no render needed), and a
    cluster where its ConfigMap was edited and its Secret changed by hand."""
    current = release_json(config={"message": "hello", "auth": {"password": SECRET}}, manifest=DRIFT_MANIFEST)
    api = FakeApi()
    api.set_releases([current])
    api.deploy(current)
    api.objects[CONFIGMAP_PATH]["data"]["MESSAGE"] = "edited"
    api.objects[SECRET_PATH]["data"]["password"] = base64.b64encode(b"Changed-By-Hand-99").decode()
    return current, api


def applied(api: FakeApi) -> list[str]:
    """The paths applied for real (a server-side apply that is not a dry run)."""
    return [path for path, dry_run in api.applies if not dry_run]


DRIFT_ARGS = {"release_values": {"message": "hello", "auth": {"password": SECRET}}}


def test_drift_in_check_mode_is_a_change_with_a_redacted_diff_and_nothing_applied(monkeypatch, capsys, kubeconfig):
    current, api = drifted()
    result, fake = run(monkeypatch, capsys, DRIFT_ARGS, [], current, check=True, api=api)
    assert (result["changed"], result["action"]) == (True, "correct_drift")
    assert result["drift"] == [
        {"api_version": "v1", "kind": "ConfigMap", "namespace": "apps", "name": "web-config", "reason": "modified",
         "paths": ["/data/MESSAGE"]},
        {"api_version": "v1", "kind": "Secret", "namespace": "apps", "name": "web-secret", "reason": "modified",
         "paths": ["/data/password"]},
    ]
    assert result["reasons"] == ["drift: ConfigMap/web-config (/data/MESSAGE)", "drift: Secret/web-secret (/data/password)"]
    assert [c["change"] for c in result["changes"]] == ["changed", "changed"]
    [configmap, secret] = result["diff"]
    assert "MESSAGE: edited" in configmap["before"] and "MESSAGE: hello" in configmap["after"]
    # A Secret's data is never shown, the live value least of all; the marker says it differs.
    assert "Changed-By-Hand-99" not in json.dumps(result) and SECRET not in json.dumps(result)
    assert "password: '<redacted: changed>'" in secret["after"]
    assert applied(api) == [] and api.lease_writes() == []
    assert all("--dry-run=server" in argv for argv in fake.calls_of_upgrade())


def test_drift_is_corrected_once_then_the_release_is_a_no_op(monkeypatch, capsys, kubeconfig):
    current, api = drifted()
    result, fake = run(monkeypatch, capsys, DRIFT_ARGS, [], current, api=api)
    assert (result["changed"], result["action"]) == (True, "correct_drift")
    assert applied(api) == [CONFIGMAP_PATH, SECRET_PATH]
    assert api.objects[CONFIGMAP_PATH]["data"]["MESSAGE"] == "hello"
    assert api.lease_writes()[0] == "POST"  # a correction changes the cluster: under the release's lock
    # helm renders to decide (a dry run), and runs no upgrade: no hooks, no new revision.
    assert all("--dry-run=server" in argv for argv in fake.calls_of_upgrade())
    assert [r["version"] for r in api.releases()] == [1]  # no new revision
    again, _ = run(monkeypatch, capsys, DRIFT_ARGS, [], current, api=api)
    assert (again["changed"], again["action"], again["drift"]) == (False, "none", [])


def test_drift_detect_warns_and_changes_nothing(monkeypatch, capsys, kubeconfig):
    current, api = drifted()
    warnings: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning, *a, **kw: warnings.append(warning))
    result, _ = run(monkeypatch, capsys, dict(DRIFT_ARGS, drift="detect"), [], current, api=api)
    assert (result["changed"], result["action"]) == (False, "none")
    assert [d["kind"] for d in result["drift"]] == ["ConfigMap", "Secret"]
    assert warnings == ["Release apps/web has drifted from revision 1: ConfigMap/web-config (/data/MESSAGE), "
                        "Secret/web-secret (/data/password). drift=detect changes nothing."]
    assert applied(api) == [] and api.lease_writes() == []


def test_drift_ignore_does_not_read_the_live_objects(monkeypatch, capsys, kubeconfig):
    current, api = drifted()
    result, _ = run(monkeypatch, capsys, dict(DRIFT_ARGS, drift="ignore"), [], current, api=api)
    assert (result["changed"], result["drift"]) == (False, [])
    assert api.count("GET", "/configmaps") == 0 and api.count("GET", "/secrets/web-secret") == 0


def test_an_ignore_rule_covers_the_fields_it_names(monkeypatch, capsys, kubeconfig):
    current, api = drifted()
    rules = [{"kind": "ConfigMap", "paths": ["/data/MESSAGE"]}, {"name": "web-secret", "paths": ["/data"]}]
    result, _ = run(monkeypatch, capsys, dict(DRIFT_ARGS, drift_ignore=rules), [], current, api=api)
    assert (result["changed"], result["drift"]) == (False, [])


@pytest.mark.parametrize("version, drift, apply_method, forced", [
    ("v4.3.1", "correct", "ssa", True),
    ("v4.3.1", "detect", "ssa", False),
    ("v4.3.1", "correct", "csa", False),   # helm 4 upgrades a client-side release client-side
    ("v3.22.0", "correct", None, False),
])
def test_an_upgrade_takes_fields_back_on_helm_4_server_side_with_drift_correct(monkeypatch, capsys, kubeconfig,
                                                                                 version, drift, apply_method, forced):
    current = dict(release_json(config={"message": "hello"}), **({"apply_method": apply_method} if apply_method else {}))
    desired = release_json(revision=2, status="pending-upgrade", config={"message": "bye"},
                           manifest=MANIFEST.replace("hello", "bye"))
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "bye"}, "drift": drift}, [current], desired,
                       version=version)
    assert result["changed"] is True and result["action"] == "upgrade"
    dry_run, real = fake.calls_of_upgrade()
    assert ("--force-conflicts" in dry_run, "--force-conflicts" in real) == (forced, forced)
