"""The local cluster itself: kwok Stages, helm 3 and helm 4 against it, and start/stop hygiene."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import typing as t
from pathlib import Path

import pytest

from conftest import CHARTS, TOOLS, free_port_base

WORKLOADS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: three}
spec:
  replicas: 3
  selector: {matchLabels: {app: three}}
  template:
    metadata: {labels: {app: three}}
    spec: {containers: [{name: c, image: registry.local/app:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: never-ready, labels: {helm-engine.test/ready: "false"}}
spec: {containers: [{name: c, image: registry.local/app:1}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: completes}
spec:
  backoffLimit: 0
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: registry.local/job:1}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: fails}
spec:
  backoffLimit: 0
  template:
    metadata: {labels: {helm-engine.test/job-fail: "true"}}
    spec: {restartPolicy: Never, containers: [{name: c, image: registry.local/job:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: test-passes}
spec: {restartPolicy: Never, containers: [{name: c, image: registry.local/test:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: test-fails, labels: {helm-engine.test/test-fail: "true"}}
spec: {restartPolicy: Never, containers: [{name: c, image: registry.local/test:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: keeps-running, labels: {helm-engine.test/test-fail: "true"}}
spec: {containers: [{name: c, image: registry.local/app:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: crash-loops, labels: {helm-engine.test/crash: "true"}}
spec: {containers: [{name: c, image: registry.local/app:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cannot-pull, labels: {helm-engine.test/image: unpullable}}
spec: {containers: [{name: c, image: registry.local/missing:1}]}
"""


def wait_until(predicate: t.Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return predicate()


def get_json(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_kwok_stages_drive_readiness_and_jobs(kubectl, namespace):
    kubectl("create", "namespace", namespace)
    kubectl("apply", "-n", namespace, "-f", "-", input=WORKLOADS)

    def deployment_ready() -> bool:
        status = get_json(kubectl, "-n", namespace, "deployment", "three").get("status", {})
        return status.get("readyReplicas") == 3

    def job_condition(name: str, kind: str) -> bool:
        conditions = get_json(kubectl, "-n", namespace, "job", name).get("status", {}).get("conditions") or []
        return any(c["type"] == kind and c["status"] == "True" for c in conditions)

    assert wait_until(deployment_ready), "3-replica Deployment did not become Ready"
    assert wait_until(lambda: job_condition("completes", "Complete")), "Job did not complete"
    assert wait_until(lambda: job_condition("fails", "Failed")), "Job with the fail marker did not fail"
    pod = get_json(kubectl, "-n", namespace, "pod", "never-ready")
    ready = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
    assert pod["status"]["phase"] == "Running"
    assert ready and ready[0]["status"] == "False"
    # A failing readiness probe: the container runs, it is just never ready (not a crash).
    assert "running" in pod["status"]["containerStatuses"][0]["state"]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0

    def container(name: str) -> dict:
        return (get_json(kubectl, "-n", namespace, "pod", name).get("status", {}).get("containerStatuses") or [{}])[0]

    # The crash marker restarts the container again and again; the image marker never pulls.
    assert wait_until(lambda: container("crash-loops").get("restartCount", 0) >= 3), container("crash-loops")
    assert container("crash-loops")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert wait_until(lambda: container("cannot-pull").get("state", {}).get("waiting", {}).get("reason") == "ImagePullBackOff")
    assert get_json(kubectl, "-n", namespace, "pod", "cannot-pull")["status"]["phase"] == "Pending"
    # Bare restartPolicy Never pods (helm test pods) complete, or fail with the marker;
    # a pod that restarts (Always) ignores the marker and keeps running.
    def phase(name: str) -> str:
        return get_json(kubectl, "-n", namespace, "pod", name).get("status", {}).get("phase", "")

    assert wait_until(lambda: phase("test-passes") == "Succeeded"), phase("test-passes")
    assert wait_until(lambda: phase("test-fails") == "Failed"), phase("test-fails")
    terminated = get_json(kubectl, "-n", namespace, "pod", "test-fails")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1
    assert get_json(kubectl, "-n", namespace, "pod", "test-passes")["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    # Still not ready a while later: the marker is permanent, not a slow start.
    time.sleep(3)
    assert phase("keeps-running") == "Running"
    pod = get_json(kubectl, "-n", namespace, "pod", "never-ready")
    assert [c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"] == ["False"]


def helm_run(helm: str, kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([helm, *args, "--kubeconfig", kubeconfig], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def test_helm_lifecycle_on_the_cluster(helm, kubeconfig, kubectl, namespace):
    chart = str(CHARTS / "sample")
    common = ["--namespace", namespace]
    helm_run(helm, kubeconfig, "upgrade", "--install", "rel", chart, *common, "--create-namespace", "--wait", "--timeout", "60s")
    hook_job = get_json(kubectl, "-n", namespace, "job", "rel-pre-install")
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in hook_job["status"]["conditions"])
    status = json.loads(helm_run(helm, kubeconfig, "status", "rel", *common, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    assert get_json(kubectl, "-n", namespace, "deployment", "rel-web")["status"]["readyReplicas"] == 2
    assert kubectl("-n", namespace, "get", "service", "rel-web").returncode == 0
    assert kubectl("-n", namespace, "get", "configmap", "rel-config").returncode == 0

    started = time.monotonic()
    failed = helm_run(helm, kubeconfig, "upgrade", "rel", chart, *common, "--set", "notReady=true",
                      "--wait", "--timeout", "8s", check=False)
    elapsed = time.monotonic() - started
    assert failed.returncode != 0, "an upgrade whose pods never become Ready must fail on --wait"
    assert elapsed < 40, f"the failing upgrade took {elapsed:.0f}s for an 8s timeout"
    history = json.loads(helm_run(helm, kubeconfig, "history", "rel", *common, "-o", "json").stdout)
    assert [h["status"] for h in history][-1] == "failed"

    helm_run(helm, kubeconfig, "rollback", "rel", "1", *common, "--wait", "--timeout", "60s")
    history = json.loads(helm_run(helm, kubeconfig, "history", "rel", *common, "-o", "json").stdout)
    assert history[-1]["status"] == "deployed"
    assert int(history[-1]["revision"]) == 3
    assert "Rollback to 1" in history[-1]["description"]
    template = get_json(kubectl, "-n", namespace, "deployment", "rel-web")["spec"]["template"]
    assert "helm-engine.test/ready" not in template["metadata"]["labels"]

    helm_run(helm, kubeconfig, "uninstall", "rel", *common, "--wait", "--timeout", "60s")
    # Hook Jobs (and their pods) are not release resources: helm leaves them by design.
    left = kubectl("-n", namespace, "get", "deployment,service,configmap,secret", "-l", "app.kubernetes.io/instance=rel", "-o", "name").stdout
    left += kubectl("-n", namespace, "get", "pod", "-l", "app.kubernetes.io/component=web", "-o", "name").stdout
    assert left.strip() == ""
    releases = kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm", "-o", "name").stdout
    assert releases.strip() == ""


# ---- start/stop hygiene, on a second cluster with its own ports and state dir -------------

def cluster_cmd(command: str, state: Path, port_base: int, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, HELM_ENGINE_CLUSTER_DIR=str(state), HELM_ENGINE_PORT_BASE=str(port_base))
    return subprocess.run([str(TOOLS / "cluster.sh"), command], capture_output=True, text=True, env=env, check=check)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_cluster_up_reuse_down_leaves_nothing(tmp_path, cluster):
    state = tmp_path / "cluster"
    base = free_port_base()
    ports = [base + 43, base + 79, base + 80, base + 57, base + 59, base + 47, base + 81]
    started = time.monotonic()
    up = cluster_cmd("up", state, base)
    warm_start = time.monotonic() - started
    try:
        assert up.returncode == 0, up.stderr
        assert warm_start < 30, f"warm start took {warm_start:.1f}s"
        assert (state / "kubeconfig").exists()
        pids = {p.stem: int(p.read_text()) for p in (state / "pids").glob("*.pid")}
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "registry"}
        assert all(listening(p) for p in ports)
        again = cluster_cmd("up", state, base)
        assert again.returncode == 0 and "reusing" in again.stdout
        assert {p.stem: int(p.read_text()) for p in (state / "pids").glob("*.pid")} == pids
        # The registry: its credentials are private files, and status needs it running.
        exported = dict(line.removeprefix("export ").split("=", 1) for line in cluster_cmd("env", state, base).stdout.splitlines())
        assert exported["HELM_ENGINE_REGISTRY"] == f"127.0.0.1:{base + 81}"
        assert exported["HELM_ENGINE_REGISTRY_CA"] == str(state / "pki" / "ca.crt")
        for secret in (Path(exported["HELM_ENGINE_REGISTRY_PASSWORD_FILE"]), state / "registry" / "htpasswd"):
            assert oct(secret.stat().st_mode & 0o777) == "0o600", secret
        assert len(Path(exported["HELM_ENGINE_REGISTRY_PASSWORD_FILE"]).read_text()) == 32
        os.kill(pids["registry"], 9)
        time.sleep(0.2)
        assert cluster_cmd("status", state, base).returncode != 0, "status must fail without the registry"
    finally:
        down = cluster_cmd("down", state, base)
    assert down.returncode == 0, down.stderr
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert not any(listening(p) for p in ports)
    assert cluster_cmd("down", state, base).returncode == 0, "stop must be idempotent"


def test_port_taken_names_the_component(tmp_path, cluster):
    base = free_port_base()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base + 43))
        blocker.listen(1)
        result = cluster_cmd("up", tmp_path / "cluster", base)
    assert result.returncode != 0
    assert "kube-apiserver" in result.stderr and f"127.0.0.1:{base + 43}" in result.stderr
    assert "HELM_ENGINE_PORT_BASE" in result.stderr


def test_toolchain_without_go_says_what_to_do(tmp_path):
    env = dict(os.environ, HELM_ENGINE_CACHE=str(tmp_path / "cache"), PATH="/usr/bin:/bin")
    env.pop("GOROOT", None)
    if Path("/usr/bin/go").exists():
        pytest.skip("go is installed in /usr/bin; cannot hide it from PATH")
    result = subprocess.run([str(TOOLS / "toolchain.sh"), "build", "helm3"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "Go is not installed" in result.stderr and "make toolchain" in result.stderr
    assert not (tmp_path / "cache" / "bin").exists() or not any((tmp_path / "cache" / "bin").iterdir())


def test_toolchain_download_failure_caches_nothing(tmp_path):
    env = dict(os.environ, HELM_ENGINE_CACHE=str(tmp_path / "cache"), HELM3_VERSION="v3.0.99-nonexistent",
               GOPROXY="off", GOFLAGS="-mod=mod")
    result = subprocess.run([str(TOOLS / "toolchain.sh"), "build", "helm3"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "helm3 v3.0.99-nonexistent" in result.stderr and "downloading the module failed" in result.stderr
    bin_dir = tmp_path / "cache" / "bin"
    assert not bin_dir.exists() or not any(bin_dir.iterdir()), "a failed build must leave nothing in the cache"
