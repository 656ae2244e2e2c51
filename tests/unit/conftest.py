# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared fakes for the unit tests: a recording helm runner, a workspace, a helm client, and a
test environment without the machine's Kubernetes auth settings."""

from __future__ import annotations

import contextlib
import json
import sys
import types
import typing as t

import pytest

try:
    from ansible.module_utils.testing import patch_module_args  # noqa: F401 - ansible-core >= 2.19
except ImportError:  # ansible-core 2.17/2.18, the oldest requires_ansible: the same helper, older internals
    from unittest import mock

    from ansible.module_utils import basic

    @contextlib.contextmanager
    def _patch_module_args(args: dict[str, t.Any] | None = None) -> t.Iterator[None]:
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode("utf-8")
        with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
            yield

    sys.modules["ansible.module_utils.testing"] = types.SimpleNamespace(patch_module_args=_patch_module_args)

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import HelmClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import Workspace
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor
from ansible_collections.ai_mesh.helm_engine.tests.unit.plugins.test_support.env import clear_auth_env, write_kubeconfig

HELM3 = "v3.22.0"
HELM4 = "v4.3.1"

Answer = t.Union[t.Tuple[int, str, str], BaseException]


class FakeRunner:
    """Stands in for ``_helm.run_process``, the runner HelmClient starts helm with.

    Records every argv (and the keyword arguments: the ``deadline`` each process gets) and
    answers by helm subcommand (``argv[1]``: flags and positionals follow it) with a canned
    ``(rc, stdout, stderr)``; an exception instance as the answer is raised instead, like a
    binary that vanished or a process stopped at its deadline.
    """

    def __init__(self, version: str = HELM3, answers: dict[str, Answer] | None = None) -> None:
        self.answers: dict[str, Answer] = {"version": (0, version, "")}
        self.answers.update(answers or {})
        self.calls: list[list[str]] = []
        self.kwargs: list[dict[str, t.Any]] = []

    def __call__(self, argv: list[str], *, deadline: float) -> tuple[int, str, str]:
        # Keyword-only and required, like run_process: a client that forgot the deadline fails here.
        self.calls.append(list(argv))
        self.kwargs.append({"deadline": deadline})
        answer = self.answers.get(argv[1], (0, "", ""))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def calls_of(self, subcommand: str) -> list[list[str]]:
        return [argv for argv in self.calls if argv[1] == subcommand]


@pytest.fixture
def workspace() -> t.Iterator[Workspace]:
    with Workspace() as ws:
        yield ws


@pytest.fixture
def make_client(workspace: Workspace) -> t.Callable[..., tuple[HelmClient, FakeRunner]]:
    """``make_client(version="v4.3.1", answers={...}, redactor=..., kubeconfig=...)`` -> (client, fake)."""

    def factory(
        version: str = HELM3,
        answers: dict[str, Answer] | None = None,
        *,
        redactor: Redactor | None = None,
        with_workspace: bool = True,
        **client_args: t.Any,
    ) -> tuple[HelmClient, FakeRunner]:
        fake = FakeRunner(version, answers)
        client = HelmClient(
            fake,
            "helm",
            redactor=redactor,
            workspace=workspace if with_workspace else None,
            **client_args,
        )
        return client, fake

    return factory


@pytest.fixture(autouse=True)
def module_side_of_ansible(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing controller code (the callback tests do) flips ansible-core's process-wide
    ``is_controller`` flag, after which module warnings and ``exception`` go to the display
    instead of the result. Module code runs on the target side: keep the flag off there."""
    if "callback" in request.node.path.parts:
        return
    try:
        from ansible.module_utils import _internal
    except ImportError:  # ansible-core < 2.19 has no such flag
        return

    monkeypatch.setattr(_internal, "is_controller", False)


@pytest.fixture(autouse=True)
def no_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the Kubernetes auth settings of the machine that runs it (KUBECONFIG,
    K8S_AUTH_*, an in-cluster service host): only what the test passes or sets itself."""
    clear_auth_env(monkeypatch)


@pytest.fixture
def kubeconfig(tmp_path) -> str:
    """A kubeconfig file of the test's own (a token user on https://127.0.0.1:6443)."""
    return write_kubeconfig(tmp_path)


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path_factory) -> str:
    """The helm version cache lives under XDG_CACHE_HOME: each test gets its own, so a fake
    helm's version never reaches the user's cache or another test."""
    path = str(tmp_path_factory.mktemp("xdg-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", path)
    return path


def make_chart(root: t.Any, name: str = "sample", template: str = "kind: ConfigMap\n") -> str:
    """A minimal local chart directory; returns its path."""
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(template)
    return str(chart)


@pytest.fixture
def chart_maker() -> t.Callable[..., str]:
    """``make_chart`` for test modules (they cannot import conftest under ansible-test)."""
    return make_chart


@pytest.fixture
def runner_class() -> type[FakeRunner]:
    return FakeRunner
