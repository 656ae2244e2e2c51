"""helm_test's reading of ``helm test --logs`` output."""

from __future__ import annotations

from ansible_collections.ai_mesh.helm_engine.plugins.modules.helm_test import parse_logs


def test_parse_logs_splits_per_pod():
    stdout = ("NAME: web\nPhase:          Succeeded\n\nPOD LOGS: web-test-a\nok a\nline 2\n\n"
              "POD LOGS: web-test-b\nok b\n")
    assert parse_logs(stdout) == {"web-test-a": "ok a\nline 2\n", "web-test-b": "ok b\n"}


def test_parse_logs_without_logs():
    assert parse_logs("NAME: web\nPhase: Succeeded\n") == {}
    assert parse_logs(None) == {}
