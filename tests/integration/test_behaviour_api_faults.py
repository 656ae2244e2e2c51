"""API server and etcd faults, injected for real on a private cluster this file starts.

The shared cluster is never touched: a module-scoped fixture starts a cluster of its own
(tools/cluster.sh with HELM_ENGINE_CLUSTER_DIR in a temp dir and port base 17400), whose
kube-apiserver and etcd the cases kill and start again, and stops it at the end, pass or fail.
A closed port of the second port base this file owns (17450) stands for an API server that is
down, and a TCP proxy (slow_proxy.py) for a slow one.
The fixtures ``cluster`` and ``kubeconfig`` are overridden here, so run_module, kubectl and
namespace all work on the private cluster. With xdist, ``--dist loadfile`` keeps the file on
one worker, hence one private cluster.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import typing as t
from datetime import datetime

import pytest
from conftest import PrivateCluster, _module_env, closed_port, free_port_base, module_path
from reliability_log import history_snapshot
from slow_proxy import SlowProxy, point_kubeconfig_at

PORT_BASE = free_port_base()
APISERVER_PORT = PORT_BASE + 43
# A module that finds the API server down must say so this fast (docs/api-server-faults.md): a
# refused connection is retried once, at once, so the time is the module's own start-up (3 s at
# load 5, 12 s measured at load 17 on 2 cores). A client retrying with back-off, or helm's
# retries, would take minutes.
UNREACHABLE_BOUND = 30.0


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[PrivateCluster]:
    private = PrivateCluster(tmp_path_factory.mktemp("api-cluster"), PORT_BASE)
    began = time.monotonic()
    try:
        up = private.script("up", check=False)
        private.start_seconds = round(time.monotonic() - began, 2)
        assert up.returncode == 0, f"the private cluster did not start:\n{up.stdout}\n{up.stderr}"
        yield private
    finally:
        private.script("down", check=False)


@pytest.fixture(scope="module")
def cluster(private_cluster: PrivateCluster) -> dict[str, str]:
    return private_cluster.exports()


@pytest.fixture(scope="module")
def kubeconfig(cluster: dict[str, str]) -> str:
    return cluster["KUBECONFIG"]


@pytest.fixture
def slow_chart(chart_copy) -> str:
    """The sample chart without hooks (no Job to wait for): fewer moving parts, faster runs.
    Its value readyAfter makes the pods Ready only that long after they are created."""
    chart = chart_copy("sample")
    (chart / "templates" / "hooks.yaml").unlink()
    return str(chart)


def args_for(chart: str, namespace: str, **extra: t.Any) -> dict[str, t.Any]:
    args = {"name": "web", "namespace": namespace, "create_namespace": True, "chart_ref": chart,
            "release_values": {"replicaCount": 1}}
    args.update(extra)
    return args


def run_raw(runner, module: str, args: dict[str, t.Any], *, kubeconfig: str | None = None) -> tuple[dict[str, t.Any], float]:
    """Runs a module like run_module, but returns its result whatever it is, with its wall time."""
    payload = {"ANSIBLE_MODULE_ARGS": dict(runner.defaults, **args, _ansible_check_mode=False, _ansible_diff=True,
                                           _ansible_tmpdir=str(runner.tmp_path), _ansible_remote_tmp=str(runner.tmp_path))}
    if kubeconfig:
        payload["ANSIBLE_MODULE_ARGS"]["kubeconfig"] = kubeconfig
    runner.calls += 1
    args_file = runner.tmp_path / f"raw-args-{runner.calls}.json"
    args_file.write_text(json.dumps(payload))
    began = time.monotonic()
    proc = subprocess.run([sys.executable, str(module_path(module)), str(args_file)],
                          capture_output=True, text=True, env=_module_env(), cwd=runner.tmp_path)
    seconds = round(time.monotonic() - began, 2)
    args_file.unlink()
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    try:
        return json.loads(proc.stdout), seconds
    except ValueError:
        raise AssertionError(f"{module} printed no JSON (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def statuses(kubectl, namespace: str) -> dict[int, str]:
    out = json.loads(kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm,name=web", "-o", "json").stdout)
    return {int(s["metadata"]["labels"]["version"]): s["metadata"]["labels"]["status"] for s in out["items"]}


def pod_ready_since(kubectl, namespace: str, since: float) -> float | None:
    """Seconds from ``since`` (a wall-clock time) until the newest web pod became Ready."""
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)["items"]
    times = [datetime.fromisoformat(c["lastTransitionTime"].replace("Z", "+00:00")).timestamp()
             for p in pods for c in p["status"].get("conditions") or [] if c["type"] == "Ready" and c["status"] == "True"]
    return round(max(times) - since, 2) if times else None


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: t.Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.reliability("api server", "kube-apiserver killed and restarted while helm_deploy waits for pods")
def test_apiserver_restart_while_deploy_waits(run_module, kubectl, namespace, slow_chart, private_cluster, reliability):
    run_module("helm_deploy", args_for(slow_chart, namespace))
    before = history_snapshot(kubectl, namespace, "web")
    upgrade = args_for(slow_chart, namespace, release_values={"replicaCount": 1, "message": "v2", "readyAfter": "6s"},
                       wait=True, timeout="60s")
    outcome: dict[str, t.Any] = {}

    def deploy() -> None:
        try:
            outcome["result"], outcome["seconds"] = run_raw(run_module, "helm_deploy", upgrade)
        except BaseException as exc:  # re-raised below, in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=deploy)
    worker.start()
    try:
        # helm has written revision 2 and is waiting for the new pod (Ready only after 6 s).
        wait_until(lambda: statuses(kubectl, namespace).get(2) == "pending-upgrade", "helm to start the upgrade")
        time.sleep(1)
        private_cluster.kill("kube-apiserver")
        down_at, down_wall = time.monotonic(), time.time()
        restart = private_cluster.start("kube-apiserver")
    finally:
        worker.join(timeout=240)
    assert not worker.is_alive(), "helm_deploy did not end after the API server came back"
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    ended_after_fault = round(time.monotonic() - down_at, 2)
    reliability.note(apiserver_restart_seconds=restart, deploy_seconds=outcome["seconds"],
                     ended_after_fault_seconds=ended_after_fault,
                     pod_ready_after_fault_seconds=pod_ready_since(kubectl, namespace, down_wall),
                     outcome=result["error"]["kind"] if result.get("failed") else result["release"]["status"],
                     private_cluster_start_seconds=private_cluster.start_seconds)
    if result.get("failed"):
        # Allowed, if it says what happened in a kind a playbook can act on.
        assert result["error"]["kind"] in ("cluster_unreachable", "timeout", "kubernetes_api_error"), result["error"]
    else:
        assert result["changed"] is True and result["release"]["status"] == "deployed", result
        assert result["release"]["revision"] == 2
    again = run_module("helm_deploy", upgrade)
    if result.get("failed"):
        assert again["changed"] is True and again["release"]["status"] == "deployed"
    else:
        assert again["changed"] is False, again.get("reasons")
    final = statuses(kubectl, namespace)
    assert max(final.items())[1] == "deployed" and "pending-upgrade" not in final.values(), final
    reliability.check_nothing_lost(kubectl, namespace, "web", before)


@pytest.mark.reliability("api server", "API server down when the task starts (deploy, status, rollback)")
def test_apiserver_down_fails_fast(run_module, kubeconfig, kubectl, namespace, slow_chart, tmp_path, reliability):
    run_module("helm_deploy", args_for(slow_chart, namespace))
    before = history_snapshot(kubectl, namespace, "web")
    # A killed API server leaves its port closed; a kubeconfig copy aimed at a closed port is the
    # same fault at the TCP level, without the restart (10 s and more) this file cannot spare.
    seconds = {}
    with closed_port() as port:
        assert not port_open(port), f"port {port} should be closed"
        down = point_kubeconfig_at(kubeconfig, port, str(tmp_path / "down-kubeconfig"))
        for module, args in (
            ("helm_deploy", args_for(slow_chart, namespace, release_values={"replicaCount": 1, "message": "v2"})),
            ("helm_status", {"name": "web", "namespace": namespace}),
            ("helm_rollback", {"name": "web", "namespace": namespace}),
        ):
            result, seconds[module] = run_raw(run_module, module, args, kubeconfig=down)
            assert result.get("failed") and result["changed"] is False, result
            assert result["error"]["kind"] == "cluster_unreachable", result["error"]
            assert "unreachable" in result["msg"] and f"127.0.0.1', port={port}" in result["msg"], result["msg"]
    reliability.note(seconds=max(seconds.values()), **{f"{m}_seconds": s for m, s in seconds.items()})
    for module, took in seconds.items():
        assert took < UNREACHABLE_BOUND, f"{module} took {took}s to report the API server down"
    assert statuses(kubectl, namespace) == {1: "deployed"}
    reliability.check_nothing_lost(kubectl, namespace, "web", before)


@pytest.mark.reliability("api server", "etcd killed and restarted between two operations")
def test_etcd_restart_between_operations(run_module, kubectl, namespace, slow_chart, private_cluster, reliability):
    run_module("helm_deploy", args_for(slow_chart, namespace))
    before = history_snapshot(kubectl, namespace, "web")
    private_cluster.kill("etcd")
    restart = private_cluster.start("etcd")
    began = time.monotonic()
    upgraded = run_module("helm_deploy", args_for(slow_chart, namespace, release_values={"replicaCount": 1, "message": "v2"}))
    reliability.note(etcd_restart_seconds=restart, next_operation_seconds=round(time.monotonic() - began, 2))
    assert upgraded["changed"] is True and upgraded["release"]["revision"] == 2
    assert upgraded["release"]["status"] == "deployed"
    assert statuses(kubectl, namespace) == {1: "superseded", 2: "deployed"}
    reliability.check_nothing_lost(kubectl, namespace, "web", before)


@pytest.mark.reliability("api server", "every API server response delayed 150 ms (TCP proxy)")
def test_slow_api_server(run_module, kubeconfig, kubectl, namespace, slow_chart, tmp_path, reliability):
    delay = 0.15
    with SlowProxy("127.0.0.1", APISERVER_PORT, delay=delay) as proxy:
        slow = point_kubeconfig_at(kubeconfig, proxy.port, str(tmp_path / "slow-kubeconfig"))
        args = args_for(slow_chart, namespace, wait=True, timeout="60s")
        installed, install_s = run_raw(run_module, "helm_deploy", args, kubeconfig=slow)
        assert not installed.get("failed"), installed.get("msg")
        assert installed["changed"] is True and installed["release"]["status"] == "deployed"
        again, again_s = run_raw(run_module, "helm_deploy", args, kubeconfig=slow)
        assert not again.get("failed") and again["changed"] is False, again.get("msg") or again.get("reasons")
        status, status_s = run_raw(run_module, "helm_status", {"name": "web", "namespace": namespace}, kubeconfig=slow)
        assert not status.get("failed") and status["healthy"] is True, status.get("msg") or status.get("summary")
        chunks = proxy.chunks_delayed
    reliability.note(delay_seconds=delay, install_seconds=install_s, idempotent_seconds=again_s, status_seconds=status_s,
                     chunks_delayed=chunks)
    # The proxy really was in the way: every answer waited at least the delay.
    assert chunks > 10 and install_s > 5 * delay
    assert statuses(kubectl, namespace) == {1: "deployed"}
