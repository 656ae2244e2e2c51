# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Runs one program to its end, or stops it: no shell, no stdin, a deadline, a monitor.

Knows nothing of helm: what the program is for, and what its failures mean, is the caller's.
What it does know is how a module process is abandoned by ansible-core (a task timeout, a
SIGKILLed ansible-playbook) without a signal, so that no child outlives its task.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import stat
import subprocess
import threading
import time
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import TIMEOUT, EngineError

TERM_GRACE = 10.0
# The children running now, whichever thread started them (see ending_children_on_signal).
_RUNNING: set[subprocess.Popen] = set()
_RUNNING_LOCK = threading.Lock()
MONITOR_INTERVAL = 2.0  # seconds between two looks at a rollout while the process waits
# How often a running process's caller checks that someone still reads its result.
ABANDON_POLL = 1.0


# (argv, deadline=seconds, monitor=None) -> (rc, stdout, stderr); raises ProcessTimeout past the
# deadline, or the monitor's error once it reports one.
Runner = t.Callable[..., t.Tuple[int, str, str]]
# Called every MONITOR_INTERVAL while the process runs; an error it returns ends the process
# (see run_process).
Monitor = t.Callable[[], t.Optional[EngineError]]


class ProcessTimeout(EngineError):
    """A process did not finish within its deadline and was stopped."""

    def __init__(self, program: str, deadline: float, grace: float, stderr: str) -> None:
        super().__init__(
            TIMEOUT,
            f"{program} did not finish within {deadline:.0f}s and was stopped (SIGTERM, then SIGKILL after {grace:.0f}s).",
            stderr=stderr,
            details={"deadline_seconds": deadline},
        )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The child gets SIGTERM if the module process dies (SIGKILL from a task timeout included),
    so no child outlives its task. Linux only; elsewhere the deadline still bounds it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def stdout_abandoned(fd: int = 1) -> bool:
    """True once nothing can read this process's standard output any more.

    ansible-core (2.19, local connection) does not signal a module whose task hits its
    ``timeout:`` keyword: the worker process raises in its ``communicate()`` and exits, and the
    module (``sh -c`` -> python -> helm, reparented to init) would run on to helm's own
    ``--timeout``. The worker held the only read end of the module's stdout pipe, so its exit
    is visible here without writing anything: poll() reports POLLERR on a pipe's write end that
    has no reader left (POLLHUP on a socket whose peer is gone). A file, a tty or /dev/null
    never counts as abandoned."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return False
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are reported without being asked for
    return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return None


def ansible_worker(pid: int | None = None) -> tuple[int, int] | None:
    """(worker, its parent) when the process ``pid`` (this one) runs under an ansible worker.

    An ansible worker is a fork of ansible-playbook (same command line) that calls setsid(), so
    it leads the session of the modules it starts through the local connection. None when the
    session leader is not such a fork (ssh, become, a module run by hand, a test)."""
    pid = pid or os.getpid()
    try:
        leader = os.getsid(pid)
    except OSError:
        return None
    parent = _parent_pid(leader)
    command = _cmdline(leader)
    if leader == pid or not parent or not command or _cmdline(parent) != command:
        return None
    # python3 /usr/bin/ansible-playbook ... (or ansible, ansible-console, ansible-pull's playbook)
    if not any(os.path.basename(arg).startswith(b"ansible") for arg in command.split(b"\0")[:2]):
        return None
    return leader, parent


_UNSET: t.Any = object()
_worker: t.Any = _UNSET


def run_abandoned() -> bool:
    """True once nobody will read this module's result: its stdout has no reader (a task
    timeout: the worker exited), or the ansible worker that started it lost its ansible-playbook
    (SIGKILLed: the worker lives on, reading the module, but can report to no one). The worker
    is looked up once, on the first call, while its ansible-playbook is expected alive."""
    global _worker
    if stdout_abandoned():
        return True
    if _worker is _UNSET:
        _worker = ansible_worker()
    return _worker is not None and _parent_pid(_worker[0]) != _worker[1]


def run_process(argv: list[str], *, deadline: float, grace: float = TERM_GRACE, monitor: Monitor | None = None,
                monitor_interval: float = MONITOR_INTERVAL, abandoned: t.Callable[[], bool] = run_abandoned,
                poll: float = ABANDON_POLL, env: t.Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """Runs argv with no shell and no stdin, bounded by ``deadline`` seconds, in ``env`` (this
    process's environment when None).

    Past the deadline its whole process group gets SIGTERM (so it can record its own failure;
    helm marks the release failed), and SIGKILL ``grace`` seconds later: ``ProcessTimeout``.
    A SIGTERM/SIGINT to this process is passed on to the child the same way before this
    process ends, and so is the moment nobody will read this process's result any more
    (``abandoned``, checked every ``poll`` seconds: a task timeout or a SIGKILLed
    ansible-playbook abandons the module without a signal); this process then exits, and
    starts nothing once abandoned.

    ``monitor`` is asked every ``monitor_interval`` seconds whether the operation can still
    succeed. When it returns an error, the child gets SIGTERM and the rest of the deadline to
    end (helm with --atomic / --rollback-on-failure rolls back in that time). The monitor's
    error is raised, with the child's stderr and exit code."""
    if abandoned():
        raise SystemExit(128 + signal.SIGPIPE)  # nobody would read the result: start nothing
    # An OSError (no such program, not executable) reaches the caller, which knows what the
    # program is for.
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_die_with_parent,
        env=None if env is None else dict(env),
    )

    def stop(signum: int, _frame: t.Any) -> None:
        _terminate(proc, grace)
        raise SystemExit(128 + signum)

    # Signal handlers belong to the main thread; a process started by another thread (several
    # releases at once) is ended by the main thread's handler, see ending_children_on_signal.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)} if in_main_thread else {}
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        out, err = _communicate(proc, deadline, grace, monitor, monitor_interval, abandoned, poll)
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


@contextlib.contextmanager
def ending_children_on_signal(grace: float = TERM_GRACE) -> t.Iterator[None]:
    """In the main thread, while other threads run processes: a SIGTERM/SIGINT to this process
    passes SIGTERM on to every running child (SIGKILL after ``grace``), then ends this process."""

    def stop(signum: int, _frame: t.Any) -> None:
        with _RUNNING_LOCK:
            running = list(_RUNNING)
        # Signals and waits only: the threads that started them still read their pipes.
        for proc in running:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in running:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _communicate(proc: subprocess.Popen, deadline: float, grace: float, monitor: Monitor | None,
                 interval: float, abandoned: t.Callable[[], bool], poll: float) -> tuple[bytes, bytes]:
    end = time.monotonic() + deadline
    next_look = time.monotonic() + interval
    step = min(poll, interval) if monitor else poll
    while True:
        remaining = end - time.monotonic()
        try:
            # communicate() may be called again after a timeout: nothing read so far is lost.
            return proc.communicate(timeout=max(min(step, remaining), 0))
        except subprocess.TimeoutExpired:
            pass
        if abandoned():
            _terminate(proc, grace)
            raise SystemExit(128 + signal.SIGPIPE) from None
        if time.monotonic() >= end:
            _out, err = _terminate(proc, grace)
            program = os.path.basename(str(proc.args[0])) if isinstance(proc.args, list) else str(proc.args)
            raise ProcessTimeout(program, deadline, grace, (err or b"").decode("utf-8", "replace")[-4000:]) from None
        if monitor is None or time.monotonic() < next_look:
            continue
        next_look = time.monotonic() + interval
        failure = monitor()
        if failure is not None:
            # The rest of the deadline, not the grace: an atomic rollback runs after the SIGTERM.
            out, err = _terminate(proc, max(end - time.monotonic(), grace))
            failure.stderr = (err or b"").decode("utf-8", "replace")[-4000:]
            failure.rc = proc.returncode
            raise failure


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _terminate(proc: subprocess.Popen, grace: float) -> tuple[bytes, bytes]:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return b"", b""  # pragma: no cover - communicate() without a timeout returns
