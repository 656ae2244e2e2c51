"""oci:// charts from the local cluster's registry (distribution, TLS from the cluster's CA,
htpasswd auth), on helm 3 and helm 4.

The session pushes the sample chart as two tags (0.1.0, 0.2.0) under a repository of its own.
The cases install and upgrade from it, resolve a version constraint against its tags, and check
how a missing tag, a wrong password, an untrusted certificate and a registry that is not there
fail: each with its error kind, quickly, changing nothing, and without the password anywhere in
what the modules return or in the argv they ran.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time
import typing as t
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import CHARTS, converge
from reliability_log import history_snapshot

CATEGORY = "oci registry"
# helm fails at once on a refused connection (0.1 s from the command line). The bound is on the
# module's own duration (two helm processes), loose enough for a 2-core machine under a full
# suite; a helm that retried with backoff or hung (until its deadline, 15 minutes) runs past it.
UNREACHABLE_BOUND_SECONDS = 60.0


@dataclass(frozen=True)
class Registry:
    host: str
    repository: str  # oci://host/it-xxxx, where this session's tags are
    username: str
    password: str
    ca: str

    @property
    def chart(self) -> str:
        return f"{self.repository}/sample"

    def credentials(self, password: str | None = None) -> dict[str, str]:
        return {"chart_repo_username": self.username, "chart_repo_password": password or self.password,
                "chart_ca_cert": self.ca}


def _push_config(path: Path, registry: str, username: str, password: str) -> Path:
    """A private registry config for the pushes, so helm's own logins are neither used nor changed."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"auths": {registry: {"auth": token}}}, handle)
    return path


@pytest.fixture(scope="session")
def oci(cluster: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The registry, with the sample chart pushed as 0.1.0 and 0.2.0 (by helm 4's ``helm push``)."""
    needed = ("HELM_ENGINE_REGISTRY", "HELM_ENGINE_REGISTRY_USERNAME", "HELM_ENGINE_REGISTRY_PASSWORD_FILE",
              "HELM_ENGINE_REGISTRY_CA")
    missing = [name for name in needed if not cluster.get(name)]
    if missing:
        pytest.fail(f"tools/cluster.sh env does not export {missing}: restart the cluster with this checkout's tools/cluster.sh")
    host = cluster["HELM_ENGINE_REGISTRY"]
    password = Path(cluster["HELM_ENGINE_REGISTRY_PASSWORD_FILE"]).read_text()
    registry = Registry(host, f"oci://{host}/it-{uuid.uuid4().hex[:8]}", cluster["HELM_ENGINE_REGISTRY_USERNAME"],
                        password, cluster["HELM_ENGINE_REGISTRY_CA"])
    work = tmp_path_factory.mktemp("oci-push")
    config = _push_config(work / "registry-config.json", host, registry.username, password)
    helm = cluster["HELM_ENGINE_HELM4"]
    for version in ("0.1.0", "0.2.0"):
        chart = work / version / "sample"
        shutil.copytree(CHARTS / "sample", chart)
        chart_yaml = chart / "Chart.yaml"
        chart_yaml.write_text(re.sub(r"(?m)^version: .*$", f"version: {version}", chart_yaml.read_text()))
        subprocess.run([helm, "package", str(chart), "--destination", str(work)], check=True, capture_output=True)
        pushed = subprocess.run(
            [helm, "push", str(work / f"sample-{version}.tgz"), registry.repository,
             f"--registry-config={config}", f"--ca-file={registry.ca}"],
            capture_output=True, text=True,
        )
        assert pushed.returncode == 0, f"helm push of sample {version} failed: {pushed.stderr}"
    return registry


def deploy_args(namespace: str, registry: Registry, version: str, **extra: t.Any) -> dict[str, t.Any]:
    args = {"name": "web", "namespace": namespace, "create_namespace": True, "chart_ref": registry.chart,
            "chart_version": version, **registry.credentials()}
    args.update(extra)
    return args


def assert_no_secret(results: t.Iterable[dict[str, t.Any]], *secrets: str) -> None:
    """Nowhere in a result (commands, invocation, error, diff, the module's stdout and stderr)."""
    for result in results:
        dumped = json.dumps(result)
        for secret in secrets:
            assert secret not in dumped, f"a secret reached the result: {dumped[:2000]}"


def assert_argv_safe(results: t.Iterable[dict[str, t.Any]], registry: Registry) -> None:
    """Every helm that fetched the chart read the credentials from a file, never from argv."""
    for result in results:
        fetching = [c for c in result["commands"] if " upgrade " in c or " template " in c]
        assert fetching, result["commands"]
        for command in fetching:
            assert "--registry-config=" in command and f"--ca-file={registry.ca}" in command, command
            assert "--password" not in command and "--username" not in command, command


def no_workspace_left(tmp_path: Path) -> bool:
    """Each task's workspace (values file, registry config) is removed when the task ends."""
    return not list(tmp_path.glob("helm-engine-*"))


@pytest.mark.reliability(CATEGORY, "none: install, then upgrade to a newer tag, from a registry with TLS and basic auth")
def test_install_then_upgrade_from_oci(run_module, oci, namespace, kubectl, reliability, tmp_path):
    install = converge(run_module, "helm_deploy", deploy_args(namespace, oci, "0.1.0"), "install")
    assert install["real"]["release"]["chart_version"] == "0.1.0"
    before = history_snapshot(kubectl, namespace, "web")

    # The upgrade: check mode predicts it exactly (install's converge already proved a repeat is a no-op).
    args = deploy_args(namespace, oci, "0.2.0")
    upgrade = {"check": run_module("helm_deploy", args, check=True), "real": run_module("helm_deploy", args)}
    check, real = upgrade["check"], upgrade["real"]
    assert check["changed"] and real["changed"] and check["action"] == real["action"] == "upgrade"
    assert check["changes"] == real["changes"] and check["diff"] == real["diff"] and check["reasons"] == real["reasons"]
    assert real["release"]["chart_version"] == "0.2.0" and real["release"]["revision"] == 2
    assert "chart sample-0.1.0 -> sample-0.2.0" in real["reasons"], real["reasons"]
    # The real run fetched with the very argv of its dry run, less --dry-run (and without
    # validating again what the dry run validated).
    dry_argv, real_argv = real["commands"][-2:]
    assert dry_argv.replace(" --dry-run=server", "") == real_argv.replace(" --disable-openapi-validation", "")
    reliability.check_nothing_lost(kubectl, namespace, "web", before)

    results = [*install.values(), *upgrade.values()]
    assert_no_secret(results, oci.password)
    assert_argv_safe(results, oci)
    assert all(r["invocation"]["module_args"]["chart_repo_password"] == "<redacted>" for r in results)
    assert no_workspace_left(tmp_path)


@pytest.mark.reliability(CATEGORY, "none: chart_version constraints resolved against the registry's tags")
def test_version_constraint_resolves_against_tags(run_module, oci, namespace, kubectl, reliability):
    preflight = run_module("helm_preflight", deploy_args(namespace, oci, "^0.1.0"))
    assert preflight["passed"] is True, preflight.get("problems")
    first = run_module("helm_deploy", deploy_args(namespace, oci, "^0.1.0"))  # 0.1.x only
    assert first["action"] == "install" and first["release"]["chart_version"] == "0.1.0"
    before = history_snapshot(kubectl, namespace, "web")
    newest = run_module("helm_deploy", deploy_args(namespace, oci, ">=0.1.0 <1.0.0"))
    assert newest["action"] == "upgrade" and newest["release"]["chart_version"] == "0.2.0"
    reliability.check_nothing_lost(kubectl, namespace, "web", before)
    assert_no_secret([preflight, first, newest], oci.password)
    assert_argv_safe([preflight, first, newest], oci)


@pytest.mark.reliability(CATEGORY, "a tag, a constraint and a repository the registry does not have")
def test_missing_tag_is_chart_not_found(run_module, oci, namespace, kubectl, reliability):
    results = [
        run_module("helm_deploy", deploy_args(namespace, oci, "9.9.9"), expect_failure=True),
        run_module("helm_deploy", deploy_args(namespace, oci, "^9.0.0"), expect_failure=True),
        run_module("helm_deploy", deploy_args(namespace, oci, "0.1.0", chart_ref=f"{oci.repository}/nothing"),
                   expect_failure=True),
    ]
    for result in results:
        assert result["error"]["kind"] == "chart_not_found", result["error"]
        assert result["changed"] is False
    assert "9.9.9" in results[0]["msg"] and "^9.0.0" in results[1]["msg"]
    assert history_snapshot(kubectl, namespace, "web") == {}, "a failed fetch must install nothing"
    reliability.note(cases=len(results))
    assert_no_secret(results, oci.password)


@pytest.mark.reliability(CATEGORY, "wrong registry password, and no credentials, on the upgrade of a deployed release")
def test_wrong_password_is_unauthorized(run_module, oci, namespace, kubectl, reliability):
    run_module("helm_deploy", deploy_args(namespace, oci, "0.1.0"))
    before = history_snapshot(kubectl, namespace, "web")
    wrong = f"wrong-{uuid.uuid4().hex}"
    started = time.monotonic()
    refused = run_module("helm_deploy", deploy_args(namespace, oci, "0.2.0", chart_repo_password=wrong), expect_failure=True)
    reliability.note(seconds_until_error=round(time.monotonic() - started, 2))
    assert refused["error"]["kind"] == "unauthorized", refused["error"]
    assert refused["changed"] is False
    assert_no_secret([refused], wrong, oci.password)
    # No credentials at all: helm's own registry config holds none for this registry.
    anonymous = deploy_args(namespace, oci, "0.2.0")
    del anonymous["chart_repo_username"], anonymous["chart_repo_password"]
    nobody = run_module("helm_deploy", anonymous, expect_failure=True)
    assert nobody["error"]["kind"] == "unauthorized", nobody["error"]
    reliability.check_nothing_lost(kubectl, namespace, "web", before)
    assert history_snapshot(kubectl, namespace, "web").keys() == before.keys()


def free_local_port() -> int:
    """A port on 127.0.0.1 that nobody listens on: bound by the kernel's choice, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.reliability(CATEGORY, "registry not listening, and a registry certificate no CA given verifies")
def test_unreachable_registry_fails_fast(run_module, oci, namespace, kubectl, reliability):
    run_module("helm_deploy", deploy_args(namespace, oci, "0.1.0"))
    before = history_snapshot(kubectl, namespace, "web")
    port = free_local_port()
    started = time.monotonic()
    gone = run_module("helm_deploy", deploy_args(namespace, oci, "0.2.0", chart_ref=f"oci://127.0.0.1:{port}/charts/sample"),
                      expect_failure=True)
    reliability.note(seconds_until_error=round(time.monotonic() - started, 2), module_seconds=gone["duration"])
    assert gone["error"]["kind"] == "registry_unreachable", gone["error"]
    assert gone["duration"] < UNREACHABLE_BOUND_SECONDS, f"the module took {gone['duration']:.1f}s"
    assert gone["changed"] is False
    # TLS that the system's CAs cannot verify is not reachable either; the message says why.
    untrusted = deploy_args(namespace, oci, "0.2.0")
    del untrusted["chart_ca_cert"]
    unverified = run_module("helm_deploy", untrusted, expect_failure=True)
    assert unverified["error"]["kind"] == "registry_unreachable", unverified["error"]
    assert "certificate" in unverified["msg"]
    reliability.check_nothing_lost(kubectl, namespace, "web", before)
    assert_no_secret([gone, unverified], oci.password)
