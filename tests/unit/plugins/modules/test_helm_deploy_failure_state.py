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
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import KUBERNETES_API, KubeError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release
from ansible_collections.ai_mesh.helm_engine.plugins.modules import helm_deploy

MANIFEST = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  MESSAGE: {message}\n"
TIMEOUT_STDERR = "Error: UPGRADE FAILED: context deadline exceeded"


def release_json(revision: int, status: str, message: str) -> dict[str, t.Any]:
    return {
        "name": "web", "namespace": "apps", "version": revision,
        "info": {"status": status, "last_deployed": "2026-11-25T10:00:00Z", "description": f"revision {revision}"},
        "chart": {"metadata": {"name": "sample", "version": "0.1.0", "appVersion": "1.0.0"}},
        "config": {"message": message}, "manifest": MANIFEST.format(message=message), "hooks": [],
    }


class FakeKube:
    """helm's history; ``after_failure`` replaces it once the real upgrade ran (None: reading fails)."""

    history: list[dict[str, t.Any]] = []
    after_failure: list[dict[str, t.Any]] | None = []
    upgraded = False

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        self.request_count = 0

    def release_history(self, name: str, namespace: str) -> list[Release]:
        self.request_count += 1
        if FakeKube.upgraded:
            if FakeKube.after_failure is None:
                raise KubeError(KUBERNETES_API, "GET secrets: Kubernetes API error 500: boom", details={"status": 500})
            return [Release.from_json(h) for h in FakeKube.after_failure]
        return [Release.from_json(h) for h in FakeKube.history]

    def server_version(self) -> str:
        self.request_count += 1
        return "v1.36.3"

    labelled: t.ClassVar[list[tuple[int, str, str]]] = []

    def label_revision(self, release: Release, key: str, value: str) -> None:
        self.request_count += 1
        FakeKube.labelled.append((release.revision, key, value))

    # The release lock (a Lease) is always free here; test__lock.py covers the lock itself.
    def get_json(self, path: str, query: t.Any = None, *, missing_ok: bool = False) -> t.Any:
        return None

    def write_json(self, method: str, path: str, body: dict[str, t.Any]) -> t.Any:
        return dict(body, metadata=dict(body.get("metadata") or {}, uid="lease-uid", resourceVersion="1"))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("KUBECONFIG", "K8S_AUTH_CONTEXT", "K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_SSL_CA_CERT",
                 "K8S_AUTH_VERIFY_SSL", "K8S_AUTH_KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kubeconfig(tmp_path, chart_maker) -> str:
    chart_maker(tmp_path)
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "unit",
        "clusters": [{"name": "unit", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "unit", "user": {"token": "unit-token"}}],
        "contexts": [{"name": "unit", "context": {"cluster": "unit", "user": "unit"}}],
    }))
    return str(path)


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
            FakeKube.upgraded = True
            return 1, "", TIMEOUT_STDERR
        return 0, "", ""

    monkeypatch.setattr(_task, "run_process", answer)
    monkeypatch.setattr(_task, "KubeClient", FakeKube)
    monkeypatch.setattr(FakeKube, "history", history)
    monkeypatch.setattr(FakeKube, "after_failure", after_failure)
    monkeypatch.setattr(FakeKube, "upgraded", False)
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
