# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Interrupted operations, produced for real on the local cluster, are recovered with nothing lost.

Every case makes helm wait on pods that never become Ready (the chart's notReady value, a kwok
marker) and interrupts it there: a plain helm install SIGKILLed, an Ansible task that hits its
``timeout:`` keyword, ansible-playbook itself SIGKILLed (plain task, then the role), and a
rollback whose module and helm are SIGKILLed. test_behaviour_recovery.py covers the SIGKILLed
upgrade.

What ansible-core 2.19 does, observed here: on a task timeout the worker raises inside the local
connection's ``communicate()`` and exits without signalling the module (``sh -c`` -> python ->
helm is reparented to init). When ansible-playbook is SIGKILLed, its worker survives, still
reading the module's stdout, and nothing signals the module either. Without help, helm would
wait on to its own ``--timeout`` holding the release pending; the module notices both (no
reader on its stdout; the worker that leads its session lost its ansible-playbook) and SIGTERMs
helm, which records the revision failed itself.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
from conftest import COLLECTIONS, ModuleRunner, module_path, run_playbook
from reliability_log import history_snapshot
from test_audit_log import audit_env, deploy_task, play, read_log, results
from test_behaviour_recovery import release_statuses
from test_helm_deploy import SAMPLE, configmap, deploy_args

ROLE = "ai_mesh.helm_engine.helm_release"


def wait_until(predicate: t.Callable[[], t.Any], timeout: float, what: str, *, alive: subprocess.Popen | None = None) -> t.Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None:
            assert alive.poll() is None, f"ended (rc={alive.returncode}) before {what}"
        assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what}"
        time.sleep(0.2)


def helm_pids(namespace: str) -> set[int]:
    """Running helm processes of this test: argv[0] is a helm binary and argv names the namespace."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and os.path.basename(argv[0]).startswith(b"helm") and any(namespace.encode() in a for a in argv):
            pids.add(int(entry.name))
    return pids


def pending(kubectl, namespace: str, revision: int, status: str) -> t.Callable[[], bool]:
    return lambda: release_statuses(kubectl, namespace).get(revision) == status


def start_playbook(text: str, tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """ansible-playbook started in the background (run_playbook's environment), to be killed."""
    path = tmp_path / "killed-playbook.yml"
    path.write_text(text)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    bindir = str(Path(sys.executable).parent)
    full_env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
                    ANSIBLE_RETRY_FILES_ENABLED="0", **env)
    full_env["PATH"] = bindir + os.pathsep + full_env.get("PATH", "")
    return subprocess.Popen([os.path.join(bindir, "ansible-playbook"), "-i", str(inventory), str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env, cwd=tmp_path)


def assert_log_verifies(log: Path, tmp_path: Path, reliability) -> None:
    """audit_verify (the module itself, without a playbook) accepts the log's whole chain."""
    runner = ModuleRunner(tmp_path, "", None)
    runner.defaults = {}
    result = runner("audit_verify", {"path": str(log) + "*"})
    assert result["ok"] is True, result
    assert result["records"] >= len(read_log_lines(log)) - len(result["breaks"]) > 0
    reliability.note(audit_records=result["records"], audit_torn_lines=len(result["breaks"]))


def read_log_lines(log: Path) -> list[bytes]:
    return [line for path in sorted(log.parent.glob(log.name + "*")) for line in path.read_bytes().splitlines()]


def role_task(name: str, helm: str, kubeconfig: str, namespace: str, **role_vars: t.Any) -> str:
    variables = dict({"helm_release_name": "web", "helm_release_namespace": namespace, "helm_release_chart_ref": SAMPLE,
                      "helm_release_binary_path": helm, "helm_release_kubeconfig": kubeconfig,
                      "helm_release_run_tests": False, "helm_release_validate_timeout": "30s"}, **role_vars)
    return f"    - name: {name}\n      ansible.builtin.include_role:\n        name: {ROLE}\n      vars: {json.dumps(variables)}\n"


@pytest.mark.reliability("interruption", "helm SIGKILLed mid-install (pending-install, no earlier revision)")
def test_sigkilled_install_is_reported_then_recovered(run_module, helm, kubeconfig, kubectl, namespace, reliability):
    before = history_snapshot(kubectl, namespace, "web")  # nothing: the install is the first revision
    proc = subprocess.Popen([helm, "install", "web", SAMPLE, "--namespace", namespace, "--create-namespace",
                             "--kubeconfig", kubeconfig, "--set", "notReady=true", "--wait", "--timeout", "120s"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(pending(kubectl, namespace, 1, "pending-install"), 30, "helm wrote pending-install", alive=proc)
    time.sleep(1)  # into the wait
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert release_statuses(kubectl, namespace) == {1: "pending-install"}

    status = run_module("helm_status", {"name": "web", "namespace": namespace})
    assert status["pending"]["operation"] == "install" and status["pending"]["revision"] == 1
    assert status["pending"]["stale"] is False and status["healthy"] is False

    time.sleep(1)
    args = deploy_args(namespace, release_values={"message": "after"}, stale_pending_after=1)
    real = run_module("helm_deploy", args)
    # Never deployed, so nothing to roll back to: the stuck install is uninstalled, then installed.
    assert real["recovery"]["stuck_status"] == "pending-install" and real["recovery"]["action"] == "uninstall"
    assert real["recovery"]["performed"] is True
    assert real["changed"] is True and real["action"] == "install"
    assert real["release"]["status"] == "deployed" and real["release"]["revision"] == 1
    assert configmap(kubectl, namespace)["MESSAGE"] == "after"
    assert release_statuses(kubectl, namespace) == {1: "deployed"}
    again = run_module("helm_deploy", args)
    assert again["changed"] is False and again["action"] == "none" and "recovery" not in again
    reliability.note(recovery_action=real["recovery"]["action"])
    reliability.check_nothing_lost(kubectl, namespace, "web", before)


@pytest.mark.reliability("interruption", "Ansible task timeout mid-upgrade (helm must get SIGTERM, not survive)")
def test_task_timeout_mid_upgrade_sigterms_helm(run_module, helm, kubeconfig, kubectl, namespace, reliability, tmp_path):
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "before"}))
    before = history_snapshot(kubectl, namespace, "web")
    log = tmp_path / "audit" / "audit.log"
    # The task must time out while helm waits. Before it, the module renders (a server-side dry
    # run), as check mode does: the timeout is sized from a check run, which takes far longer on
    # a loaded machine. A timeout that still strikes first is retried longer, after checking that
    # the abandoned module started no upgrade and left no helm.
    stuck = {"message": "stuck", "notReady": True}
    begin = time.monotonic()
    check = run_module("helm_deploy", deploy_args(namespace, release_values=stuck), check=True)
    assert check["changed"] is True and check["action"] == "upgrade"
    first = max(8, math.ceil((time.monotonic() - begin) * 1.5) + 3)
    early = []
    for task_timeout in (first, first * 2, first * 4):
        task = deploy_task("upgrade that times out", namespace, stuck, timeout="120s",
                           extra=f"      timeout: {task_timeout}\n")
        proc = run_playbook(play(kubeconfig, helm, task), tmp_path=tmp_path, env=audit_env(log))
        ended = time.monotonic()
        assert proc.returncode == 2 and f"Timed out after {task_timeout} second(s)" in proc.stdout, proc.stdout[-3000:]
        # ansible-core abandons the module silently; the module notices and SIGTERMs helm,
        # which records the revision failed itself. Nothing of this test keeps running.
        wait_until(lambda: not helm_pids(namespace), 20, "no helm process of this test is left")
        gone = time.monotonic()
        if 2 in release_statuses(kubectl, namespace):
            break
        early.append(task_timeout)
    else:
        pytest.fail("the task always timed out before helm started its upgrade")
    wait_until(pending(kubectl, namespace, 2, "failed"), 10, "helm marked revision 2 failed")
    history = run_module("helm_status", {"name": "web", "namespace": namespace})["history"]
    description = next(h["description"] for h in history if h["revision"] == 2)
    assert "abandoned" not in description, "helm itself must have recorded the failure"
    reliability.note(task_timeout_seconds=task_timeout, timed_out_before_helm_started=early,
                     helm_gone_after_playbook_seconds=round(gone - ended, 1), helm_description=description)

    real = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "after"}))
    assert real["changed"] is True and real["action"] == "upgrade"
    # No pending revision to recover; helm 3 only repairs the failed one (rolls back to 1 first).
    assert real.get("recovery", {"stuck_status": "failed"})["stuck_status"] == "failed", real["recovery"]
    assert real["release"]["status"] == "deployed"
    assert configmap(kubectl, namespace)["MESSAGE"] == "after"
    again = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "after"}))
    assert again["changed"] is False
    reliability.check_nothing_lost(kubectl, namespace, "web", before)
    failed = [r for r in results(log) if r["status"] == "failed"]
    assert len(failed) == len(early) + 1 and all(r["module"].endswith("helm_deploy") for r in failed), failed
    assert_log_verifies(log, tmp_path, reliability)


def kill_playbook_while_helm_waits(text: str, tmp_path: Path, log: Path, kubectl, namespace: str,
                                   reliability) -> None:
    """Runs the playbook until its upgrade waits (pending-upgrade), SIGKILLs ansible-playbook,
    and waits for the helm it orphaned to end, well before helm's own --timeout (120s)."""
    proc = start_playbook(text, tmp_path, audit_env(log))
    wait_until(pending(kubectl, namespace, 2, "pending-upgrade"), 90, "helm wrote pending-upgrade", alive=proc)
    time.sleep(1)  # into the wait
    orphans = helm_pids(namespace)
    assert orphans, "no helm waits on the upgrade"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    # The worker outlives ansible-playbook and still reads the module; the module notices the
    # worker lost its ansible-playbook and SIGTERMs helm, which records the failure itself.
    wait_until(lambda: not (orphans & helm_pids(namespace)), 15, "the orphaned helm ended")
    reliability.note(orphan_helm_seconds_after_kill=round(time.monotonic() - killed, 1), helm_timeout_seconds=120)
    wait_until(pending(kubectl, namespace, 2, "failed"), 10, "helm marked revision 2 failed")


@pytest.mark.reliability("interruption", "ansible-playbook SIGKILLed while helm_deploy waits")
def test_sigkilled_playbook_mid_deploy_then_next_run_converges(run_module, helm, kubeconfig, kubectl, namespace,
                                                              reliability, tmp_path):
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "before"}))
    before = history_snapshot(kubectl, namespace, "web")
    log = tmp_path / "audit" / "audit.log"
    task = deploy_task("upgrade killed", namespace, {"message": "stuck", "notReady": True}, timeout="120s")
    kill_playbook_while_helm_waits(play(kubeconfig, helm, task), tmp_path, log, kubectl, namespace, reliability)

    real = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "after"}, lock_wait=30))
    assert real["changed"] is True and real["action"] == "upgrade"
    assert real.get("recovery", {"stuck_status": "failed"})["stuck_status"] == "failed", real["recovery"]
    statuses = release_statuses(kubectl, namespace)
    assert statuses[2] == "failed" and statuses[max(statuses)] == "deployed", statuses
    assert configmap(kubectl, namespace)["MESSAGE"] == "after"
    # The killed run's log ends with the start of the task it never finished, and still verifies.
    events = [r["event"] for r in read_log(log)]
    assert events[-1] == "task_start" and "playbook_end" not in events, events
    assert not helm_pids(namespace)
    reliability.check_nothing_lost(kubectl, namespace, "web", before)
    assert_log_verifies(log, tmp_path, reliability)


@pytest.mark.reliability("interruption", "ansible-playbook SIGKILLed while the helm_release role's deploy waits")
def test_sigkilled_playbook_mid_role_then_next_role_run_converges(run_module, helm, kubeconfig, kubectl, namespace,
                                                                 reliability, tmp_path):
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "before"}))
    before = history_snapshot(kubectl, namespace, "web")
    log = tmp_path / "audit" / "audit.log"
    broken = role_task("role killed", helm, kubeconfig, namespace, helm_release_wait=True, helm_release_timeout="120s",
                       helm_release_preflight=False, helm_release_values={"message": "stuck", "notReady": True})
    # The role's rescue (its rollback handler) dies with ansible-playbook.
    kill_playbook_while_helm_waits(play(kubeconfig, helm, broken), tmp_path, log, kubectl, namespace, reliability)

    good = role_task("role again", helm, kubeconfig, namespace, helm_release_values={"message": "after"})
    again = run_playbook(play(kubeconfig, helm, good), tmp_path=tmp_path, env=audit_env(log))
    assert again.returncode == 0, again.stdout[-4000:]
    deploys = [r for r in results(log) if r["module"].endswith("helm_deploy")]
    assert deploys[-1]["status"] == "changed" and deploys[-1]["action"] == "upgrade", deploys[-1]
    statuses = release_statuses(kubectl, namespace)
    assert statuses[2] == "failed" and statuses[max(statuses)] == "deployed", statuses
    assert configmap(kubectl, namespace)["MESSAGE"] == "after"
    assert not helm_pids(namespace)
    reliability.check_nothing_lost(kubectl, namespace, "web", before)
    assert_log_verifies(log, tmp_path, reliability)


def start_module(tmp_path: Path, module: str, args: dict[str, t.Any]) -> subprocess.Popen:
    """A module run as ModuleRunner does it, in the background."""
    args_file = tmp_path / f"{module}-background.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(
        args, _ansible_check_mode=False, _ansible_diff=False, _ansible_tmpdir=str(tmp_path),
        _ansible_remote_tmp=str(tmp_path))}))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, str(module_path(module)), str(args_file)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)


@pytest.mark.reliability("interruption", "helm_rollback SIGKILLed with its helm mid-wait (pending-rollback)")
def test_sigkilled_rollback_is_recovered(run_module, helm, kubeconfig, kubectl, namespace, reliability, tmp_path):
    # Revision 1 deployed without waiting on pods that never become Ready; revision 2 is good.
    run_module("helm_deploy", deploy_args(namespace, wait=False, release_values={"message": "unready", "notReady": True}))
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "good"}))
    before = history_snapshot(kubectl, namespace, "web")
    module = start_module(tmp_path, "helm_rollback", {"name": "web", "namespace": namespace, "revision": 1, "wait": True,
                                                      "timeout": "120s", "kubeconfig": kubeconfig, "binary_path": helm})
    wait_until(pending(kubectl, namespace, 3, "pending-rollback"), 30, "helm wrote pending-rollback", alive=module)
    time.sleep(1)
    # Everything at once, as an OOM kill or a lost machine would: helm first, so its parent's
    # death cannot reach it as a SIGTERM (it would record the rollback failed).
    for pid in helm_pids(namespace):
        os.kill(pid, signal.SIGKILL)
    module.send_signal(signal.SIGKILL)
    module.wait()
    wait_until(lambda: not helm_pids(namespace), 5, "helm is gone")
    assert release_statuses(kubectl, namespace) == {1: "superseded", 2: "deployed", 3: "pending-rollback"}

    time.sleep(1)
    args = {"name": "web", "namespace": namespace, "revision": 1, "stale_pending_after": 1}
    real = run_module("helm_rollback", args)
    assert real["changed"] is True and real["action"] == "rollback"
    assert real["recovery"]["stuck_status"] == "pending-rollback" and real["recovery"]["performed"] is True
    assert real["to_revision"] == 1
    statuses = release_statuses(kubectl, namespace)
    assert statuses[3] == "failed" and statuses[max(statuses)] == "deployed" and max(statuses) == 4, statuses
    assert configmap(kubectl, namespace)["MESSAGE"] == "unready"
    again = run_module("helm_rollback", args)
    assert again["changed"] is False and "recovery" not in again
    reliability.check_nothing_lost(kubectl, namespace, "web", before)
