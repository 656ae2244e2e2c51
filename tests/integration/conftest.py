"""Integration fixtures: the local cluster, both helm majors, and ways to run the modules.

Modules run two ways. ``run_module`` executes the module file itself with its arguments as
JSON (what AnsiballZ does, minus the packaging), which is fast enough to run every case four
ways on both helm majors. ``run_playbook`` goes through ansible-playbook, for what only the
controller does (display at -vvv, diff output, module_defaults groups).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

import pytest

# The reliability log's fixture and hooks (a conftest below the rootdir cannot use pytest_plugins).
from reliability_log import (  # noqa: F401
    pytest_configure, pytest_runtest_makereport, pytest_runtest_teardown, reliability,
)

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
CHARTS = REPO / "tests" / "charts"
COLLECTIONS = REPO / "build" / "collections"


# Ports tools/cluster.sh uses above its port base (apiserver, kwok, controllers, etcd, registry).
CLUSTER_PORT_OFFSETS = (43, 47, 57, 59, 79, 80, 81)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base() -> int:
    """A port base whose cluster ports are all free now, for a private cluster: a fixed one
    could belong to other work on the same machine."""
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20000, 60000, 100)
        if all(port_is_free(base + offset) for offset in CLUSTER_PORT_OFFSETS):
            return base
    raise RuntimeError("no free port base for a private cluster between 20000 and 60000")


class PrivateCluster:
    """A cluster of tools/cluster.sh in its own directory on its own port base, for a test file
    that breaks it or needs more than one: the shared cluster is never touched."""

    def __init__(self, directory: Path, port_base: int) -> None:
        self.env = dict(os.environ, HELM_ENGINE_CLUSTER_DIR=str(directory), HELM_ENGINE_PORT_BASE=str(port_base))
        self.start_seconds = 0.0

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(TOOLS / "cluster.sh"), *args], env=self.env, check=check, capture_output=True, text=True)

    def up(self) -> None:
        began = time.monotonic()
        up = self.script("up", check=False)
        self.start_seconds = round(time.monotonic() - began, 2)
        assert up.returncode == 0, f"the private cluster did not start:\n{up.stdout}\n{up.stderr}"

    def down(self) -> None:
        self.script("down", check=False)

    def exports(self) -> dict[str, str]:
        out = self.script("env").stdout
        return dict(line.removeprefix("export ").partition("=")[::2] for line in out.splitlines())

    def kill(self, component: str) -> None:
        self.script("kill", component)

    def start(self, component: str) -> float:
        began = time.monotonic()
        self.script("start", component)
        return round(time.monotonic() - began, 2)


@contextlib.contextmanager
def closed_port() -> t.Iterator[int]:
    """A loopback port that refuses connections while the block runs: bound and never listened
    on, so no other process (another test's proxy, a private cluster) can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _cluster_env() -> dict[str, str]:
    out = subprocess.run([str(TOOLS / "cluster.sh"), "env"], check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


@pytest.fixture(scope="session")
def cluster() -> dict[str, str]:
    """The running local cluster (make test starts it). Starts it when it is not up."""
    status = subprocess.run([str(TOOLS / "cluster.sh"), "status"], capture_output=True, text=True)
    if status.returncode != 0:
        subprocess.run([str(TOOLS / "cluster.sh"), "up"], check=True)
    return _cluster_env()


@pytest.fixture(scope="session")
def kubeconfig(cluster: dict[str, str]) -> str:
    return cluster["KUBECONFIG"]


@pytest.fixture(params=["helm3", "helm4"])
def helm(request: pytest.FixtureRequest, cluster: dict[str, str]) -> str:
    """Each test that takes this runs once with helm 3 and once with helm 4."""
    return cluster["HELM_ENGINE_HELM3" if request.param == "helm3" else "HELM_ENGINE_HELM4"]


@pytest.fixture
def kubectl(cluster: dict[str, str]) -> t.Callable[..., subprocess.CompletedProcess]:
    def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [cluster["HELM_ENGINE_KUBECTL"], "--kubeconfig", cluster["KUBECONFIG"], *args],
            check=check, capture_output=True, text=True, input=input,
        )
    return run


@pytest.fixture
def namespace(kubectl: t.Callable[..., subprocess.CompletedProcess]) -> t.Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"it-{uuid.uuid4().hex[:8]}"
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def module_path(name: str) -> Path:
    return REPO / "plugins" / "modules" / f"{name}.py"


def _module_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(COLLECTIONS) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class ModuleRunner:
    def __init__(self, tmp_path: Path, kubeconfig: str, helm: str | None) -> None:
        self.tmp_path = tmp_path
        self.defaults = {"kubeconfig": kubeconfig}
        if helm:
            self.defaults["binary_path"] = helm
        self.calls = 0

    def __call__(self, module: str, args: dict[str, t.Any], *, check: bool = False, diff: bool = True,
                 expect_failure: bool = False) -> dict[str, t.Any]:
        self.calls += 1
        payload = {
            "ANSIBLE_MODULE_ARGS": dict(
                self.defaults, **args, _ansible_check_mode=check, _ansible_diff=diff,
                _ansible_tmpdir=str(self.tmp_path), _ansible_remote_tmp=str(self.tmp_path),
            )
        }
        args_file = self.tmp_path / f"args-{self.calls}.json"
        args_file.write_text(json.dumps(payload))
        proc = subprocess.run(
            [sys.executable, str(module_path(module)), str(args_file)],
            capture_output=True, text=True, env=_module_env(), cwd=self.tmp_path,
        )
        args_file.unlink()
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"{module} printed no JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        result["_stdout"] = proc.stdout
        result["_stderr"] = proc.stderr
        if expect_failure:
            assert result.get("failed"), f"{module} was expected to fail: {json.dumps(result, indent=1)[:3000]}"
            assert "Traceback" not in proc.stderr + proc.stdout
        else:
            assert not result.get("failed"), f"{module} failed: {json.dumps(result, indent=1)[:4000]}"
        return result


@pytest.fixture
def run_module(tmp_path: Path, kubeconfig: str, helm: str) -> ModuleRunner:
    return ModuleRunner(tmp_path, kubeconfig, helm)


def converge(run: ModuleRunner, module: str, args: dict[str, t.Any], expect_action: str) -> dict[str, dict[str, t.Any]]:
    """Runs a change four ways: check, real, idempotent check, idempotent real.

    Asserts the check run predicted the real run exactly (changed, action, changes, diff) and
    that a repeat changes nothing and shows an empty diff. Returns the four results."""
    check = run(module, args, check=True)
    real = run(module, args)
    assert check["changed"] is True, check
    assert real["changed"] is True, real
    assert check["action"] == real["action"] == expect_action
    assert check["changes"] == real["changes"]
    assert check["diff"] == real["diff"]
    again_check = run(module, args, check=True)
    again = run(module, args)
    for repeat in (again_check, again):
        assert repeat["changed"] is False, repeat.get("reasons")
        assert repeat["action"] == "none"
        assert repeat["changes"] == []
        assert all(d["before"] == d["after"] for d in repeat["diff"])
        if "release" in real:
            assert repeat["release"]["revision"] == real["release"]["revision"]
        else:
            assert "release" not in repeat
    return {"check": check, "real": real, "again_check": again_check, "again": again}


def helm_work(result: dict[str, t.Any]) -> list[str]:
    """The helm subcommands a task ran, without ``helm version``: its answer is cached per
    binary, so whether a task asks depends on the tasks before it."""
    return [c.split()[1] for c in result["commands"] if c.split()[1] != "version"]


@pytest.fixture
def chart_copy(tmp_path: Path) -> t.Callable[[str], Path]:
    """A private copy of a test chart, for tests that edit it."""
    def copy(name: str = "sample") -> Path:
        dest = tmp_path / "charts" / name
        shutil.copytree(CHARTS / name, dest)
        return dest
    return copy


def run_playbook(playbook: str, *, tmp_path: Path, extra_args: t.Sequence[str] = (), env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "playbook.yml"
    path.write_text(playbook)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    full_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
                    ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_RETRY_FILES_ENABLED="0", **(env or {}))
    bindir = str(Path(sys.executable).parent)
    full_env["PATH"] = bindir + os.pathsep + full_env.get("PATH", "")
    return subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), "-i", str(inventory), str(path), *extra_args],
        capture_output=True, text=True, env=full_env, cwd=tmp_path,
    )
