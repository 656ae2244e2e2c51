"""helm_test against the local cluster, on helm 3 and helm 4.

The chart tests/charts/with-tests has two test pods, web-test-first and web-test-second, which
helm runs in that order; ``failingTests`` names the ones kwok fails (pod label
helm-engine.test/test-fail). helm_test never reports changed, and in check mode runs nothing.
"""

from __future__ import annotations

import json

from conftest import CHARTS, helm_work
from test_helm_deploy import SAMPLE, deploy_args

WITH_TESTS = str(CHARTS / "with-tests")
KWOK_LOG = "kwok plays the kubelet"


def install(run_module, namespace: str, chart: str = WITH_TESTS, **release_values) -> None:
    run_module("helm_deploy", deploy_args(namespace, chart_ref=chart, release_values=release_values))


def args_for(namespace: str, **extra) -> dict:
    return dict({"name": "web", "namespace": namespace, "timeout": "60s"}, **extra)


def pods_of_tests(kubectl, namespace: str) -> dict[str, dict]:
    """The test pods in the namespace, by name: their phase and uid."""
    out = kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=test", "-o", "json").stdout
    return {p["metadata"]["name"]: {"phase": p["status"].get("phase"), "uid": p["metadata"]["uid"]}
            for p in json.loads(out)["items"]}


def phases(result: dict) -> list[tuple[str, str]]:
    return [(t["name"], t["phase"]) for t in result["tests"]]


def test_passing_tests_report_each_phase_and_the_pods_logs(run_module, namespace, kubectl):
    install(run_module, namespace)
    result = run_module("helm_test", args_for(namespace))
    assert result["changed"] is False and result["passed"] is True
    assert result["failed_tests"] == []
    assert phases(result) == [("web-test-first", "Succeeded"), ("web-test-second", "Succeeded")]
    assert all(t["kind"] == "Pod" and t["events"] == ["test"] and t["started_at"] and t["completed_at"]
               for t in result["tests"]), result["tests"]
    assert result["revision"] == 1 and result["release"]["status"] == "deployed"
    assert result["logs_available"] is True
    assert sorted(result["logs"]) == ["web-test-first", "web-test-second"]
    assert all(KWOK_LOG in log for log in result["logs"].values()), result["logs"]
    assert helm_work(result) == ["test"] and "--logs" in result["commands"][-1]
    assert {name: pod["phase"] for name, pod in pods_of_tests(kubectl, namespace).items()} == {
        "web-test-first": "Succeeded", "web-test-second": "Succeeded"}

    # Running the tests again runs them again (new pods), and still changes nothing: same revision.
    again = run_module("helm_test", args_for(namespace, logs=False))
    assert again["changed"] is False and again["passed"] is True and again["revision"] == 1
    assert "logs" not in again and "logs_available" not in again
    assert "--logs" not in again["commands"][-1]
    assert all(a["started_at"] >= r["started_at"] for a, r in zip(again["tests"], result["tests"]))
    status = run_module("helm_status", {"name": "web", "namespace": namespace})
    assert [h["revision"] for h in status["history"]] == [1]


def test_a_failing_test_is_hook_failed_and_named(run_module, namespace, kubectl):
    install(run_module, namespace, failingTests=["second"])
    failed = run_module("helm_test", args_for(namespace), expect_failure=True)
    assert failed["error"]["kind"] == "hook_failed", failed["error"]
    assert failed["changed"] is False and failed["passed"] is False
    assert failed["failed_tests"] == ["web-test-second"]
    assert "1 of 2 test(s)" in failed["msg"] and "web-test-second" in failed["msg"]
    assert "web-test-first" not in failed["msg"]
    assert phases(failed) == [("web-test-first", "Succeeded"), ("web-test-second", "Failed")]
    # helm's own failure stays attached, and the logs it printed are returned.
    assert failed["error"]["rc"] != 0 and failed["error"]["stderr"]
    assert KWOK_LOG in failed["logs"]["web-test-second"], failed["logs"]
    assert pods_of_tests(kubectl, namespace)["web-test-second"]["phase"] == "Failed"
    assert failed["release"]["status"] == "deployed" and failed["revision"] == 1


def test_check_mode_runs_nothing(run_module, namespace, kubectl):
    install(run_module, namespace)
    never_run = run_module("helm_test", args_for(namespace), check=True)
    assert never_run["skipped"] is True and never_run["changed"] is False and never_run["passed"] is None
    assert phases(never_run) == [("web-test-first", ""), ("web-test-second", "")]
    assert helm_work(never_run) == [] and "logs" not in never_run
    assert pods_of_tests(kubectl, namespace) == {}

    # After a real run, check mode reports that run's results and starts no new pods.
    real = run_module("helm_test", args_for(namespace))
    pods = pods_of_tests(kubectl, namespace)
    last_run = run_module("helm_test", args_for(namespace), check=True)
    assert last_run["skipped"] is True and last_run["changed"] is False and last_run["passed"] is None
    assert last_run["tests"] == real["tests"]
    assert helm_work(last_run) == []
    assert pods_of_tests(kubectl, namespace) == pods


def test_a_release_that_does_not_exist_is_release_not_found(run_module, namespace):
    for check in (False, True):
        missing = run_module("helm_test", args_for(namespace), check=check, expect_failure=True)
        assert missing["error"]["kind"] == "release_not_found", missing["error"]
        assert "does not exist" in missing["msg"]
        assert helm_work(missing) == []
    # An uninstalled release whose history helm kept is gone too.
    install(run_module, namespace)
    run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent", "purge": False})
    uninstalled = run_module("helm_test", args_for(namespace), expect_failure=True)
    assert uninstalled["error"]["kind"] == "release_not_found", uninstalled["error"]


def test_a_chart_without_tests_passes_without_running_helm_test(run_module, namespace, kubectl):
    install(run_module, namespace, chart=SAMPLE)
    result = run_module("helm_test", args_for(namespace))
    assert result["changed"] is False and result["passed"] is True
    assert result["tests"] == [] and result["failed_tests"] == []
    assert result["msg"] == "the chart defines no tests"
    assert result["revision"] == 1
    assert helm_work(result) == []
    assert pods_of_tests(kubectl, namespace) == {}
