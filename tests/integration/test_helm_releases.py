"""helm_releases on the local cluster, every case on helm 3 and helm 4: A -> B -> {C, D} in order and
in parallel, the plan in check mode, a failure that skips what needs it, removal in reverse order,
lists that cannot be ordered refused before any change, and the repeat of the whole set a no-op."""

from __future__ import annotations

import json
import typing as t

from conftest import CHARTS

SAMPLE = str(CHARTS / "sample")


def release(name: str, *needs: str, **options: t.Any) -> dict[str, t.Any]:
    return dict({"name": name, "chart_ref": SAMPLE, "needs": list(needs)}, **options)


def stack(namespace: str, releases: list[dict[str, t.Any]], **options: t.Any) -> dict[str, t.Any]:
    return dict({"defaults": {"namespace": namespace, "create_namespace": True, "wait": True, "timeout": "60s"},
                 "releases": releases, "concurrency": 4}, **options)


def by_name(result: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    return {r["name"]: r for r in result["releases"]}


def ends(outcome: dict[str, t.Any]) -> float:
    """When a release's run ended, to the 2 ms that rounding ``started`` and ``duration`` costs."""
    return outcome["started"] + outcome["duration"] - 0.002


def helm_secrets(kubectl, namespace: str) -> list[str]:
    found = kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm", "-o", "json", check=False)
    return sorted(s["metadata"]["name"] for s in json.loads(found.stdout)["items"]) if found.returncode == 0 else []


CHAIN = [release("a"), release("b", "a"), release("c", "b"), release("d", "b")]


def test_a_chain_then_a_fan_out_in_order_and_in_parallel_with_a_plan_first(run_module, namespace, kubectl):
    args = stack(namespace, CHAIN)
    plan = run_module("helm_releases", args, check=True)
    assert plan["order"] == [[f"{namespace}/a"], [f"{namespace}/b"], [f"{namespace}/c", f"{namespace}/d"]]
    assert [(r["name"], r["action"], r["changed"]) for r in plan["releases"]] == [
        ("a", "install", True), ("b", "install", True), ("c", "install", True), ("d", "install", True)]
    assert all(r["changes"] for r in plan["releases"]) and plan["changed"] is True
    assert helm_secrets(kubectl, namespace) == [], "check mode wrote a revision"

    real = run_module("helm_releases", args)
    outcome = by_name(real)
    assert [(r["name"], r["action"], r["revision"]) for r in real["releases"]] == [
        ("a", "install", 1), ("b", "install", 1), ("c", "install", 1), ("d", "install", 1)]
    # b starts after a is deployed (wait), c and d after b, and c and d overlap.
    assert outcome["b"]["started"] >= ends(outcome["a"])
    assert min(outcome["c"]["started"], outcome["d"]["started"]) >= ends(outcome["b"])
    assert outcome["c"]["started"] < ends(outcome["d"]) and outcome["d"]["started"] < ends(outcome["c"])
    assert [(r["name"], r["changes"]) for r in plan["releases"]] == [(r["name"], r["changes"]) for r in real["releases"]]

    again = run_module("helm_releases", args)
    assert again["changed"] is False and {r["action"] for r in again["releases"]} == {"none"}
    assert again["helm_processes"] == 0, again["commands"]  # every release's render skipped


def test_a_failure_skips_what_needs_it_and_an_independent_release_still_deploys(run_module, namespace, kubectl):
    releases = [release("a"), release("b", "a", release_values={"crashLoop": True}, atomic=True, timeout="180s"),
                release("c", "b"), release("d", "b"), release("e")]
    result = run_module("helm_releases", stack(namespace, releases), expect_failure=True)
    outcome = by_name(result)
    assert outcome["a"]["action"] == "install" and outcome["e"]["action"] == "install"
    assert outcome["b"]["error"]["kind"] == "rollout_failed" and outcome["b"]["rolled_back"] is True
    assert outcome["c"]["action"] == outcome["d"]["action"] == "skipped"
    assert outcome["c"]["skipped"] == f"needs {namespace}/b, which failed or was skipped"
    assert result["error"]["kind"] == "rollout_failed" and result["changed"] is True
    assert result["error"]["failed"] == [f"{namespace}/b"]
    assert result["error"]["skipped"] == [f"{namespace}/c", f"{namespace}/d"]
    assert result["error"]["rolled_back"] == [f"{namespace}/b"]
    assert result["msg"].startswith(f"1 of 5 release(s) failed: {namespace}/b (rollout_failed: ")
    assert f"; skipped: {namespace}/c, {namespace}/d; rolled back: {namespace}/b." in result["msg"]
    secrets = helm_secrets(kubectl, namespace)
    assert "sh.helm.release.v1.e.v1" in secrets and not any(".c.v" in s or ".d.v" in s for s in secrets)


def test_removal_runs_in_reverse_order(run_module, namespace, kubectl):
    run_module("helm_releases", stack(namespace, CHAIN))
    args = stack(namespace, CHAIN)
    args["defaults"] = dict(args["defaults"], state="absent")
    removed = run_module("helm_releases", args)
    assert removed["order"] == [[f"{namespace}/c", f"{namespace}/d"], [f"{namespace}/b"], [f"{namespace}/a"]]
    outcome = by_name(removed)
    assert {r["action"] for r in removed["releases"]} == {"uninstall"}
    assert outcome["b"]["started"] >= max(ends(outcome["c"]), ends(outcome["d"]))
    assert outcome["a"]["started"] >= ends(outcome["b"])
    assert helm_secrets(kubectl, namespace) == []


def test_lists_that_cannot_be_ordered_are_refused_before_any_change(run_module, namespace, kubectl):
    for releases, needle in [
        ([release("a", "c"), release("b", "a"), release("c", "b")],
         f"a cycle: {namespace}/a -> {namespace}/c -> {namespace}/b -> {namespace}/a."),
        ([release("a"), release("b", "nope")], f"releases[1] ({namespace}/b) needs {namespace}/nope, which is not in releases."),
        ([release("a"), release("a")], f"releases[1]: {namespace}/a is already releases[0]"),
        ([release("a", "b"), release("b", state="absent")], "is to be present but needs"),
        ([release("a", timeout="soon")], "releases[0].timeout"),
        ([release("a", state="gone")], "releases[0]: value of state must be one of: present, absent"),
    ]:
        result = run_module("helm_releases", stack(namespace, releases), expect_failure=True)
        assert result["error"]["kind"] == "invalid_arguments", result["msg"]
        assert needle in result["msg"], result["msg"]
        assert (result["changed"], result["helm_processes"]) == (False, 0)
    assert helm_secrets(kubectl, namespace) == []
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0
