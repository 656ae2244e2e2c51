"""helm_deploy when helm fails after it may have written a revision: the failure reports the state
it left, and ``changed`` says whether the release history moved.

A playbook's rescue decides whether to roll back from these fields; a failure that wrote a failed
revision must never claim changed=false.
"""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _task
from ansible_collections.ai_mesh.helm_engine.plugins.modules import helm_deploy
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, FakeKube
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release_json as shared_release_json

MANIFEST = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  MESSAGE: {message}\n"
TIMEOUT_STDERR = "Error: UPGRADE FAILED: context deadline exceeded"


def release_json(revision: int, status: str, message: str) -> dict[str, t.Any]:
    return shared_release_json(revision, status, config={"message": message}, manifest=MANIFEST.format(message=message),
                               description=f"revision {revision}")


@pytest.fixture
def kubeconfig(kubeconfig, tmp_path, chart_maker) -> str:
    """The test's kubeconfig, beside the local chart the task deploys."""
    chart_maker(tmp_path)
    return kubeconfig


def run(monkeypatch, capsys, kubeconfig: str, history: list[dict], after_failure: list[dict] | None, *,
        version: str = "v4.3.1", message: str = "new") -> tuple[dict[str, t.Any], list[list[str]]]:
    calls: list[list[str]] = []
    desired = release_json((history[-1]["version"] + 1) if history else 1, "pending-upgrade", message)

    def answer(argv: list[str], *, deadline: float, **kwargs: t.Any) -> tuple[int, str, str]:
        calls.append(list(argv))
        if argv[1] == "version":
            return 0, version, ""
        if argv[1] == "upgrade" and "--dry-run=server" in argv:
            return 0, json.dumps(desired), ""
        if argv[1] == "upgrade":
            if after_failure is None:  # reading the history after the failure fails
                api.fail("GET", "/secrets")
            else:
                api.set_releases(after_failure)
            return 1, "", TIMEOUT_STDERR
        return 0, "", ""

    monkeypatch.setattr(_task, "run_process", answer)
    api = FakeApi()
    api.set_releases(history)
    monkeypatch.setattr(_task, "KubeClient", FakeKube.bind(api))
    args = {"name": "web", "namespace": "apps", "chart_ref": str(pathlib.Path(kubeconfig).parent / "sample"), "binary_path": "/bin/sh", "kubeconfig": kubeconfig,
            "release_values": {"message": message}, "wait": True, "timeout": "5s",
            "_ansible_check_mode": False, "_ansible_diff": False}
    with patch_module_args(args), pytest.raises(SystemExit):
        helm_deploy.main()
    return json.loads(capsys.readouterr().out), calls


def test_an_upgrade_that_wrote_a_failed_revision_is_changed(monkeypatch, capsys, kubeconfig):
    before = [release_json(1, "deployed", "old")]
    after = [release_json(1, "superseded", "old"), release_json(2, "failed", "new")]
    result, calls = run(monkeypatch, capsys, kubeconfig, before, after)
    assert result["failed"] is True and result["error"]["kind"] == "timeout"
    assert result["changed"] is True
    assert (result["release"]["revision"], result["release"]["status"]) == (2, "failed")
    assert result["previous_revision"] == 1
    assert [argv[1] for argv in calls] == ["version", "upgrade", "upgrade"]


def test_a_first_install_that_left_a_failed_release_is_changed(monkeypatch, capsys, kubeconfig):
    result, _ = run(monkeypatch, capsys, kubeconfig, [], [release_json(1, "failed", "new")])
    assert result["failed"] is True and result["changed"] is True
    assert result["release"]["status"] == "failed" and result["previous_revision"] is None


def test_an_atomic_rollback_that_moved_the_history_is_changed(monkeypatch, capsys, kubeconfig):
    """1 good, 2 failed, 3 = the automatic rollback to 1: the cluster holds what it held, the history moved."""
    before = [release_json(1, "deployed", "old")]
    after = [release_json(1, "superseded", "old"), release_json(2, "failed", "new"), release_json(3, "deployed", "old")]
    result, _ = run(monkeypatch, capsys, kubeconfig, before, after)
    assert result["changed"] is True and result["release"]["revision"] == 3


def test_a_failure_that_wrote_nothing_is_not_changed(monkeypatch, capsys, kubeconfig):
    before = [release_json(1, "deployed", "old")]
    result, _ = run(monkeypatch, capsys, kubeconfig, before, before)
    assert result["failed"] is True and result["changed"] is False
    assert result["release"]["revision"] == 1


def test_a_first_install_that_wrote_nothing_is_not_changed(monkeypatch, capsys, kubeconfig):
    result, _ = run(monkeypatch, capsys, kubeconfig, [], [])
    assert result["failed"] is True and result["changed"] is False
    assert "release" not in result


def test_when_the_history_cannot_be_read_after_a_failure_changed_is_false(monkeypatch, capsys, kubeconfig):
    result, _ = run(monkeypatch, capsys, kubeconfig, [release_json(1, "deployed", "old")], None)
    assert result["failed"] is True and result["error"]["kind"] == "timeout"
    assert result["changed"] is False


def test_a_helm3_repair_before_a_failed_upgrade_is_changed_even_if_the_upgrade_wrote_nothing(monkeypatch, capsys, kubeconfig):
    """On helm 3 a failed release is first rolled back to the last good revision; that rollback
    is a change even when the upgrade after it fails without a trace."""
    before = [release_json(1, "superseded", "old"), release_json(2, "failed", "bad")]
    result, calls = run(monkeypatch, capsys, kubeconfig, before, None, version="v3.22.0")
    assert [argv[1] for argv in calls] == ["version", "upgrade", "rollback", "upgrade"]
    assert result["failed"] is True and result["changed"] is True
    assert calls[2][-3:] == ["--", "web", "1"]
