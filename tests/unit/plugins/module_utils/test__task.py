"""What every module shares: argument-spec failures with a kind, the one try/except, Ansible's
no_log masking narrowed to real secrets, the result builder, and validation before side effects."""

from __future__ import annotations

import json
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

try:
    from ansible.module_utils._internal import _traceback
except ImportError:  # ansible-core < 2.19 always returns ``exception`` when a module passes one
    _traceback = None

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _task
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import argument_spec
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._task import (
    EngineModule,
    Manager,
    TaskContext,
    build_result,
    run_manager,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import EngineError, InputError
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.fake_kube import FakeApi, FakeKube

SECRET = "Common-Unit-Secret-77aa"


SPEC = argument_spec(
    release_values={"type": "dict", "default": {}, "no_log": True},
    timeout={"type": "raw"},
)


def make_module(args: dict[str, t.Any], spec: dict[str, t.Any] | None = None) -> EngineModule:
    with patch_module_args(dict({"_ansible_check_mode": False}, **args)):
        return EngineModule(argument_spec=spec or SPEC, supports_check_mode=True)


def exit_of(capsys, call: t.Callable[[], t.Any]) -> dict[str, t.Any]:
    with pytest.raises(SystemExit):
        call()
    return json.loads(capsys.readouterr().out)


# ---- EngineModule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    ({"namespace": "apps"}, "name"),                                    # a required option is missing
    ({"name": "web", "namespace": "apps", "release_values": "x"}, "release_values"),  # a wrong type
    ({"name": "web", "namespace": "apps", "no_such_option": 1}, "no_such_option"),    # an unknown option
])
def test_argument_spec_failures_carry_invalid_arguments(capsys, args, needle):
    result = exit_of(capsys, lambda: make_module(args))
    assert result["failed"] is True and result["changed"] is False
    assert result["error"]["kind"] == "invalid_arguments"
    assert needle in result["msg"] and result["error"]["message"] == result["msg"]


def test_a_bad_choice_is_invalid_arguments(capsys):
    spec = argument_spec(target={"type": "str", "choices": ["a", "b"]})
    result = exit_of(capsys, lambda: make_module({"name": "web", "namespace": "apps", "target": "c"}, spec))
    assert result["error"]["kind"] == "invalid_arguments" and "target" in result["msg"]


# ---- run_manager ----------------------------------------------------------------------------------

class Boom(Manager):
    def execute(self) -> dict[str, t.Any]:
        raise ValueError(f"first line with {SECRET}\nsecond line\nthird line")


class Refuses(Manager):
    def execute(self) -> dict[str, t.Any]:
        raise InputError("namespace is odd.", option="namespace")


class Quiet(Manager):
    def execute(self) -> dict[str, t.Any]:
        return {"action": "none"}


class Changes(Manager):
    def execute(self) -> dict[str, t.Any]:
        return {"changed": True, "values": self.params["release_values"], "echo": SECRET}


def run_module(capsys, args: dict[str, t.Any], manager: type[Manager], spec: dict[str, t.Any] | None = None,
               **run_args: t.Any) -> dict[str, t.Any]:
    """Builds the module and runs the manager under one patch_module_args: exit_json needs it."""
    with patch_module_args(dict({"_ansible_check_mode": False}, **args)):
        return exit_of(capsys, lambda: run_manager(EngineModule(argument_spec=spec or SPEC, supports_check_mode=True),
                                                   manager, **run_args))


def run_with(capsys, kubeconfig: str, manager: type[Manager], **args: t.Any) -> dict[str, t.Any]:
    return run_module(capsys, dict({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig}, **args), manager,
                      needs_helm=False, values_params=["release_values"])


def test_an_unexpected_exception_is_internal_error_in_one_line(capsys, kubeconfig, monkeypatch):
    # Ansible returns `exception` only when tracebacks are enabled (-vvv sets _ansible_tracebacks_for).
    # Patched at the hook itself: importing the controller's display (callback tests) replaces it.
    if _traceback is not None:
        monkeypatch.setattr(_traceback, "_is_traceback_enabled", lambda event: True)
    result = run_with(capsys, kubeconfig, Boom, release_values={"auth": {"password": SECRET}})
    assert result["failed"] is True and result["changed"] is False
    assert result["error"]["kind"] == "internal_error"
    assert result["msg"].startswith("internal error: ValueError: first line with ")
    assert "\n" not in result["msg"] and "second line" not in result["msg"]
    assert result["error"]["message"] == result["msg"]
    assert "Traceback" in result["exception"] and "second line" in result["exception"]
    assert SECRET not in result["msg"] and SECRET not in result["exception"]


@pytest.mark.skipif(_traceback is None, reason="ansible-core < 2.19 has no traceback switch")
def test_without_tracebacks_enabled_an_internal_error_is_still_one_line(capsys, kubeconfig, monkeypatch):
    monkeypatch.setattr(_traceback, "_is_traceback_enabled", lambda event: False)
    result = run_with(capsys, kubeconfig, Boom)
    assert result["error"]["kind"] == "internal_error" and "\n" not in result["msg"]
    assert "Traceback" not in json.dumps(result)


def test_an_engine_error_keeps_its_kind_and_the_common_fields(capsys, kubeconfig):
    result = run_with(capsys, kubeconfig, Refuses)
    assert result["failed"] is True and result["changed"] is False
    assert (result["error"]["kind"], result["error"]["option"]) == ("invalid_arguments", "namespace")
    assert {"commands", "helm_processes", "kube_requests", "duration", "invocation"} <= set(result)


# A secret the task learns while it runs (a stored release's values, decoded by the release
# store): Ansible's own masking never heard of it, so only the final sweep keeps it out.
STORED_SECRET = "Stored-Release-Secret-3f9c"


class ForgetsToRedact(Manager):
    def execute(self) -> dict[str, t.Any]:
        self.context.redactor.add_values({"auth": {"password": STORED_SECRET}})
        return {"changed": False, "notes": f"connect with {STORED_SECRET}", "nested": [{"value": STORED_SECRET}]}


class FailsWithoutRedacting(Manager):
    def execute(self) -> dict[str, t.Any]:
        self.context.redactor.add_values({"auth": {"password": STORED_SECRET}})
        error = EngineError("helm_failed", f"helm quoted {STORED_SECRET}", stderr=STORED_SECRET)
        error.extra["release"] = {"notes": [STORED_SECRET]}
        raise error


@pytest.mark.parametrize("manager", [ForgetsToRedact, FailsWithoutRedacting])
def test_the_whole_result_is_swept_for_secrets_the_task_learned(capsys, kubeconfig, manager):
    result = run_with(capsys, kubeconfig, manager)
    assert STORED_SECRET not in json.dumps(result)
    shown = result.get("notes") or result["release"]["notes"][0]
    assert "********" in str(shown)


def test_a_bad_timeout_is_refused_before_the_context_exists(capsys, kubeconfig, monkeypatch):
    built = []
    monkeypatch.setattr(_task, "Workspace", lambda *a, **kw: built.append(a) or pytest.fail("workspace created"))
    result = run_with(capsys, kubeconfig, Quiet, timeout="soon")
    assert result["error"]["kind"] == "invalid_arguments" and result["error"]["option"] == "timeout"
    assert built == []


# ---- relax_no_log ---------------------------------------------------------------------------------

def test_relax_no_log_keeps_only_real_secrets_masked(kubeconfig):
    values = {"replicaCount": 3, "image": "nginx", "auth": {"password": SECRET}}
    module = make_module({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig, "release_values": values})
    # Ansible itself masks every leaf of a no_log dict.
    assert {"3", "nginx", SECRET} <= set(module.no_log_values)
    context = TaskContext(module, values_params=["release_values"], needs_helm=False)
    try:
        assert SECRET in module.no_log_values
        assert "3" not in module.no_log_values and "nginx" not in module.no_log_values
    finally:
        context.close()


def test_the_result_shows_plain_values_and_masks_secrets(capsys, kubeconfig):
    values = {"replicaCount": 3, "image": "nginx", "auth": {"password": SECRET}}
    result = run_with(capsys, kubeconfig, Changes, release_values=values)
    assert result["changed"] is True
    assert result["values"]["replicaCount"] == 3 and result["values"]["image"] == "nginx"
    assert SECRET not in json.dumps(result)
    assert result["invocation"]["module_args"]["release_values"] == {"replicaCount": 3, "image": "nginx",
                                                                     "auth": {"password": "<redacted>"}}


def test_a_refusal_message_is_not_masked_letter_by_letter(capsys, tmp_path):
    """A kubeconfig list is refused; its items must not turn the message into asterisks."""
    spec = argument_spec()
    spec["kubeconfig"]["type"] = "raw"
    result = run_module(capsys, {"name": "web", "namespace": "apps", "kubeconfig": ["a", "e"]}, Quiet, spec,
                        needs_helm=False, timeout_option=None)
    assert result["error"]["kind"] == "invalid_arguments"
    assert "kubeconfig must be a path or a dictionary" in result["msg"]


# ---- secrets helm reads from files and unescaped --set values ----------------------------------

CHART_SPEC = argument_spec(
    release_values={"type": "dict", "default": {}, "no_log": True},
    values_files={"type": "list", "elements": "str", "default": []},
    set_values={"type": "list", "elements": "dict", "default": [], "options": {
        "value": {"type": "str", "required": True, "no_log": True},
        "value_type": {"type": "str", "default": "raw", "choices": ["raw", "string", "json", "file", "literal"]}}},
)


def test_secrets_in_values_files_set_files_and_set_values_are_registered_as_helm_reads_them(kubeconfig, tmp_path):
    """A chart or helm's error message quotes what helm read: the files' contents, unescaped values."""
    values_file = tmp_path / "values.yaml"
    values_file.write_text("db:\n  password: from-a-values-file\nreplicaCount: 3\n")
    token_file = tmp_path / "token"
    token_file.write_text("from-a-set-file")
    module = make_module({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig,
                          "values_files": [str(values_file), str(tmp_path / "missing.yaml")],
                          "set_values": [{"value": f"auth.token={token_file}", "value_type": "file"},
                                         {"value": r"auth.password=a\,b\{c", "value_type": "raw"},
                                         {"value": 'creds={"apiKey": "from-json"}', "value_type": "json"},
                                         {"value": "db.password=head,tail-of-it", "value_type": "string"}]},
                         CHART_SPEC)
    context = TaskContext(module, values_params=["release_values"], needs_helm=False)
    try:
        secrets = context.redactor.secrets
        assert {"from-a-values-file", "from-a-set-file", "a,b{c", "from-json", "tail-of-it"} <= secrets
        assert "3" not in secrets
    finally:
        context.close()


# ---- values nested without end: refused before anything walks them ---------------------------------

def _deep(depth: int) -> dict[str, t.Any]:
    tree: t.Any = SECRET
    for _level in range(depth):
        tree = {"password": tree}
    return tree


@pytest.mark.parametrize("option", ["release_values", "values_files"])
def test_deep_values_are_refused_before_secrets_are_registered(capsys, monkeypatch, kubeconfig, tmp_path, option):
    registered = []
    monkeypatch.setattr(_task, "register_secrets", lambda *a, **kw: registered.append(a))
    values_file = tmp_path / "deep.json"
    values_file.write_text(json.dumps(_deep(101)))
    args = {"release_values": _deep(101)} if option == "release_values" else {"values_files": [str(values_file)]}
    module = make_module(dict({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig}, **args), CHART_SPEC)
    with pytest.raises(InputError) as caught:
        TaskContext(module, values_params=["release_values"], needs_helm=False)
    assert (caught.value.kind, caught.value.details) == ("invalid_values", {"option": option})
    assert registered == []


def test_a_refused_deep_values_file_and_release_values_fail_with_a_result(capsys, kubeconfig, tmp_path):
    """The refusal's invocation walks the values again: bounded, and nothing of them leaks."""
    values_file = tmp_path / "deep.yaml"
    values_file.write_text('{"k": ' * 1500 + "1" + "}" * 1500)
    result = run_module(capsys, {"name": "web", "namespace": "apps", "kubeconfig": kubeconfig,
                                 "values_files": [str(values_file)], "release_values": _deep(150)},
                        Quiet, CHART_SPEC, needs_helm=False, values_params=["release_values"])
    assert result["error"]["kind"] == "invalid_values" and "more than 100 levels deep" in result["msg"]
    assert (result["helm_processes"], result["kube_requests"]) == (0, 0)
    shown = result["invocation"]["module_args"]["release_values"]
    for _level in range(100):
        shown = shown["password"]
    assert shown == "<not shown: nested more than 100 levels deep>"
    assert SECRET not in json.dumps(result)


# ---- build_result ---------------------------------------------------------------------------------

def test_build_result_is_unchanged_by_default(capsys, kubeconfig):
    result = run_with(capsys, kubeconfig, Quiet)
    assert result["changed"] is False and result["action"] == "none"
    assert (result["helm_processes"], result["commands"], result["kube_requests"]) == (0, [], 0)
    assert isinstance(result["duration"], float)


def test_build_result_keeps_an_explicit_changed(kubeconfig):
    module = make_module({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig})
    context = TaskContext(module, needs_helm=False)
    try:
        assert build_result(context, {})["changed"] is False
        assert build_result(context, {"changed": True})["changed"] is True
        assert set(build_result(context, {})) >= {"changed", "commands", "helm_processes", "kube_requests", "duration", "invocation"}
    finally:
        context.close()


# ---- TaskContext validates before any side effect -----------------------------------------------

@pytest.fixture
def created_workspaces(monkeypatch) -> list[tuple[t.Any, ...]]:
    """The arguments of every Workspace a TaskContext creates (a real one each time)."""
    created: list[tuple[t.Any, ...]] = []

    class RecordingWorkspace(_task.Workspace):
        def __init__(self, *a: t.Any, **kw: t.Any) -> None:
            created.append(a)
            super().__init__(*a, **kw)

    monkeypatch.setattr(_task, "Workspace", RecordingWorkspace)
    return created


@pytest.mark.parametrize("args, option", [
    ({"name": "Bad_Name"}, "name"),
    ({"name": "-x"}, "name"),
    ({"name": "a" * 54}, "name"),
    ({"namespace": "ns/../other"}, "namespace"),
    ({"namespace": "UPPER"}, "namespace"),
    ({"namespace": "ns\n"}, "namespace"),
    ({"host": "not a url"}, "host"),
    ({"context": "-nope"}, "context"),
    ({"binary_path": "-helm"}, "binary_path"),
    ({"api_key": "tok\u00e9n-\U0001f511"}, "api_key"),  # not sendable in an HTTP header
    ({"api_key": "two words"}, "api_key"),
])
def test_task_context_refuses_before_creating_a_workspace(kubeconfig, created_workspaces, args, option):
    module = make_module(dict({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig}, **args))
    with pytest.raises(EngineError) as caught:
        TaskContext(module, needs_helm=True)
    assert caught.value.kind == "invalid_arguments" and caught.value.details.get("option") == option
    assert created_workspaces == []


def test_task_context_with_good_inputs_creates_one_private_workspace(kubeconfig, created_workspaces):
    module = make_module({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig, "binary_path": "/bin/sh"})
    context = TaskContext(module)
    try:
        assert len(created_workspaces) == 1 and context.kubeconfig == kubeconfig
        assert (context.name, context.namespace, context.binary) == ("web", "apps", "/bin/sh")
    finally:
        context.close()


@pytest.mark.parametrize("binary", ["/etc/passwd", "/etc", "/no/such/helm"])
def test_an_unusable_helm_is_helm_missing_before_a_workspace(monkeypatch, kubeconfig, binary):
    monkeypatch.setattr(_task, "Workspace", lambda *a, **kw: pytest.fail("workspace created"))
    module = make_module({"name": "web", "namespace": "apps", "kubeconfig": kubeconfig, "binary_path": binary})
    with pytest.raises(EngineError) as caught:
        TaskContext(module)
    assert caught.value.kind == "helm_missing"


def test_a_task_refused_while_its_context_is_built_shows_no_inline_kubeconfig(capsys):
    """Ansible's own invocation would show every parameter with only our registered secrets
    masked (relax_no_log ran), so any credential we do not recognise came back in full."""
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "unit",
        "clusters": [{"name": "unit", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "unit", "user": {"token": "unit-token"}},
                  {"name": "exec", "user": {"exec": {"command": "x", "env": [{"name": "PLAIN", "value": SECRET}]}}}],
        "contexts": [{"name": "unit", "context": {"cluster": "unit", "user": "unit"}}],
    }
    result = run_module(capsys, {"name": "web", "namespace": "apps", "kubeconfig": kubeconfig, "context": "-typo"},
                        Quiet, SPEC, needs_helm=False, timeout_option=None)
    assert result["error"]["kind"] == "invalid_arguments" and result["error"]["option"] == "context"
    assert result["invocation"]["module_args"]["kubeconfig"] == "<redacted: inline kubeconfig>"
    assert SECRET not in json.dumps(result)


# ---- the release lock around execute ------------------------------------------------------------


LEASES = "/apis/coordination.k8s.io/v1/namespaces/apps/leases"


class Locking(Manager):
    lock_operation = "helm_deploy"
    seen: list[bool] = []
    api = FakeApi()  # the cluster of the running test

    def execute(self) -> dict[str, t.Any]:
        Locking.seen.append(f"{LEASES}/helm-engine.web" in Locking.api.objects)
        return {"action": "none"}


class LockingLoser(Locking):
    def execute(self) -> dict[str, t.Any]:
        raise EngineError("release_locked", "release: already exists")


@pytest.fixture
def lease_api(monkeypatch) -> FakeApi:
    """The fake cluster the task's KubeClient talks to: the lock's requests land there."""
    api = FakeApi()
    monkeypatch.setattr(_task, "KubeClient", FakeKube.bind(api))
    monkeypatch.setattr(Locking, "api", api)
    monkeypatch.setattr(Locking, "seen", [])
    return api


def test_a_locking_manager_holds_the_lease_while_it_executes(capsys, kubeconfig, lease_api):
    result = run_with(capsys, kubeconfig, Locking, timeout="10s")
    assert result["action"] == "none" and Locking.seen == [True]
    assert lease_api.requests == [("POST", LEASES), ("DELETE", f"{LEASES}/helm-engine.web")]
    assert lease_api.objects == {}


def test_a_locking_manager_in_check_mode_only_reads_the_lease(capsys, kubeconfig, lease_api):
    run_with(capsys, kubeconfig, Locking, _ansible_check_mode=True)
    assert [method for method, _ in lease_api.requests] == ["GET"]


def test_helm_refusing_a_run_that_held_no_lease_says_why(capsys, kubeconfig, lease_api):
    lease_api.fail("POST", LEASES, 404, 'namespaces "apps" not found')
    result = run_with(capsys, kubeconfig, LockingLoser)
    assert result["error"]["kind"] == "release_locked"
    assert result["msg"] == ("Another run changed release apps/web at the same time (helm: release: already exists); "
                             "it ran without the release's lock: namespace 'apps' did not exist yet (no lease to hold).")


def test_a_manager_that_changes_nothing_takes_no_lock(capsys, kubeconfig, lease_api):
    run_with(capsys, kubeconfig, Quiet)
    assert lease_api.requests == []
