"""playbooks/fleet.yml on three private clusters (tools/cluster.sh, each in its own directory on its
own port base, started by this file and stopped at its end): a rollout in waves, a wave that
fails and stops the later ones, a preflight failure that changes no cluster, and refused waves.

The shared cluster is not used. With xdist, ``--dist loadfile`` keeps the file on one worker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import typing as t
import uuid
from pathlib import Path

import pytest
from conftest import COLLECTIONS, REPO, PrivateCluster, free_port_base

PLAYBOOK = REPO / "playbooks" / "fleet.yml"
EXAMPLE_INVENTORY = REPO / "examples" / "fleet" / "inventory.yml"
HOSTS = ("cluster-1", "cluster-2", "cluster-3")
NOT_READY = {"podLabels": {"helm-engine.test/ready": "false"}}
SUMMARY_LINE = re.compile(r'^\s*"(cluster-\d): (.*?)",?$')


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[list[dict[str, str]]]:
    """Three clusters, started at once; their exports (KUBECONFIG, HELM_ENGINE_HELM4, ...)."""
    bases: list[int] = []
    while len(bases) < len(HOSTS):
        base = free_port_base()
        if base not in bases:  # bases are 100 apart and the ports within 100 of one: no overlap
            bases.append(base)
    clusters = [PrivateCluster(tmp_path_factory.mktemp(f"fleet-{i}"), base) for i, base in enumerate(bases, 1)]
    errors: list[BaseException] = []

    def up(cluster: PrivateCluster) -> None:
        try:
            cluster.up()
        except BaseException as error:  # noqa: B902 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=up, args=(cluster,)) for cluster in clusters]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        yield [cluster.exports() for cluster in clusters]
    finally:
        for cluster in clusters:
            cluster.down()


def kubectl(cluster: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([cluster["HELM_ENGINE_KUBECTL"], "--kubeconfig", cluster["KUBECONFIG"], *args],
                          capture_output=True, text=True)


def history(cluster: dict[str, str], namespace: str) -> list[tuple[int, str, str]]:
    proc = subprocess.run([cluster["HELM_ENGINE_HELM4"], "history", "monitoring-web-service", "-n", namespace,
                           "--kubeconfig", cluster["KUBECONFIG"], "-o", "json"], capture_output=True, text=True, check=True)
    return [(entry["revision"], entry["status"], entry["description"]) for entry in json.loads(proc.stdout)]


def write_inventory(path: Path, fleet: list[dict[str, str]], helm: str, namespace: str, *,
                    waves: t.Sequence[t.Sequence[int]] = ((1,), (2, 3)),
                    host_vars: t.Mapping[str, t.Mapping[str, t.Any]] | None = None) -> Path:
    """An inventory of the example's shape (JSON is YAML): a host per cluster, the groups wave1..N."""
    host_vars = host_vars or {}

    def host(number: int) -> dict[str, t.Any]:
        name = HOSTS[number - 1]
        return dict({"kubeconfig": fleet[number - 1]["KUBECONFIG"]}, **host_vars.get(name, {}))

    inventory = {"fleet": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                 "binary_path": fleet[0][f"HELM_ENGINE_{helm.upper()}"], "release_namespace": namespace,
                 "release_values": {"replicaCount": 1}, "validate_timeout": "20s", "run_tests": False},
        "children": {f"wave{index}": {"hosts": {HOSTS[n - 1]: host(n) for n in wave}}
                     for index, wave in enumerate(waves, 1)}}}
    path.write_text(json.dumps(inventory, indent=1))
    return path


def run_fleet(tmp_path: Path, inventory: Path, *args: str, extra: t.Mapping[str, t.Any] | None = None,
              env: t.Mapping[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
                       ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                       ANSIBLE_RETRY_FILES_ENABLED="0", **(env or {}))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOK), *args]
    if extra:
        command += ["-e", json.dumps(extra)]
    began = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp_path)
    return proc, round(time.monotonic() - began, 2)


def summary(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """The last play's line per cluster."""
    lines = dict(match.groups() for line in proc.stdout.splitlines() if (match := SUMMARY_LINE.match(line)))
    assert sorted(lines) == sorted(h for h in HOSTS if f"{h}:" in proc.stdout), proc.stdout[-4000:]
    return lines


def recap_changed(proc: subprocess.CompletedProcess) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(cluster-\d)\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.M)}


def output(proc: subprocess.CompletedProcess) -> str:
    return " ".join((proc.stdout + proc.stderr).split())


@pytest.mark.parametrize("helm", ["helm4", "helm3"])
def test_a_good_rollout_reaches_every_cluster_in_two_waves(fleet, helm, tmp_path):
    namespace = f"fleet-good-{uuid.uuid4().hex[:6]}"
    inventory = write_inventory(tmp_path / "inventory.json", fleet, helm, namespace)

    # An unanswered AWX survey question sends "": the waves are then the inventory's wave groups.
    planned, _ = run_fleet(tmp_path, inventory, "--check", extra={"fleet_waves": ""})
    assert planned.returncode == 0, planned.stdout[-5000:] + planned.stderr[-2000:]
    assert planned.stdout.count("PLAY [Roll out in waves]") == 2
    assert summary(planned) == {
        "cluster-1": "revision none -> none, not installed, install (wave 1)",
        "cluster-2": "revision none -> none, not installed, install (wave 2)",
        "cluster-3": "revision none -> none, not installed, install (wave 2)"}
    for cluster in fleet:
        assert kubectl(cluster, "get", "namespace", namespace).returncode != 0, "check mode created the namespace"

    deployed, three_clusters = run_fleet(tmp_path, inventory)
    assert deployed.returncode == 0, deployed.stdout[-5000:] + deployed.stderr[-2000:]
    assert deployed.stdout.count("PLAY [Roll out in waves]") == 2  # one header per wave (serial batch)
    assert summary(deployed) == {
        "cluster-1": "revision none -> 1, healthy, install (wave 1)",
        "cluster-2": "revision none -> 1, healthy, install (wave 2)",
        "cluster-3": "revision none -> 1, healthy, install (wave 2)"}
    for cluster in fleet:
        assert history(cluster, namespace) == [(1, "deployed", "Install complete")]

    for mode in (("--check",), ()):
        again, _ = run_fleet(tmp_path, inventory, *mode)
        assert again.returncode == 0, again.stdout[-5000:]
        assert summary(again) == {
            "cluster-1": "revision 1 -> 1, healthy, unchanged (wave 1)",
            "cluster-2": "revision 1 -> 1, healthy, unchanged (wave 2)",
            "cluster-3": "revision 1 -> 1, healthy, unchanged (wave 2)"}, mode
        assert recap_changed(again) == dict.fromkeys(HOSTS, 0), mode
    for cluster in fleet:
        assert history(cluster, namespace) == [(1, "deployed", "Install complete")]

    # The same rollout on one cluster, for the wall time of a fleet against a single cluster.
    alone = write_inventory(tmp_path / "alone.json", fleet, helm, f"{namespace}-1", waves=((1,),))
    single, one_cluster = run_fleet(tmp_path, alone)
    assert single.returncode == 0, single.stdout[-5000:]
    assert summary(single) == {"cluster-1": "revision none -> 1, healthy, install (wave 1)"}
    print(f"{helm}: good rollout, 3 clusters in 2 waves {three_clusters} s; 1 cluster {one_cluster} s")


def test_a_failed_wave_rolls_its_cluster_back_and_starts_no_later_wave(fleet, tmp_path):
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._audit import verify

    namespace = f"fleet-bad-{uuid.uuid4().hex[:6]}"
    installed, _ = run_fleet(tmp_path, write_inventory(tmp_path / "install.json", fleet, "helm4", namespace))
    assert installed.returncode == 0, installed.stdout[-5000:]

    # Cluster 2's pods never become Ready (the kwok Stage of the label), on its host var only.
    inventory = write_inventory(tmp_path / "upgrade.json", fleet, "helm4", namespace, waves=((1, 2, 3),),
                                host_vars={"cluster-2": {"cluster_values": NOT_READY}})
    log = tmp_path / "audit" / "audit.log"
    audit = {"ANSIBLE_CALLBACKS_ENABLED": "ai_mesh.helm_engine.audit_log", "HELM_ENGINE_AUDIT_LOG": str(log)}
    # The waves as an AWX survey sends them: text.
    failed, _ = run_fleet(tmp_path, inventory, extra={"fleet_waves": "1, 50%, 100%", "release_values": {"replicaCount": 2}},
                          env=audit)
    assert failed.returncode != 0, failed.stdout[-5000:]
    assert failed.stdout.count("PLAY [Roll out in waves]") == 2  # the third wave never started
    assert "wave 2 failed on cluster-2 (1 of 1, more than 0%); not started: cluster-3" in output(failed)
    assert "fleet rollout failed on cluster-2 (rolled back); not reached: cluster-3" in output(failed)
    assert summary(failed) == {
        "cluster-1": "revision 1 -> 2, healthy, upgrade (wave 1)",
        "cluster-2": "revision 1 -> 3, healthy, rolled back to revision 1 (wave 2, step readiness failed: timeout)",
        "cluster-3": "revision 1 -> 1, healthy, untouched (not reached)"}

    # What each cluster holds, read from the clusters, not from the playbook.
    first, second, third = fleet
    assert history(first, namespace)[-1] == (2, "deployed", "Upgrade complete")
    assert [entry[:2] for entry in history(second, namespace)] == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    assert history(second, namespace)[-1][2] == "Rollback to 1"
    assert history(third, namespace) == [(1, "deployed", "Install complete")]
    values = [json.loads(subprocess.run([cluster["HELM_ENGINE_HELM4"], "get", "values", "monitoring-web-service", "-n", namespace,
                                         "--kubeconfig", cluster["KUBECONFIG"], "-o", "json"],
                                        capture_output=True, text=True, check=True).stdout) for cluster in fleet]
    assert values == [{"replicaCount": 2}, {"replicaCount": 1}, {"replicaCount": 1}]
    labels = kubectl(second, "-n", namespace, "get", "deployment", "monitoring-web-service",
                     "-o", "jsonpath={.spec.template.metadata.labels}").stdout
    assert "helm-engine.test/ready" not in labels, labels  # the failed revision's pods are gone

    verification = verify(str(log) + "*")
    assert verification.ok, verification.reason
    records = [json.loads(line) for line in log.read_text().splitlines()]
    results = [r for r in records if r["event"] == "task_result"]
    changing = {r["host"] for r in results if r.get("module", "").endswith(("helm_deploy", "helm_rollback"))}
    assert changing == {"cluster-1", "cluster-2"}
    rollbacks = [r for r in results if r.get("module", "").endswith("helm_rollback")]
    assert [(r["host"], r["status"]) for r in rollbacks] == [("cluster-2", "changed")]
    # Cluster 3 was only read (preflight, the revision before, the summary): nothing that changes.
    third_modules = {r.get("module") for r in results if r["host"] == "cluster-3"}
    assert third_modules and all(m.endswith(("helm_preflight", "helm_status")) for m in third_modules), third_modules
    assert not any(r["changed"] for r in results if r["host"] == "cluster-3")


def test_a_preflight_failure_on_one_cluster_changes_no_cluster(fleet, tmp_path):
    namespace = f"fleet-pre-{uuid.uuid4().hex[:6]}"
    inventory = write_inventory(tmp_path / "inventory.json", fleet, "helm4", namespace, host_vars={
        "cluster-2": {"create_namespace": False},
        "cluster-3": {"cluster_values": {"replicaCount": "many"}}})
    proc, _ = run_fleet(tmp_path, inventory)
    assert proc.returncode != 0
    text = output(proc)
    assert "fleet preflight failed on 2 of 3 cluster(s); nothing was changed on any cluster." in text, text[-3000:]
    assert f"cluster-2: [1] namespace: namespace '{namespace}' does not exist" in text
    assert "cluster-3: [1] render: the values do not match values.schema.json" in text
    assert "PLAY [Roll out in waves]" not in proc.stdout
    for cluster in fleet:
        assert kubectl(cluster, "get", "namespace", namespace).returncode != 0
        assert kubectl(cluster, "get", "secrets", "-A", "-l", "owner=helm,name=monitoring-web-service",
                       "-o", "name").stdout.count(namespace) == 0


@pytest.mark.parametrize(("waves", "message"), [
    ("0", "fleet_waves must be a list of positive counts or percentages"),
    ("one, two", "fleet_waves must be a list of positive counts or percentages"),
    ([], "fleet_waves must be a list of positive counts or percentages"),
    (["-1"], "fleet_waves must be a list of positive counts or percentages"),
    (["50%\n100%"], "fleet_waves must be a list of positive counts or percentages"),
    ({"a": 1}, "fleet_waves must be a list of positive counts or percentages"),
])
def test_waves_that_mean_nothing_are_refused_before_any_cluster_is_read(waves, message, tmp_path):
    # Kubeconfigs that do not exist: a run that got past the check would fail differently.
    fake = [{"KUBECONFIG": str(tmp_path / f"missing-{n}"), "HELM_ENGINE_HELM4": "helm"} for n in range(3)]
    inventory = write_inventory(tmp_path / "inventory.json", fake, "helm4", "anything")
    proc, _ = run_fleet(tmp_path, inventory, extra={"fleet_waves": waves})
    assert proc.returncode != 0
    assert message in output(proc), output(proc)[-3000:]
    assert "TASK [Preflight, which changes nothing]" not in proc.stdout


def test_a_cluster_in_two_wave_groups_is_refused(tmp_path):
    fake = [{"KUBECONFIG": str(tmp_path / f"missing-{n}"), "HELM_ENGINE_HELM4": "helm"} for n in range(3)]
    inventory = write_inventory(tmp_path / "inventory.json", fake, "helm4", "anything", waves=((1, 2), (2, 3)))
    proc, _ = run_fleet(tmp_path, inventory)
    assert proc.returncode != 0
    assert "clusters in more than one wave group: cluster-2; a cluster belongs to one wave" in output(proc)
    assert "TASK [Preflight, which changes nothing]" not in proc.stdout


def test_the_example_inventory_names_a_cluster_per_host_in_waves(tmp_path):
    bindir = Path(sys.executable).parent
    proc = subprocess.run([str(bindir / "ansible-inventory"), "-i", str(EXAMPLE_INVENTORY), "--list"],
                          capture_output=True, text=True, check=True, cwd=tmp_path,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS)))
    listed = json.loads(proc.stdout)
    assert listed["wave1"]["hosts"] == ["staging-eu"]
    assert listed["wave2"]["hosts"] == ["prod-eu", "prod-us"]
    for host, variables in listed["_meta"]["hostvars"].items():
        assert variables["ansible_connection"] == "local", host
        assert variables["kubeconfig"], host
    assert listed["_meta"]["hostvars"]["prod-us"]["cluster_values"]["podLabels"] == {"region": "us"}
    assert listed["_meta"]["hostvars"]["prod-eu"]["cluster_values"] == {"replicaCount": 3}
