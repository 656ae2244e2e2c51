"""helm_rollback against the local cluster, on helm 3 and helm 4."""

from __future__ import annotations

import json

from conftest import converge
from test_helm_deploy import configmap, deploy_args

SECRET = "Rollback-Secret-41d7"


def install_revisions(run_module, namespace: str, *messages: str) -> None:
    for message in messages:
        run_module("helm_deploy", deploy_args(namespace, release_values={"message": message, "auth": {"password": SECRET}}))


def rollback_args(namespace: str, **extra) -> dict:
    args = {"name": "web", "namespace": namespace, "wait": True, "timeout": "60s"}
    args.update(extra)
    return args


def test_rollback_to_a_given_revision(run_module, namespace, kubectl):
    install_revisions(run_module, namespace, "one", "two", "three")
    result = converge(run_module, "helm_rollback", rollback_args(namespace, revision=1), "rollback")
    real = result["real"]
    assert (real["from_revision"], real["to_revision"], real["revision"]) == (3, 1, 4)
    assert real["release"]["status"] == "deployed"
    assert configmap(kubectl, namespace)["MESSAGE"] == "one"
    assert result["again"]["revision"] == 4


def test_rollback_to_previous(run_module, namespace, kubectl):
    install_revisions(run_module, namespace, "one", "two")
    args = rollback_args(namespace, target="previous")
    check = run_module("helm_rollback", args, check=True)
    real = run_module("helm_rollback", args)
    assert check["changed"] and real["changed"]
    assert (check["to_revision"], check["changes"], check["diff"]) == (real["to_revision"], real["changes"], real["diff"])
    assert real["to_revision"] == 1 and real["revision"] == 3
    assert configmap(kubectl, namespace)["MESSAGE"] == "one"
    # "previous" is relative: the state it reached is held by naming the revision.
    again = run_module("helm_rollback", rollback_args(namespace, revision=1))
    assert again["changed"] is False and again["revision"] == 3


def test_rollback_to_last_good_after_a_failed_upgrade(run_module, namespace, kubectl):
    install_revisions(run_module, namespace, "good")
    failed = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "bad", "notReady": True,
                                                                               "auth": {"password": SECRET}},
                                                  timeout="6s"), expect_failure=True)
    assert failed["release"]["status"] == "failed"
    result = converge(run_module, "helm_rollback", rollback_args(namespace), "rollback")
    real = result["real"]
    assert real["to_revision"] == 1 and real["from_revision"] == 2
    assert real["reasons"][0] == "release status is failed"
    assert configmap(kubectl, namespace)["MESSAGE"] == "good"
    # The state of the revision that was left is kept, with the secret redacted.
    left = real["left"]
    assert left["revision"] == 2 and left["status"] == "failed"
    assert left["user_values"]["message"] == "bad" and left["user_values"]["notReady"] is True
    assert left["user_values"]["auth"]["password"] == "<redacted>"
    assert left["values_digest"].startswith("sha256:") and left["manifest_digest"].startswith("sha256:")
    for run in result.values():
        assert SECRET not in json.dumps(run)


def test_rollback_errors(run_module, namespace):
    missing = run_module("helm_rollback", rollback_args(namespace), expect_failure=True)
    assert missing["error"]["kind"] == "release_not_found"
    install_revisions(run_module, namespace, "one")
    absent = run_module("helm_rollback", rollback_args(namespace, revision=99), expect_failure=True)
    assert absent["error"]["kind"] == "revision_not_found"


def test_rollback_never_targets_a_failed_revision_unless_asked(run_module, namespace):
    install_revisions(run_module, namespace, "good")
    run_module("helm_deploy", deploy_args(namespace, release_values={"notReady": True}, timeout="5s"), expect_failure=True)
    install_revisions(run_module, namespace, "good again")
    refused = run_module("helm_rollback", rollback_args(namespace, revision=2), expect_failure=True)
    assert refused["error"]["kind"] == "invalid_arguments" and "allow_failed" in refused["msg"]
    allowed = run_module("helm_rollback", rollback_args(namespace, revision=2, allow_failed=True, wait=False), check=True)
    assert allowed["changed"] and allowed["to_revision"] == 2


def test_rollback_warns_when_history_max_prunes_the_target(run_module, namespace):
    install_revisions(run_module, namespace, "one", "two", "three")
    result = run_module("helm_rollback", rollback_args(namespace, revision=1, history_max=2))
    # ansible-core 2.19 returns warnings as structured events when a module runs by itself.
    assert "revision 1 will be pruned" in json.dumps(result.get("warnings")), result.get("warnings")
    assert result["changed"] and result["to_revision"] == 1
