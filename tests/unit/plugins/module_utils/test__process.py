# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _process
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    ROLLOUT_FAILED,
    TIMEOUT,
    EngineError,
    HelmError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import ProcessTimeout, run_process


# ---- run_process: real processes ---------------------------------------------------------

SIGNALS = (signal.SIGTERM, signal.SIGINT)
IGNORE_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "time.sleep(30)\n"
)


@pytest.fixture
def started(monkeypatch):
    """The Popen objects run_process creates, to check how each process ended."""
    processes: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        processes.append(process)
        return process

    monkeypatch.setattr(_process.subprocess, "Popen", popen)
    return processes


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_run_process_returns_rc_and_output():
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    assert run_process(["printf", "%s\\n", "hello"], deadline=10) == (0, "hello\n", "")
    assert run_process([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"], deadline=10) == (
        3, "", "boom",
    )
    # No stdin: a process that reads it ends at once instead of waiting for input.
    assert run_process(["cat"], deadline=10) == (0, "", "")
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers


def test_run_process_runs_in_the_given_environment(monkeypatch):
    monkeypatch.setenv("HELM_ENGINE_PROBE", "inherited")
    script = "import os; print(os.environ.get('HELM_ENGINE_PROBE'), os.environ.get('GOGC'))"
    assert run_process([sys.executable, "-c", script], deadline=10)[1].split() == ["inherited", "None"]
    rc, out, _ = run_process([sys.executable, "-c", script], deadline=10, env={"GOGC": "400"})
    assert (rc, out.split()) == (0, ["None", "400"])


def test_run_process_stops_a_process_past_its_deadline(started):
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    begin = time.monotonic()
    with pytest.raises(EngineError) as caught:
        run_process(["sleep", "30"], deadline=0.5, grace=0.5)
    elapsed = time.monotonic() - begin
    assert caught.value.kind == TIMEOUT
    assert caught.value.details == {"deadline_seconds": 0.5}
    assert 0.5 <= elapsed < 2.0
    [process] = started
    assert process.returncode == -signal.SIGTERM  # SIGTERM was enough
    assert group_is_gone(process.pid)
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers


def test_run_process_kills_a_process_that_ignores_sigterm(started):
    begin = time.monotonic()
    with pytest.raises(EngineError) as caught:
        run_process([sys.executable, "-c", IGNORE_SIGTERM], deadline=1.5, grace=0.5)
    elapsed = time.monotonic() - begin
    assert caught.value.kind == TIMEOUT
    [process] = started
    assert process.returncode == -signal.SIGKILL
    assert 2.0 <= elapsed < 4.0
    assert group_is_gone(process.pid)


# Like helm with --atomic: on SIGTERM it rolls back (takes a moment), then exits 1.
ROLLS_BACK_ON_SIGTERM = (
    "import signal, sys, time\n"
    "def cancelled(*_):\n"
    "    time.sleep(0.5)\n"
    "    sys.stderr.write('UPGRADE FAILED: rolled back: context canceled')\n"
    "    sys.exit(1)\n"
    "signal.signal(signal.SIGTERM, cancelled)\n"
    "time.sleep(30)\n"
)


def test_a_monitor_that_reports_a_failure_ends_helm_gently(started):
    calls = []

    def monitor():
        calls.append(time.monotonic())
        return HelmError(ROLLOUT_FAILED, "doomed") if len(calls) == 2 else None

    begin = time.monotonic()
    with pytest.raises(EngineError) as caught:
        run_process([sys.executable, "-c", ROLLS_BACK_ON_SIGTERM], deadline=60, grace=0.2, monitor=monitor,
                    monitor_interval=0.2)
    elapsed = time.monotonic() - begin
    assert caught.value.kind == ROLLOUT_FAILED and caught.value.msg == "doomed"
    # SIGTERM, then helm's own time to roll back: longer than the grace, far less than the deadline.
    assert caught.value.stderr == "UPGRADE FAILED: rolled back: context canceled"
    assert caught.value.rc == 1
    assert len(calls) == 2 and 0.8 <= elapsed < 5
    [process] = started
    assert process.returncode == 1 and group_is_gone(process.pid)


def test_a_quiet_monitor_changes_nothing():
    calls = []
    rc, out, _err = run_process([sys.executable, "-c", "import time; time.sleep(0.5); print('done')"], deadline=10,
                                monitor=lambda: calls.append(1), monitor_interval=0.1)
    assert (rc, out) == (0, "done\n") and len(calls) >= 2


def test_the_deadline_holds_with_a_monitor(started):
    with pytest.raises(EngineError) as caught:
        run_process(["sleep", "30"], deadline=0.6, grace=0.5, monitor=lambda: None, monitor_interval=0.2)
    assert caught.value.kind == TIMEOUT


def test_run_process_leaves_a_missing_program_to_its_caller(tmp_path):
    """The runner does not know what the program is for: an OSError reaches the caller (the
    helm client turns it into helm_missing, see test__helm.py)."""
    with pytest.raises(FileNotFoundError):
        run_process([str(tmp_path / "no-such-program"), "version"], deadline=10)


def test_a_timeout_names_the_program_that_did_not_finish(started):
    with pytest.raises(ProcessTimeout) as caught:
        run_process(["sleep", "30"], deadline=0.3, grace=0.5)
    assert caught.value.msg.startswith("sleep did not finish within 0s")


def test_stdout_abandoned_once_a_pipe_has_no_reader(tmp_path):
    read_end, write_end = os.pipe()
    try:
        assert _process.stdout_abandoned(write_end) is False
        os.close(read_end)
        assert _process.stdout_abandoned(write_end) is True
    finally:
        os.close(write_end)


def test_stdout_abandoned_once_a_socket_peer_is_gone():
    ours, theirs = socket.socketpair()
    with ours:
        assert _process.stdout_abandoned(ours.fileno()) is False
        theirs.close()
        assert _process.stdout_abandoned(ours.fileno()) is True


def test_stdout_is_never_abandoned_when_it_is_a_file_or_dev_null_or_closed(tmp_path):
    with open(tmp_path / "out", "w") as file, open(os.devnull, "w") as devnull:
        assert _process.stdout_abandoned(file.fileno()) is False
        assert _process.stdout_abandoned(devnull.fileno()) is False
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    assert _process.stdout_abandoned(write_end) is False  # a closed fd is no evidence


def test_run_process_starts_nothing_once_abandoned(started):
    with pytest.raises(SystemExit) as caught:
        run_process(["sleep", "30"], deadline=10, abandoned=lambda: True)
    assert caught.value.code == 128 + signal.SIGPIPE
    assert started == []


def test_run_process_stops_the_process_when_abandoned_mid_run(started):
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    checks = []

    def abandoned() -> bool:
        checks.append(time.monotonic())
        return len(checks) > 3  # the check before the start, then two polls, then gone

    begin = time.monotonic()
    with pytest.raises(SystemExit) as caught:
        run_process(["sleep", "30"], deadline=60, grace=2, abandoned=abandoned, poll=0.1)
    assert caught.value.code == 128 + signal.SIGPIPE
    assert time.monotonic() - begin < 2.0
    [process] = started
    assert process.returncode == -signal.SIGTERM  # SIGTERM (helm marks the release failed), not SIGKILL
    assert group_is_gone(process.pid)
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers


def test_run_process_watches_for_abandonment_and_the_monitor_together(started):
    looks = []

    def monitor():
        looks.append(time.monotonic())
        return None

    checks = []

    def abandoned() -> bool:
        checks.append(time.monotonic())
        return time.monotonic() - checks[0] > 0.5

    with pytest.raises(SystemExit):
        run_process(["sleep", "30"], deadline=60, grace=2, monitor=monitor, monitor_interval=0.2,
                    abandoned=abandoned, poll=0.05)
    assert 1 <= len(looks) <= 3  # every monitor_interval, not at every abandonment check
    assert len(checks) > len(looks)
    assert started[0].returncode == -signal.SIGTERM and group_is_gone(started[0].pid)


def test_run_process_keeps_the_deadline_while_polling(started):
    with pytest.raises(EngineError) as caught:
        run_process(["sleep", "30"], deadline=0.35, grace=0.5, abandoned=lambda: False, poll=0.1)
    assert caught.value.kind == TIMEOUT
    assert started[0].returncode == -signal.SIGTERM


ORPHANED_MODULE = """
import sys
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import run_process
run_process([sys.executable, "-c", sys.argv[1]], deadline=60, grace=5, poll=0.2)
"""
FAKE_HELM = """
import os, signal, sys, time
def term(signum, frame):
    open(os.environ["MARK"], "a").write("SIGTERM")
    sys.exit(1)
signal.signal(signal.SIGTERM, term)
open(os.environ["MARK"], "w").write(str(os.getpid()) + " ")
time.sleep(30)
"""


def test_a_module_whose_reader_exits_sigterms_helm_and_exits(tmp_path):
    """What a task timeout does under ansible-core 2.19: the worker that reads the module's
    stdout exits without a signal. The module must notice, SIGTERM helm and end."""
    mark = tmp_path / "mark"
    root = str(Path(_process.__file__).parents[5])
    env = dict(os.environ, MARK=str(mark), PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    module = subprocess.Popen([sys.executable, "-c", ORPHANED_MODULE, FAKE_HELM], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 20
    while not mark.exists() or not mark.read_text().strip():
        assert module.poll() is None and time.monotonic() < deadline, "the fake helm never started"
        time.sleep(0.05)
    helm_pid = int(mark.read_text().split()[0])
    module.stdout.close()  # the reader is gone
    begin = time.monotonic()
    assert module.wait(timeout=10) == 128 + signal.SIGPIPE
    assert time.monotonic() - begin < 3.0
    assert mark.read_text().endswith("SIGTERM")
    assert group_is_gone(helm_pid)


FAKE_ANSIBLE_PLAYBOOK = """
import os, subprocess, sys, time
worker = os.fork()
if worker == 0:  # the worker: a fork of ansible-playbook that leads its own session
    os.setsid()
    module = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)
    module.communicate()  # it keeps reading the module whatever happens to ansible-playbook
    os._exit(0)
time.sleep(60)
"""


def test_a_module_whose_ansible_playbook_was_sigkilled_sigterms_helm_and_exits(tmp_path):
    """ansible-playbook SIGKILLed: its worker survives and still reads the module's stdout, but
    the worker's parent is gone. The module must notice that too, SIGTERM helm and end."""
    mark = tmp_path / "mark"
    script = tmp_path / "module.py"
    script.write_text(ORPHANED_MODULE)
    root = str(Path(_process.__file__).parents[5])
    env = dict(os.environ, MARK=str(mark), PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    fake = tmp_path / "bin" / "ansible-playbook"
    fake.parent.mkdir()
    fake.write_text(FAKE_ANSIBLE_PLAYBOOK)
    main = subprocess.Popen([sys.executable, str(fake), str(script), FAKE_HELM],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 20
        while not mark.exists() or not mark.read_text().strip():
            assert main.poll() is None and time.monotonic() < deadline, "the fake helm never started"
            time.sleep(0.05)
        helm_pid = int(mark.read_text().split()[0])
        time.sleep(1.0)  # several polls with ansible-playbook alive: nothing happens
        assert not mark.read_text().endswith("SIGTERM") and not group_is_gone(helm_pid)
        main.kill()
        main.wait()
        deadline = time.monotonic() + 5
        while not group_is_gone(helm_pid):
            assert time.monotonic() < deadline, "helm outlived its ansible-playbook"
            time.sleep(0.05)
        assert mark.read_text().endswith("SIGTERM")
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()


def test_ansible_worker_is_the_session_leader_forked_from_ansible_playbook(tmp_path):
    """The marker is found only when the session leader and its parent share a command line
    naming ansible; this test process runs under no ansible worker."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import json, os, sys\n"
        "from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import ansible_worker\n"
        "sys.stdout.write(json.dumps([ansible_worker(), os.getsid(0), os.getppid()]))\n")
    root = str(Path(_process.__file__).parents[5])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    fork_and_probe = (
        "import os, subprocess, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    sys.stdout.write(subprocess.run([sys.executable, sys.argv[1]], capture_output=True, text=True).stdout)\n"
        "    sys.stdout.flush()\n"
        "    os._exit(0)\n"
        "os.wait()\n"
    )
    (tmp_path / "bin").mkdir()
    found = {}
    for name in ("ansible-playbook", "some-other-tool"):
        (tmp_path / "bin" / name).write_text(fork_and_probe)
        out = subprocess.run([sys.executable, str(tmp_path / "bin" / name), str(script)], capture_output=True,
                             text=True, env=env, check=True).stdout
        found[name] = json.loads(out)
    worker, sid, parent = found["ansible-playbook"]
    assert worker is not None and worker[0] == sid == parent
    assert found["some-other-tool"][0] is None


def test_a_worker_thread_runs_a_process_without_touching_signal_handlers():
    import threading

    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    results = []
    worker = threading.Thread(target=lambda: results.append(run_process(["printf", "ok"], deadline=10)))
    worker.start()
    worker.join()
    assert results == [(0, "ok", "")]
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers


def test_a_signal_to_the_main_thread_ends_the_processes_of_worker_threads(started):
    import threading

    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import ending_children_on_signal

    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    errors = []

    def work():
        try:
            run_process(["sleep", "30"], deadline=60, abandoned=lambda: False)
        except BaseException as exc:  # noqa: B902 - whatever ends it, it must end
            errors.append(exc)

    with pytest.raises(SystemExit) as caught:
        with ending_children_on_signal(grace=0.5):
            worker = threading.Thread(target=work)
            worker.start()
            deadline = time.monotonic() + 5
            while not started and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
    assert caught.value.code == 128 + signal.SIGTERM
    worker.join(timeout=5)
    [process] = started
    assert process.returncode == -signal.SIGTERM and group_is_gone(process.pid)
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers
