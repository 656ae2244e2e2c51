"""helm_rollback as a whole, with helm processes and the cluster faked: target choice, idempotence,
check mode, what the result keeps of the revision it leaves, and the errors.

The real behaviour is proven on the local cluster in tests/integration/test_helm_rollback.py;
these cases pin the contract cheaply: how many helm processes, which revision, which kind.
"""

from __future__ import annotations

import json
import types
import typing as t

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _task
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release
from ansible_collections.ai_mesh.helm_engine.plugins.modules import helm_rollback
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, FakeKube
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release_json

SECRET = "Rollback-Unit-Secret-5e2b"


def manifest(message: str) -> str:
    return f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  MESSAGE: {message}\n"


def revision(number: int, status: str, message: str, *, password: str | None = None,
             updated: str = "2026-11-25T10:00:00Z") -> dict[str, t.Any]:
    config: dict[str, t.Any] = {"message": message}
    if password is not None:
        config["auth"] = {"password": password}
    return release_json(number, status, config=config, manifest=manifest(message), updated=updated,
                        description=f"revision {number}")


def run(monkeypatch, capsys, kubeconfig: str, args: dict[str, t.Any], history: list[dict[str, t.Any]], *,
        check: bool = False, rollback_answer: tuple[int, str, str] = (0, "Rollback was a success!", "")) -> tuple[dict, t.Any]:
    fake = types.SimpleNamespace(calls=[], deadlines=[])

    def answer(argv: list[str], *, deadline: float, **kwargs: t.Any) -> tuple[int, str, str]:
        fake.calls.append(list(argv))
        fake.deadlines.append(deadline)
        if argv[1] == "version":
            return 0, "v4.3.1", ""
        if argv[1] == "rollback":
            if rollback_answer[0] == 0:
                api.roll_back(int(argv[-1]))
            return rollback_answer
        return 0, "", ""

    monkeypatch.setattr(_task, "run_process", answer)
    api = FakeApi()
    api.set_releases(history)
    monkeypatch.setattr(_task, "KubeClient", FakeKube.bind(api))
    fake.api = api
    full_args = dict({"name": "web", "namespace": "apps", "binary_path": "/bin/sh", "kubeconfig": kubeconfig,
                      "_ansible_check_mode": check, "_ansible_diff": True}, **args)
    with patch_module_args(full_args), pytest.raises(SystemExit):
        helm_rollback.main()
    return json.loads(capsys.readouterr().out), fake


def rollbacks(fake: t.Any) -> list[list[str]]:
    return [argv for argv in fake.calls if argv[1] == "rollback"]


GOOD_THEN_FAILED = [revision(1, "superseded", "one"), revision(2, "superseded", "two"),
                    revision(3, "failed", "bad", password=SECRET)]


# ---- targets -----------------------------------------------------------------------------------

def test_last_good_skips_a_failed_revision(monkeypatch, capsys, kubeconfig):
    result, fake = run(monkeypatch, capsys, kubeconfig, {}, GOOD_THEN_FAILED)
    assert result["changed"] is True and result["action"] == "rollback"
    assert (result["from_revision"], result["to_revision"], result["revision"]) == (3, 2, 4)
    assert result["release"]["status"] == "deployed"
    assert len(rollbacks(fake)) == 1
    assert rollbacks(fake)[0][-3:] == ["--", "web", "2"]
    assert "--namespace=apps" in rollbacks(fake)[0]


def test_previous_is_the_revision_just_before(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "superseded", "one"), revision(2, "superseded", "two"), revision(3, "deployed", "three")]
    result, fake = run(monkeypatch, capsys, kubeconfig, {"target": "previous"}, history)
    assert result["changed"] is True and result["to_revision"] == 2
    assert rollbacks(fake)[0][-1] == "2"


def test_a_given_revision_overrides_target(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "superseded", "one"), revision(2, "superseded", "two"), revision(3, "deployed", "three")]
    result, fake = run(monkeypatch, capsys, kubeconfig, {"revision": 1, "target": "previous"}, history)
    assert result["to_revision"] == 1 and result["revision"] == 4
    assert rollbacks(fake)[0][-1] == "1"
    assert "values changed" in result["reasons"]


def test_options_reach_the_rollback_argv(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "superseded", "one"), revision(2, "deployed", "two")]
    result, fake = run(monkeypatch, capsys, kubeconfig,
                       {"revision": 1, "wait": True, "timeout": "90s", "cleanup_on_fail": True, "history_max": 5},
                       history)
    argv = rollbacks(fake)[0]
    assert {"--wait=watcher", "--timeout=90s", "--cleanup-on-fail", "--history-max=5"} <= set(argv)
    # The deadline bounds the process: three timeouts plus a margin.
    assert fake.deadlines[-1] == 90 * 3 + 30


# ---- idempotence and check mode ----------------------------------------------------------------

def test_a_deployed_release_already_at_last_good_is_a_no_op(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "superseded", "one"), revision(2, "deployed", "two")]
    result, fake = run(monkeypatch, capsys, kubeconfig, {}, history)
    assert result["changed"] is False and result["action"] == "none"
    assert result["reasons"] == [] and result["changes"] == []
    assert rollbacks(fake) == []
    assert result["helm_processes"] == 1  # helm version only
    assert all(d["before"] == d["after"] for d in result["diff"])


def test_rolling_back_to_a_revision_with_the_same_content_is_a_no_op(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "superseded", "one"), revision(2, "superseded", "two"), revision(3, "deployed", "one")]
    result, fake = run(monkeypatch, capsys, kubeconfig, {"revision": 1}, history)
    assert result["changed"] is False and rollbacks(fake) == []
    assert result["revision"] == 3


def test_check_mode_runs_no_rollback_and_predicts_the_real_run(monkeypatch, capsys, kubeconfig):
    check, fake = run(monkeypatch, capsys, kubeconfig, {}, GOOD_THEN_FAILED, check=True)
    assert check["changed"] is True and rollbacks(fake) == []
    assert check["revision"] == 3  # nothing happened
    real, _ = run(monkeypatch, capsys, kubeconfig, {}, GOOD_THEN_FAILED)
    for key in ("action", "reasons", "changes", "from_revision", "to_revision", "diff", "left"):
        assert check[key] == real[key], key


# ---- what the result keeps ---------------------------------------------------------------------

def test_the_status_reason_comes_first(monkeypatch, capsys, kubeconfig):
    result, _ = run(monkeypatch, capsys, kubeconfig, {}, GOOD_THEN_FAILED)
    assert result["reasons"][0] == "release status is failed"
    assert "values changed" in result["reasons"]


def test_a_failed_release_with_the_target_content_still_rolls_back(monkeypatch, capsys, kubeconfig):
    """Only the status differs: the status reason alone makes it a change."""
    history = [revision(1, "superseded", "one"), revision(2, "failed", "one")]
    result, fake = run(monkeypatch, capsys, kubeconfig, {}, history)
    assert result["changed"] is True
    assert result["reasons"] == ["release status is failed"]
    assert len(rollbacks(fake)) == 1


def test_left_redacts_secrets_and_carries_digests(monkeypatch, capsys, kubeconfig):
    result, _ = run(monkeypatch, capsys, kubeconfig, {}, GOOD_THEN_FAILED)
    left = result["left"]
    assert (left["revision"], left["status"], left["chart"], left["chart_version"]) == (3, "failed", "sample", "0.1.0")
    assert left["user_values"] == {"message": "bad", "auth": {"password": "<redacted>"}}
    failed = Release.from_json(GOOD_THEN_FAILED[2])
    assert left["values_digest"] == failed.values_digest()
    assert left["manifest_digest"] == failed.manifest_digest()
    assert left["values_digest"].startswith("sha256:") and len(left["values_digest"]) == 7 + 64
    assert SECRET not in json.dumps(result)


def test_history_max_that_prunes_the_target_warns(monkeypatch, capsys, kubeconfig):
    # Recorded at module.warn: where Ansible delivers a warning depends on global state (a
    # controller import elsewhere in the session sends it to the display instead of the result).
    warnings: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning, *a, **kw: warnings.append(warning))
    history = [revision(1, "superseded", "one"), revision(2, "superseded", "two"), revision(3, "deployed", "three")]
    result, _ = run(monkeypatch, capsys, kubeconfig, {"revision": 1, "history_max": 2}, history)
    assert result["changed"] is True
    assert warnings == ["history_max=2: revision 1 will be pruned from the history after this rollback "
                        "(its content lives on in revision 4)."]
    warnings.clear()
    run(monkeypatch, capsys, kubeconfig, {"revision": 2, "history_max": 3}, history)
    assert warnings == []


# ---- errors ------------------------------------------------------------------------------------

def test_a_failed_target_needs_allow_failed(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "superseded", "one"), revision(2, "failed", "two"), revision(3, "deployed", "three")]
    refused, fake = run(monkeypatch, capsys, kubeconfig, {"revision": 2}, history)
    assert refused["failed"] and refused["error"]["kind"] == "invalid_arguments"
    assert "allow_failed" in refused["msg"] and refused["changed"] is False
    assert rollbacks(fake) == []
    allowed, fake = run(monkeypatch, capsys, kubeconfig, {"revision": 2, "allow_failed": True}, history)
    assert allowed["changed"] is True and rollbacks(fake)[0][-1] == "2"


def test_a_missing_release_is_release_not_found(monkeypatch, capsys, kubeconfig):
    result, fake = run(monkeypatch, capsys, kubeconfig, {}, [])
    assert result["failed"] and result["error"]["kind"] == "release_not_found"
    assert "apps/web does not exist" in result["msg"]
    assert rollbacks(fake) == []


def test_an_uninstalled_release_is_release_not_found(monkeypatch, capsys, kubeconfig):
    result, _ = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "uninstalled", "one")])
    assert result["error"]["kind"] == "release_not_found"


@pytest.mark.parametrize("args, needle", [
    ({"revision": 99}, "Revision 99"),
    ({"target": "previous"}, "no revision before 1"),
])
def test_a_revision_not_in_the_history_is_revision_not_found(monkeypatch, capsys, kubeconfig, args, needle):
    result, fake = run(monkeypatch, capsys, kubeconfig, args, [revision(1, "deployed", "one")])
    assert result["failed"] and result["error"]["kind"] == "revision_not_found"
    assert needle in result["msg"] and rollbacks(fake) == []


def test_no_good_revision_at_all_is_revision_not_found(monkeypatch, capsys, kubeconfig):
    result, _ = run(monkeypatch, capsys, kubeconfig, {}, [revision(1, "failed", "one")])
    assert result["error"]["kind"] == "revision_not_found"
    assert "no revision that deployed successfully" in result["msg"]


@pytest.mark.parametrize("args, option", [
    ({"revision": 0}, "revision"),
    ({"revision": -1}, "revision"),
    ({"history_max": -1}, "history_max"),
    ({"timeout": "abc"}, "timeout"),
    ({"lock_wait": -1}, "lock_wait"),
    ({"stale_pending_after": "x"}, "stale_pending_after"),
])
def test_bad_inputs_are_refused_before_helm_runs(monkeypatch, capsys, kubeconfig, args, option):
    history = [revision(1, "superseded", "one"), revision(2, "deployed", "two")]
    result, fake = run(monkeypatch, capsys, kubeconfig, args, history)
    assert result["failed"] and result["error"]["kind"] == "invalid_arguments"
    assert result["error"]["option"] == option and option in result["msg"]
    assert fake.calls == []


def test_a_helm_failure_reports_the_revision_it_left(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "superseded", "one"), revision(2, "deployed", "two")]
    result, fake = run(monkeypatch, capsys, kubeconfig, {"revision": 1}, history,
                       rollback_answer=(1, "", "Error: timed out waiting for the condition"))
    assert result["failed"] and result["error"]["kind"] == "timeout"
    # The fake wrote no new revision: nothing changed.
    assert result["changed"] is False and result["revision"] == 2


def test_previous_revision_names_the_revision_before_the_task_as_helm_deploy_does(monkeypatch, capsys, kubeconfig):
    result, _ = run(monkeypatch, capsys, kubeconfig, {}, GOOD_THEN_FAILED)
    assert result["previous_revision"] == result["from_revision"] == 3 and result["revision"] == 4
    history = [revision(1, "superseded", "one"), revision(2, "deployed", "two")]
    failed, _ = run(monkeypatch, capsys, kubeconfig, {"revision": 1}, history,
                    rollback_answer=(1, "", "Error: timed out waiting for the condition"))
    assert failed["failed"] and failed["previous_revision"] == 2


def test_a_stale_pending_release_is_marked_failed_then_rolled_back(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "deployed", "one"),
               revision(2, "pending-upgrade", "two", updated="2020-01-01T00:00:00Z")]
    history[0]["info"]["status"] = "superseded"
    result, fake = run(monkeypatch, capsys, kubeconfig, {}, history)
    assert result["changed"] is True and result["to_revision"] == 1
    assert result["recovery"]["stuck_revision"] == 2 and result["recovery"]["performed"] is True
    assert [r for r, _ in fake.api.marked_failed()] == [2]


def test_a_fresh_pending_release_is_release_locked(monkeypatch, capsys, kubeconfig):
    history = [revision(1, "superseded", "one"), revision(2, "pending-upgrade", "two", updated="2099-01-01T00:00:00Z")]
    result, fake = run(monkeypatch, capsys, kubeconfig, {}, history)
    assert result["failed"] and result["error"]["kind"] == "release_locked"
    assert rollbacks(fake) == [] and fake.api.marked_failed() == []
