"""helm_deploy as a whole, with run_command and the cluster faked: decisions, argv, secrets.

The same behaviours are proven against the real cluster in tests/integration; these cases pin
the contract cheaply: how many helm processes, which argv, and what never leaves the module.
"""

from __future__ import annotations

import json
import types
import typing as t

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _common
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import Release
from ansible_collections.ai_mesh.helm_engine.plugins.modules import helm_deploy


MANIFEST = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  MESSAGE: hello\n"
SECRET = "Unit-Secret-Value-81"


def release_json(revision: int = 1, status: str = "deployed", config: dict | None = None, manifest: str = MANIFEST) -> dict:
    return {
        "name": "web", "namespace": "apps", "version": revision,
        "info": {"status": status, "last_deployed": "2026-11-25T10:00:00Z", "description": "Install complete"},
        "chart": {"metadata": {"name": "sample", "version": "0.1.0", "appVersion": "1.0.0"}},
        "config": config or {}, "manifest": manifest, "hooks": [],
    }


class FakeKube:
    history: list[Release] = []

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        pass

    def release_history(self, name: str, namespace: str) -> list[Release]:
        return list(self.history)


def run(monkeypatch, capsys, args: dict[str, t.Any], history: list[dict], rendered: dict, *, check: bool = False,
        upgraded: dict | None = None) -> tuple[dict, t.Any]:
    fake = types.SimpleNamespace(calls=[])

    def answer(argv: list[str], **kwargs: t.Any) -> tuple[int, str, str]:
        fake.calls.append(list(argv))
        if argv[1] == "version":
            return 0, "v4.3.1", ""
        if argv[1] == "upgrade":
            body = rendered if "--dry-run=server" in argv else (upgraded or rendered)
            return 0, json.dumps(body), ""
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: answer(argv, **kw))
    monkeypatch.setattr(_common, "KubeClient", FakeKube)
    monkeypatch.setattr(FakeKube, "history", [Release.from_json(h) for h in history])
    full_args = dict({"name": "web", "namespace": "apps", "chart_ref": "/", "binary_path": "/bin/sh",
                      "_ansible_check_mode": check, "_ansible_diff": True}, **args)
    with patch_module_args(full_args), pytest.raises(SystemExit):
        helm_deploy.main()
    return json.loads(capsys.readouterr().out), fake


def test_no_op_starts_two_helm_processes(monkeypatch, capsys):
    current = release_json(config={"message": "hello"})
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "hello"}}, [current], current)
    assert result["changed"] is False and result["action"] == "none"
    assert result["helm_processes"] == 2
    assert [argv[1] for argv in fake.calls] == ["version", "upgrade"]
    assert all(d["before"] == d["after"] for d in result["diff"])


def test_check_mode_install_renders_and_stops(monkeypatch, capsys):
    result, fake = run(monkeypatch, capsys, {}, [], release_json(status="pending-install"), check=True)
    assert (result["changed"], result["action"]) == (True, "install")
    assert [argv[1] for argv in fake.calls] == ["version", "upgrade"]
    assert "--dry-run=server" in fake.calls[1]
    assert result["changes"] == [{"api_version": "v1", "kind": "ConfigMap", "namespace": "apps", "name": "web-config",
                                  "change": "added"}]


def test_real_upgrade_uses_the_dry_run_argv_minus_the_flag(monkeypatch, capsys):
    current = release_json(config={"message": "hello"})
    desired = release_json(revision=2, status="pending-upgrade", config={"message": "bye"},
                           manifest=MANIFEST.replace("hello", "bye"))
    result, fake = run(monkeypatch, capsys, {"release_values": {"message": "bye"}, "wait": True}, [current], desired,
                       upgraded=dict(desired, info=dict(desired["info"], status="deployed")))
    assert (result["changed"], result["action"], result["reasons"]) == (True, "upgrade", ["values changed", "1 resource(s) changed"])
    dry, real = fake.calls[1], fake.calls[2]
    assert [a for a in dry if a != "--dry-run=server"] == real
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
    values_args = [argv[argv.index("--values") + 1] for argv in fake.calls if "--values" in argv]
    assert values_args and all(SECRET not in a for a in values_args)
    assert result["invocation"]["module_args"]["release_values"] == {"auth": {"password": "<redacted>"}}
    assert "<redacted: changed>" in result["diff"][0]["after"]
