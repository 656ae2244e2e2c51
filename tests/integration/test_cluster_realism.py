"""The local cluster behaves like a real one where charts from elsewhere depend on it.

kwok plays the kubelet, so what a real node would do has to be right in the fake node's status
and the kwok Stages (tools/cluster/kwok-stages.yaml), while the scheduler, the DaemonSet,
StatefulSet, disruption and EndpointSlice controllers are the real ones. These cases deploy
charts shaped like third-party ones and check what helm's wait and helm_status observe:

- a node-exporter-style hostNetwork DaemonSet gets the node's IP, which EndpointSlices accept
  (they refuse loopback), so its Service has a ready endpoint; a second copy on the same hostPort
  is left Pending by the scheduler, as on a real node;
- the API server reaches the fake kubelet (kwok) for pod logs through the node's Hostname
  address, localhost, never through its InternalIP (TEST-NET-1, nothing listens there);
- a StatefulSet with OrderedReady pods creates pod-1 only once pod-0 is Ready, rolls from the
  highest ordinal and stops at the first pod that does not become Ready, and its
  PodDisruptionBudget then refuses an eviction.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time

import pytest
from conftest import CHARTS
from reliability_log import history_snapshot

NODE_EXPORTER = str(CHARTS / "node-exporter")
ORDERED_STORE = str(CHARTS / "ordered-store")
NOT_READY = {"helm-engine.test/ready": "false"}


def node_addresses(kubectl) -> dict[str, str]:
    node = json.loads(kubectl("get", "node", "kwok-node-0", "-o", "json").stdout)
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    addresses["kubelet_port"] = str(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"])
    return addresses


def host_port(namespace: str) -> int:
    """A hostPort of this test's own: the node has one port space, shared by every namespace."""
    return 20000 + int(namespace.removeprefix("it-"), 16) % 20000


def exporter_args(namespace: str, port: int) -> dict:
    return {"name": "exporter", "namespace": namespace, "create_namespace": True, "chart_ref": NODE_EXPORTER,
            "release_values": {"port": port, "service": {"port": port}}, "wait": True, "timeout": "60s"}


def by_kind(status: dict) -> dict[str, dict]:
    return {r["kind"]: r for r in status["resources"]}


def pods(kubectl, namespace: str, selector: str) -> dict[str, dict]:
    items = json.loads(kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: p for p in items}


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


@pytest.mark.reliability("cluster realism", "hostNetwork DaemonSet with a hostPort, a Service selecting it; a second copy on the same hostPort")
def test_host_network_daemonset_is_healthy_with_service_endpoints(run_module, helm, kubeconfig, cluster, kubectl,
                                                                  namespace, reliability):
    addresses = node_addresses(kubectl)
    node_ip = addresses["InternalIP"]
    assert not ipaddress.ip_address(node_ip).is_loopback, "EndpointSlices refuse loopback addresses"
    port = host_port(namespace)

    started = time.monotonic()
    deployed = run_module("helm_deploy", exporter_args(namespace, port))
    reliability.note(seconds_to_deployed=round(time.monotonic() - started, 2))
    assert deployed["changed"] and deployed["release"]["status"] == "deployed"

    status = run_module("helm_status", {"name": "exporter", "namespace": namespace})
    assert status["healthy"] is True, status["summary"]
    assert status["summary"] == "deployed, revision 1 (node-exporter-0.1.0): 3/3 resources ready"
    kinds = by_kind(status)
    assert kinds["DaemonSet"]["detail"] == "1/1 ready"
    assert kinds["Service"]["detail"] == "1 ready endpoint(s)"
    assert kinds["ServiceAccount"]["ready"] is True

    # What a kubelet reports for a hostNetwork pod: the node's IP as host and pod IP.
    (pod,) = pods(kubectl, namespace, "app.kubernetes.io/name=node-exporter,app.kubernetes.io/instance=exporter").values()
    assert pod["status"]["hostIP"] == pod["status"]["podIP"] == node_ip
    slices = json.loads(kubectl("-n", namespace, "get", "endpointslices", "-l",
                                "kubernetes.io/service-name=exporter-node-exporter", "-o", "json").stdout)["items"]
    assert [(e["addresses"], e["conditions"]["ready"]) for s in slices for e in s["endpoints"]] == [([node_ip], True)]
    assert [p["port"] for s in slices for p in s["ports"]] == [port]

    # A second node exporter on the same hostPort (plain helm): the scheduler finds no node with
    # the port free and the pod stays Pending. helm 4's wait runs out. helm 3's passes: it counts a
    # DaemonSet ready with desiredNumberScheduled - maxUnavailable pods ready, 1 - 1 here
    # (pkg/kube/ready.go daemonSetReady), as it would on a real one-node cluster. helm_status
    # names the DaemonSet and the Service either way.
    before = history_snapshot(kubectl, namespace, "exporter")
    started = time.monotonic()
    clash = subprocess.run([helm, "install", "clash", NODE_EXPORTER, "--namespace", namespace, "--wait", "--timeout", "5s",
                            "--set", f"port={port},service.port={port}", "--kubeconfig", kubeconfig],
                           capture_output=True, text=True)
    reliability.note(seconds_to_helm_result=round(time.monotonic() - started, 2))
    if helm == cluster["HELM_ENGINE_HELM4"]:
        assert clash.returncode != 0 and "context deadline exceeded" in clash.stderr, clash.stderr
    else:
        assert clash.returncode == 0, clash.stderr
    (pending,) = pods(kubectl, namespace, "app.kubernetes.io/name=node-exporter,app.kubernetes.io/instance=clash").values()
    assert pending["status"]["phase"] == "Pending" and not pending["spec"].get("nodeName")
    scheduled = next(c for c in pending["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["status"] == "False" and "free ports" in scheduled["message"]
    status = run_module("helm_status", {"name": "clash", "namespace": namespace})
    assert status["healthy"] is False
    assert "DaemonSet/clash-node-exporter (0/1 ready)" in status["summary"]
    assert "Service/clash-node-exporter (0 ready endpoint(s))" in status["summary"]
    reliability.check_nothing_lost(kubectl, namespace, "exporter", before)


@pytest.mark.reliability("cluster realism", "pod logs through the fake kubelet, with the node's InternalIP unreachable")
def test_pod_logs_come_through_loopback_not_the_node_ip(run_module, helm, kubeconfig, cluster, kubectl, namespace,
                                                       reliability):
    addresses = node_addresses(kubectl)
    assert addresses["Hostname"] == "localhost"
    port = str(host_port(namespace))
    subprocess.run([helm, "install", "exporter", NODE_EXPORTER, "--namespace", namespace, "--create-namespace",
                    "--set", f"port={port},service.port={port}", "--kubeconfig", kubeconfig],
                   check=True, capture_output=True)

    tested = run_module("helm_test", {"name": "exporter", "namespace": namespace, "timeout": "60s"})
    assert tested["passed"] is True and tested["logs_available"] is True, tested.get("warnings")
    assert list(tested["logs"]) == ["exporter-node-exporter-test-metrics"]
    assert "kwok plays the kubelet" in tested["logs"]["exporter-node-exporter-test-metrics"]

    # While a log is streamed, the API server holds a connection to kwok on 127.0.0.1 and no
    # socket on this machine points at the node's InternalIP.
    follow = subprocess.Popen([cluster["HELM_ENGINE_KUBECTL"], "--kubeconfig", cluster["KUBECONFIG"], "-n", namespace, "logs", "-f", "exporter-node-exporter-test-metrics"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "kwok plays the kubelet" in follow.stdout.readline()
        sockets = subprocess.run(["ss", "-Htan"], check=True, capture_output=True, text=True).stdout.splitlines()
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    peers = [line.split()[4] for line in sockets if len(line.split()) >= 5]
    to_node_ip = [p for p in peers if p.rsplit(":", 1)[0].strip("[]") == addresses["InternalIP"]]
    to_kubelet = [p for p in peers if p == f"127.0.0.1:{addresses['kubelet_port']}"]
    reliability.note(sockets_to_node_ip=len(to_node_ip), sockets_to_kwok=len(to_kubelet))
    assert to_node_ip == [], to_node_ip
    assert to_kubelet, f"no connection to kwok on 127.0.0.1:{addresses['kubelet_port']}"


@pytest.mark.reliability("cluster realism", "OrderedReady StatefulSet upgraded to pods that never get Ready, under a PodDisruptionBudget")
def test_ordered_statefulset_rollout_stops_at_the_first_unready_pod(run_module, helm, kubeconfig, kubectl, namespace,
                                                                    reliability):
    args = {"name": "db", "namespace": namespace, "create_namespace": True, "chart_ref": ORDERED_STORE,
            "wait": True, "timeout": "60s"}
    started = time.monotonic()
    run_module("helm_deploy", args)
    # Beside it (plain helm, no wait), a StatefulSet whose pod-0 never gets Ready: OrderedReady
    # creates pod-1 only once pod-0 is Ready, so pod-1 must never appear while this test runs.
    subprocess.run([helm, "install", "stalled", ORDERED_STORE, "--namespace", namespace, "--kubeconfig", kubeconfig,
                    "--set", "replicas=2,podDisruptionBudget.enabled=false",
                    "--set-string", "podLabels.helm-engine\\.test/ready=false"], check=True, capture_output=True)
    reliability.note(seconds_to_deployed=round(time.monotonic() - started, 2))
    status = run_module("helm_status", {"name": "db", "namespace": namespace})
    assert status["healthy"] is True, status["summary"]
    assert by_kind(status)["StatefulSet"]["detail"] == "3/3 ready, 3 updated"
    assert by_kind(status)["Service"]["detail"] == "3 ready endpoint(s)"
    pdb = json.loads(kubectl("-n", namespace, "get", "pdb", "db-store", "-o", "json").stdout)["status"]
    assert (pdb["currentHealthy"], pdb["desiredHealthy"], pdb["disruptionsAllowed"]) == (3, 2, 1)
    first = pods(kubectl, namespace, "app.kubernetes.io/instance=db")
    assert sorted(first) == ["db-store-0", "db-store-1", "db-store-2"] and all(map(is_ready, first.values()))

    before = history_snapshot(kubectl, namespace, "db")
    started = time.monotonic()
    broken = run_module("helm_deploy", dict(args, release_values={"podLabels": NOT_READY, "config": {"broken": True}},
                                            timeout="6s"), expect_failure=True)
    reliability.note(seconds_to_failure=round(time.monotonic() - started, 2))
    assert broken["error"]["kind"] == "timeout", broken["msg"]

    # The rollout replaced db-store-2 (highest ordinal first) and waits for it; 0 and 1 still run
    # the old template, Ready.
    after = pods(kubectl, namespace, "app.kubernetes.io/instance=db")
    assert sorted(after) == ["db-store-0", "db-store-1", "db-store-2"]
    revision = {name: p["metadata"]["labels"]["controller-revision-hash"] for name, p in after.items()}
    assert after["db-store-2"]["metadata"]["uid"] != first["db-store-2"]["metadata"]["uid"]
    assert not is_ready(after["db-store-2"])
    for name in ("db-store-0", "db-store-1"):
        assert after[name]["metadata"]["uid"] == first[name]["metadata"]["uid"] and is_ready(after[name])
        assert revision[name] != revision["db-store-2"]
    status = run_module("helm_status", {"name": "db", "namespace": namespace})
    assert status["healthy"] is False and status["release_status"] == "failed"
    assert "StatefulSet/db-store (2/3 ready, 1 updated, 2 old)" in status["summary"]

    # Two healthy pods left for minAvailable 2: the budget allows no disruption, and the API
    # server refuses to evict one more pod (HTTP 429), as it would for a node drain.
    pdb = json.loads(kubectl("-n", namespace, "get", "pdb", "db-store", "-o", "json").stdout)["status"]
    assert (pdb["currentHealthy"], pdb["desiredHealthy"], pdb["disruptionsAllowed"]) == (2, 2, 0)
    eviction = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                           "metadata": {"name": "db-store-0", "namespace": namespace}})
    evicted = kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/db-store-0/eviction", "-f", "-",
                      input=eviction, check=False)
    assert evicted.returncode != 0 and "disruption budget" in evicted.stderr, evicted.stderr
    assert pods(kubectl, namespace, "app.kubernetes.io/instance=db")["db-store-0"]["metadata"]["uid"] == \
        first["db-store-0"]["metadata"]["uid"]
    stalled = pods(kubectl, namespace, "app.kubernetes.io/instance=stalled")
    assert list(stalled) == ["stalled-store-0"] and not is_ready(stalled["stalled-store-0"])
    reliability.check_nothing_lost(kubectl, namespace, "db", before)
