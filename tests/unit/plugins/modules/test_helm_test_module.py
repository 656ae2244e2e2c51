"""helm_test's reading of ``helm test --logs`` output."""

from __future__ import annotations

import json

from ansible_collections.ai_mesh.helm_engine.plugins.modules.helm_test import parse_logs
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, FakeKube
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.releases import release_json


def test_parse_logs_splits_per_pod():
    stdout = ("NAME: web\nPhase:          Succeeded\n\nPOD LOGS: web-test-a\nok a\nline 2\n\n"
              "POD LOGS: web-test-b\nok b\n")
    assert parse_logs(stdout) == {"web-test-a": "ok a\nline 2\n", "web-test-b": "ok b\n"}


def test_parse_logs_of_helm_4_names_each_container():
    stdout = ("NAME: web\nPhase:          Succeeded\n\nPOD LOGS: web-test-a (check)\nok a\n\n"
              "POD LOGS: web-test-a (sidecar)\nside\n\nPOD LOGS: web-test-b (check)\nok b\n\n")
    assert parse_logs(stdout) == {"web-test-a": "ok a\nside\n", "web-test-b": "ok b\n"}


def test_parse_logs_without_logs():
    assert parse_logs("NAME: web\nPhase: Succeeded\n") == {}
    assert parse_logs(None) == {}


def test_test_pod_logs_are_redacted_with_the_release_values():
    """A test pod that prints a value it was given (a password in its env) never returns it."""
    import types

    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._storage import ReleaseStore
    from ansible_collections.ai_mesh.helm_engine.plugins.modules.helm_test import TestManager

    secret = "Test-Pod-Secret-5e1f"
    api = FakeApi()
    api.set_releases([release_json(2, config={"auth": {"password": secret}}, manifest="", chart="web", chart_version="1.0.0",
                                   hooks=[{"name": "web-test", "kind": "Pod", "events": ["test"],
                                           "last_run": {"phase": "Succeeded"}}])])
    helm = types.SimpleNamespace(version="v4.3.1", test=lambda spec: types.SimpleNamespace(
        stdout=f"NAME: web\nPOD LOGS: web-test\nconnecting with password {secret}\nok\n"))
    kube = FakeKube.bind(api)()
    redactor = Redactor()
    module = types.SimpleNamespace(params={"logs": True}, check_mode=False, warn=lambda msg: None)
    context = types.SimpleNamespace(module=module, check_mode=False, name="web", namespace="apps", kube=kube, helm=helm,
                                    store=ReleaseStore(kube, redactor), detect_helm=lambda: helm,
                                    redactor=redactor, timeout=None, params=module.params, warn=module.warn)
    result = TestManager(context).run()
    assert result["passed"] is True and result["logs_available"] is True
    assert "connecting with password" in result["logs"]["web-test"], result["logs"]
    assert secret not in json.dumps(result)
