"""Runs that meet on the same release, or run side by side on many, against the local cluster.

Two helm_deploy processes started together used to both run helm; the loser failed late with
helm's own "release: already exists" (as resource_conflict, and changed=true). Now the Lease
``helm-engine.<release>`` lets exactly one through and the other fails at once with
``release_locked`` naming the holder, or waits for it with ``lock_wait``.
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
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import COLLECTIONS, _module_env, helm_work, module_path
from reliability_log import history_snapshot
from test_helm_deploy import SAMPLE, configmap, deploy_args

LEASE = "helm-engine.web"
STATUSES = {"unknown", "deployed", "uninstalled", "superseded", "failed", "uninstalling",
            "pending-install", "pending-upgrade", "pending-rollback"}


class Started:
    """One module process started in the background; ``result()`` waits for its JSON."""

    def __init__(self, proc: subprocess.Popen, args_file: Path) -> None:
        self.proc = proc
        self.args_file = args_file
        self.started = time.monotonic()
        self.seconds: float | None = None

    def result(self, timeout: float = 180) -> dict[str, t.Any]:
        out, err = self.proc.communicate(timeout=timeout)
        self.seconds = round(time.monotonic() - self.started, 2)
        self.args_file.unlink(missing_ok=True)
        try:
            result = json.loads(out)
        except ValueError:
            raise AssertionError(f"no JSON (rc={self.proc.returncode}):\n{out}\n{err}")
        assert "Traceback" not in out + err, err
        result["_seconds"] = self.seconds
        return result


class Launcher:
    """Starts module processes without waiting, so two can meet on one release."""

    def __init__(self, tmp_path: Path, kubeconfig: str, helm: str) -> None:
        self.tmp_path = tmp_path
        self.defaults = {"kubeconfig": kubeconfig, "binary_path": helm}
        self.count = 0
        self.mutex = threading.Lock()

    def start(self, module: str, args: dict[str, t.Any], *, check: bool = False) -> Started:
        with self.mutex:
            self.count += 1
            args_file = self.tmp_path / f"args-{self.count}.json"
        payload = {"ANSIBLE_MODULE_ARGS": dict(
            self.defaults, **args, _ansible_check_mode=check, _ansible_diff=False,
            _ansible_tmpdir=str(self.tmp_path), _ansible_remote_tmp=str(self.tmp_path))}
        args_file.write_text(json.dumps(payload))
        proc = subprocess.Popen([sys.executable, str(module_path(module)), str(args_file)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_module_env(), cwd=self.tmp_path)
        return Started(proc, args_file)

    def run(self, module: str, args: dict[str, t.Any], *, check: bool = False) -> dict[str, t.Any]:
        return self.start(module, args, check=check).result()

    def together(self, *calls: tuple[str, dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        started = [self.start(module, args) for module, args in calls]
        # Each waited for in its own thread, so each one's _seconds ends when it does.
        with ThreadPoolExecutor(len(started)) as pool:
            return list(pool.map(lambda s: s.result(), started))


@pytest.fixture
def launch(tmp_path: Path, kubeconfig: str, helm: str) -> Launcher:
    return Launcher(tmp_path, kubeconfig, helm)


def statuses(kubectl, namespace: str, release: str = "web") -> dict[int, str]:
    out = kubectl("-n", namespace, "get", "secrets", "-l", f"owner=helm,name={release}", "-o", "json").stdout
    return {int(s["metadata"]["labels"]["version"]): s["metadata"]["labels"]["status"] for s in json.loads(out)["items"]}


def lease_exists(kubectl, namespace: str, name: str = LEASE) -> bool:
    return kubectl("-n", namespace, "get", "lease", name, check=False).returncode == 0


def split(results: list[dict[str, t.Any]]) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """The run that went through and the one that did not; exactly one of each."""
    ok = [r for r in results if not r.get("failed")]
    failed = [r for r in results if r.get("failed")]
    assert len(ok) == 1 and len(failed) == 1, [(r.get("failed"), r.get("action"), r.get("msg")) for r in results]
    return ok[0], failed[0]


def micro(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_lease(kubectl, namespace: str, *, holder: str, renewed: datetime, duration: int) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": namespace},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "acquireTime": micro(renewed),
                 "renewTime": micro(renewed), "leaseTransitions": 0},
    }))


# ---- two runs, one release --------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["install", "upgrade"])
@pytest.mark.reliability("concurrency", "two helm_deploy runs change the same release at the same moment")
def test_two_runs_at_once_one_proceeds_the_other_fails_fast(launch, kubectl, namespace, reliability, operation):
    kubectl("create", "namespace", namespace)  # the lease lives in the release's namespace
    if operation == "upgrade":
        launch.run("helm_deploy", deploy_args(namespace, release_values={"message": "seed"}))
    before = history_snapshot(kubectl, namespace, "web")
    results = launch.together(*[("helm_deploy", deploy_args(namespace, release_values={"message": m}))
                                for m in ("left", "right")])
    winner, loser = split(results)
    expected_revision = 1 if operation == "install" else 2
    assert winner["changed"] is True and winner["action"] == operation
    assert winner["release"]["revision"] == expected_revision
    # The loser never reached helm: refused by the lease, changing nothing.
    assert loser["error"]["kind"] == "release_locked", loser["msg"]
    assert loser["changed"] is False
    lock = loser["error"]["lock"]
    assert lock["lease"] == LEASE and lock["operation"] == "helm_deploy"
    assert lock["holder"] and lock["since"] and lock["expires"], lock
    assert lock["holder"] in loser["msg"] and "since" in loser["msg"]
    # No upgrade: at most `helm version` and, for an upgrade, the render that decided before the lock.
    assert not [c for c in loser["commands"] if " upgrade " in c and "--dry-run" not in c], loser["commands"]
    # Fails fast: it does a part of what the winner does before the winner's render and upgrade.
    assert loser["duration"] < winner["duration"], (loser["duration"], winner["duration"])
    # One revision written, none duplicated; the live values are the winner's.
    assert statuses(kubectl, namespace) == ({1: "deployed"} if operation == "install" else {1: "superseded", 2: "deployed"})
    assert configmap(kubectl, namespace)["MESSAGE"] == winner["status"]["values"]["message"]
    assert not lease_exists(kubectl, namespace), "the winner deleted its lease"
    # _seconds: process start to exit (Python start-up included); duration: the module's own clock.
    reliability.note(loser_seconds=loser["_seconds"], loser_module_seconds=loser["duration"],
                     winner_seconds=winner["_seconds"], loser_helm_processes=loser["helm_processes"])
    reliability.check_nothing_lost(kubectl, namespace, "web", before)


@pytest.mark.reliability("concurrency", "two helm_deploy upgrades at once with lock_wait: serialised")
def test_with_lock_wait_the_second_run_waits_then_upgrades(launch, kubectl, namespace, reliability):
    launch.run("helm_deploy", deploy_args(namespace, release_values={"message": "seed"}))
    before = history_snapshot(kubectl, namespace, "web")
    results = launch.together(*[("helm_deploy", deploy_args(namespace, release_values={"message": m}, lock_wait="90s"))
                                for m in ("left", "right")])
    assert all(not r.get("failed") for r in results), [r.get("msg") for r in results]
    first, second = sorted(results, key=lambda r: r["release"]["revision"])
    assert (first["release"]["revision"], second["release"]["revision"]) == (2, 3)
    assert first["action"] == second["action"] == "upgrade" and first["changed"] and second["changed"]
    # The second saw the first's revision: one after the other, never both from revision 1.
    assert (first["previous_revision"], second["previous_revision"]) == (1, 2)
    assert statuses(kubectl, namespace) == {1: "superseded", 2: "superseded", 3: "deployed"}
    assert configmap(kubectl, namespace)["MESSAGE"] == second["status"]["values"]["message"]
    assert not lease_exists(kubectl, namespace)
    reliability.note(first_seconds=first["_seconds"], second_seconds=second["_seconds"])
    reliability.check_nothing_lost(kubectl, namespace, "web", before)


@pytest.mark.reliability("concurrency", "two first installs at once into a namespace that does not exist yet (no lease)")
def test_first_installs_into_a_missing_namespace_race_inside_helm(launch, kubectl, namespace, reliability):
    # No namespace, no lease: helm's own checks decide, and their refusals are release_locked.
    args = deploy_args(namespace, release_values={"message": "same"})
    results = launch.together(("helm_deploy", args), ("helm_deploy", args))
    installed = [r for r in results if not r.get("failed") and r["changed"]]
    others = [r for r in results if r not in installed]
    assert len(installed) == 1 and installed[0]["action"] == "install", [(r.get("action"), r.get("msg")) for r in results]
    (other,) = others
    if other.get("failed"):
        assert other["error"]["kind"] == "release_locked", other["msg"]
        # Refused by helm (named as a concurrent run, when this run could hold no lease), or by
        # the lease if the namespace existed by the time this run looked.
        signs = ("release: already exists", "another operation", "cannot re-use a name", "cannot reuse a name", "is locked by another run",
                 "another helm operation may still be running")
        assert any(sign in other["msg"] for sign in signs), other["msg"]
    else:  # it started after the install had finished: a no-op
        assert other["action"] == "none"
    assert other["changed"] is False
    assert statuses(kubectl, namespace) == {1: "deployed"}
    reliability.note(other_outcome=other.get("error", {}).get("message") or "no-op", other_seconds=other["_seconds"])
    reliability.check_nothing_lost(kubectl, namespace, "web", {})


@pytest.mark.reliability("concurrency", "the release's lease is held by a live run, then left expired by a killed one")
def test_a_held_lease_names_its_holder_and_an_expired_one_is_taken_over(launch, kubectl, namespace, reliability):
    launch.run("helm_deploy", deploy_args(namespace, release_values={"message": "seed"}))
    before = history_snapshot(kubectl, namespace, "web")
    now = datetime.now(timezone.utc)
    write_lease(kubectl, namespace, holder="ci-7/pid-4242/cafe", renewed=now, duration=600)
    upgrade = deploy_args(namespace, release_values={"message": "after"})

    locked = launch.run("helm_deploy", upgrade)
    assert locked["failed"] and locked["error"]["kind"] == "release_locked" and locked["changed"] is False
    assert locked["error"]["lock"]["holder"] == "ci-7/pid-4242/cafe"
    assert locked["error"]["lock"]["since"] == micro(now)
    assert "ci-7/pid-4242/cafe" in locked["msg"] and micro(now) in locked["msg"]
    # Refused before any change: at most `helm version` and the render that decided before the lock.
    assert helm_work(locked) in ([], ["upgrade"]) and all("--dry-run=server" in c for c in locked["commands"] if " upgrade " in c), \
        locked["commands"]
    # Check mode takes no lock but reports the one the real run would meet.
    check = launch.run("helm_deploy", upgrade, check=True)
    assert check["error"]["kind"] == "release_locked"
    rollback = launch.run("helm_rollback", {"name": "web", "namespace": namespace, "target": "previous"})
    assert rollback["error"]["kind"] == "release_locked"
    assert statuses(kubectl, namespace) == {1: "deployed"}

    # Its holder was killed: the lease was last renewed longer ago than its duration.
    write_lease(kubectl, namespace, holder="ci-7/pid-4242/cafe", renewed=now - timedelta(minutes=20), duration=600)
    taken = launch.run("helm_deploy", upgrade)
    assert not taken.get("failed"), taken.get("msg")
    assert taken["changed"] is True and taken["release"]["revision"] == 2
    assert not lease_exists(kubectl, namespace), "the lease taken over is deleted at the end"
    reliability.note(seconds_until_release_locked=locked["_seconds"], module_seconds_until_release_locked=locked["duration"])
    reliability.check_nothing_lost(kubectl, namespace, "web", before)


# ---- many releases side by side ---------------------------------------------------------------

RELEASES = 20
FORKS = 10

PARALLEL_PLAYBOOK = """
- name: Twenty releases, one per host, side by side
  hosts: releases
  gather_facts: false
  tasks:
    - name: Deploy this host's release
      ai_mesh.helm_engine.helm_deploy:
        name: "{{ inventory_hostname }}"
        namespace: "{{ release_namespace }}"
        create_namespace: true
        chart_ref: "{{ chart }}"
        kubeconfig: "{{ kubeconfig }}"
        # Odd hosts on helm 3, even hosts on helm 4: both majors side by side in one run.
        binary_path: "{{ helm3 if (inventory_hostname[-1] | int) is odd else helm4 }}"
        release_values:
          message: "{{ inventory_hostname }}"
          replicaCount: 1
        wait: true
        timeout: 120s
"""


RECAP = re.compile(r"^(rel\d+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def run_parallel_playbook(tmp_path: Path, extra_vars: dict[str, str], run: str) -> tuple[dict[str, t.Any], float]:
    """Each host's recap (changed, failed) and module result (the tree callback's file)."""
    inventory = tmp_path / "inventory.ini"
    hosts = "\n".join(f"rel{i:02d}" for i in range(1, RELEASES + 1))
    inventory.write_text(f"[releases]\n{hosts}\n\n[releases:vars]\nansible_connection=local\n"
                         f"ansible_python_interpreter={sys.executable}\n")
    playbook = tmp_path / "parallel.yml"
    playbook.write_text(PARALLEL_PLAYBOOK)
    tree = tmp_path / f"tree-{run}"
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_PIPELINING="1", ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
               ANSIBLE_CALLBACK_TREE_DIR=str(tree), ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"),
               ANSIBLE_REMOTE_TMP=str(tmp_path / "remote-tmp"), PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    started = time.monotonic()
    proc = subprocess.run([os.path.join(bindir, "ansible-playbook"), "-i", str(inventory), "-f", str(FORKS),
                           "-e", json.dumps(extra_vars), str(playbook)], capture_output=True, text=True, env=env, cwd=tmp_path)
    seconds = round(time.monotonic() - started, 1)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    hosts_seen = {}
    for host, ok, changed, unreachable, failed in RECAP.findall(proc.stdout):
        result = json.loads((tree / host).read_text())
        hosts_seen[host] = {"changed": int(changed), "failed": int(failed) + int(unreachable), "result": result}
    return hosts_seen, seconds


@pytest.mark.reliability("concurrency", f"{RELEASES} releases deployed in parallel by one playbook (forks {FORKS})")
def test_twenty_releases_in_parallel_then_an_idempotent_rerun(cluster, kubeconfig, kubectl, namespace, tmp_path, reliability):
    # One run covers both helm majors (half the hosts each): the case costs 40 module runs.
    extra = {"release_namespace": namespace, "chart": SAMPLE, "kubeconfig": kubeconfig,
             "helm3": cluster["HELM_ENGINE_HELM3"], "helm4": cluster["HELM_ENGINE_HELM4"]}
    first, first_seconds = run_parallel_playbook(tmp_path, extra, "install")
    hosts = {f"rel{i:02d}" for i in range(1, RELEASES + 1)}
    assert set(first) == hosts
    assert all((h["failed"], h["changed"]) == (0, 1) for h in first.values()), first
    assert {n: (h["result"]["action"], h["result"]["release"]["revision"]) for n, h in first.items()} == {n: ("install", 1) for n in hosts}
    assert {n: h["result"]["helm_version"].split(".")[0] for n, h in first.items()} == {
        n: "v3" if int(n[-1]) % 2 else "v4" for n in hosts}
    for host in ("rel01", "rel20"):  # each host's release got its own values
        assert configmap(kubectl, namespace, f"{host}-config")["MESSAGE"] == host
    again, again_seconds = run_parallel_playbook(tmp_path, extra, "again")
    assert set(again) == hosts
    assert all((h["failed"], h["changed"], h["result"]["action"]) == (0, 0, "none") for h in again.values()), again
    assert all(statuses(kubectl, namespace, h) == {1: "deployed"} for h in ("rel01", "rel10", "rel20"))
    leases = json.loads(kubectl("-n", namespace, "get", "leases", "-o", "json").stdout)["items"]
    assert leases == [], [lease["metadata"]["name"] for lease in leases]
    reliability.note(releases=RELEASES, forks=FORKS, install_seconds=first_seconds, rerun_seconds=again_seconds)


# ---- reading while another run writes ---------------------------------------------------------


def check_snapshot(snapshot: dict[str, t.Any], previous_revision: int) -> None:
    assert not snapshot.get("failed"), snapshot.get("msg")
    assert snapshot["exists"] is True
    release = snapshot["release"]
    assert snapshot["release_status"] in STATUSES and snapshot["release_status"] == release["status"]
    assert release["revision"] >= previous_revision, (release["revision"], previous_revision)
    assert snapshot["revision"] == release["revision"]
    revisions = [h["revision"] for h in snapshot["history"]]
    assert revisions == list(range(1, len(revisions) + 1)), revisions  # sorted, contiguous, from 1
    assert revisions[-1] == release["revision"]
    assert all(h["status"] in STATUSES for h in snapshot["history"])
    if release["status"].startswith("pending-"):
        assert snapshot["pending"]["revision"] == release["revision"]
        assert snapshot["pending"]["status"] == release["status"] and snapshot["pending"]["stale"] is False
        assert snapshot["healthy"] is False
    else:
        assert "pending" not in snapshot


@pytest.mark.reliability("concurrency", "helm_status polled while helm_deploy upgrades with wait")
def test_status_polled_during_an_upgrade_is_always_consistent(launch, kubectl, namespace, reliability):
    launch.run("helm_deploy", deploy_args(namespace, release_values={"message": "one"}))
    upgrade = launch.start("helm_deploy", deploy_args(namespace, release_values={"message": "two"}))
    snapshots: list[dict[str, t.Any]] = []
    while upgrade.proc.poll() is None:
        snapshots.append(launch.run("helm_status", {"name": "web", "namespace": namespace}))
    snapshots.append(launch.run("helm_status", {"name": "web", "namespace": namespace}))
    upgraded = upgrade.result()
    assert not upgraded.get("failed") and upgraded["release"]["revision"] == 2, upgraded.get("msg")
    revision = 0
    for snapshot in snapshots:
        check_snapshot(snapshot, revision)
        revision = snapshot["release"]["revision"]
    final = snapshots[-1]
    assert (final["release"]["revision"], final["release_status"], final["healthy"]) == (2, "deployed", True), final["summary"]
    seen = [f"{s['release']['revision']}:{s['release_status']}" for s in snapshots]
    reliability.note(snapshots=len(snapshots), states_seen=sorted(set(seen), key=seen.index),
                     upgrade_seconds=upgraded["_seconds"])


def namespace_deployer_kubeconfig(kubectl, kubeconfig: str, namespace: str, tmp_path: Path) -> Path:
    """A ServiceAccount that may change what helm and the sample chart need in `namespace`,
    written as RBAC for helm alone: no leases."""
    import yaml

    kubectl("create", "namespace", namespace)
    kubectl("-n", namespace, "create", "serviceaccount", "deployer")
    kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "helm-only"},
        "rules": [{"apiGroups": ["", "apps", "batch", "discovery.k8s.io"], "resources": ["*"], "verbs": ["*"]}],
    }))
    kubectl("-n", namespace, "create", "rolebinding", "helm-only", "--role=helm-only", f"--serviceaccount={namespace}:deployer")
    token = kubectl("-n", namespace, "create", "token", "deployer", "--duration=10m").stdout.strip()
    admin = yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"]
    path = tmp_path / "deployer.kubeconfig"
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "deployer",
        "clusters": [{"name": "local", "cluster": {"server": admin["server"], "certificate-authority": admin["certificate-authority"]}}],
        "users": [{"name": "deployer", "user": {"token": token}}],
        "contexts": [{"name": "deployer", "context": {"cluster": "local", "user": "deployer"}}],
    }))
    return path


def test_rbac_without_leases_deploys_without_the_lock_and_says_so(run_module, kubectl, kubeconfig, namespace, tmp_path):
    deployer = str(namespace_deployer_kubeconfig(kubectl, kubeconfig, namespace, tmp_path))
    args = deploy_args(namespace, kubeconfig=deployer, create_namespace=False, release_values={"message": "no lease"})
    done = run_module("helm_deploy", args)
    assert done["changed"] is True and done["release"]["status"] == "deployed"
    # ansible-core 2.19 returns warnings as structured events when a module runs by itself.
    assert "ran without its lock: the identity may not create leases" in json.dumps(done.get("warnings")), done.get("warnings")
    assert configmap(kubectl, namespace)["MESSAGE"] == "no lease"
    again = run_module("helm_deploy", args)
    assert again["changed"] is False
    rolled = run_module("helm_rollback", {"name": "web", "namespace": namespace, "kubeconfig": deployer, "revision": 1})
    assert rolled["changed"] is False  # already at revision 1's content
