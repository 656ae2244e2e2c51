# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The one helm client: every helm process of the collection is built and run here.

It builds argv lists (never shell strings), detects the helm major once, chooses every
version-dependent flag in one place, parses ``-o json``, classifies failures into stable error
kinds and redacts secrets from everything it echoes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CHART_INVALID,
    CHART_NOT_FOUND,
    CLUSTER_UNREACHABLE,
    FORBIDDEN,
    HELM_FAILED,
    HELM_MISSING,
    HELM_OUTPUT,
    HELM_UNSUPPORTED,
    HOOK_FAILED,
    INVALID_ARGUMENTS,
    INVALID_VALUES,
    REGISTRY_UNREACHABLE,
    RELEASE_LOCKED,
    RELEASE_NOT_FOUND,
    RENDER_FAILED,
    RESOURCE_CONFLICT,
    ROLLOUT_FAILED,
    TIMEOUT,
    UNAUTHORIZED,
    HelmError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._inputs import INPUTS_LABEL
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor

# Oldest helm 3 with --dry-run=server and -o json on upgrade.
MIN_HELM3 = (3, 13, 0)

# helm's --timeout bounds each Kubernetes operation (pre hooks, the wait, post hooks), not the
# whole command (helm docs: "time to wait for any individual Kubernetes operation"). A helm
# process may therefore legitimately run about three timeouts; past that, plus a margin, it
# is hung, and is ended: SIGTERM first (helm marks the release failed), SIGKILL after a grace.
DEFAULT_HELM_TIMEOUT = 300.0  # helm's own --timeout default
DEADLINE_FACTOR = 3
DEADLINE_MARGIN = 30.0
VERSION_DEADLINE = 5.0  # `helm version` touches neither network nor cluster: it answers in well under 1 s
TERM_GRACE = 10.0
MONITOR_INTERVAL = 2.0  # seconds between two looks at a rollout while helm waits
# How often a running helm's caller checks that someone still reads its result.
ABANDON_POLL = 1.0

# Ordered: the first pattern that matches names the kind. Specific causes come before the
# generic symptoms they produce (a failed hook often ends in a deadline too; a chart registry
# that cannot be reached says "dial tcp" like an unreachable cluster).
# helm's own flag parser refusing a value we passed through (a post-renderer that does not
# exist): the input is wrong, not helm; the flag names the option (--post-renderer -> post_renderer).
_FLAG_REFUSED = re.compile(r'invalid argument "[^"]*" for "--([\w-]+)" flag')

_ERROR_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (INVALID_ARGUMENTS, _FLAG_REFUSED),
    # Another run got there first: its revision is pending, or it created the revision Secret
    # this helm was about to create (storage AlreadyExists), or its install made the name taken.
    (RELEASE_LOCKED, re.compile(
        r"another operation \(install/upgrade/rollback\) is in progress|(^|: )release: already exists|"
        r"cannot re-use a name that is still in use",
        re.I | re.M)),
    (HOOK_FAILED, re.compile(
        r"(pre|post)-(install|upgrade|rollback|delete) hooks? failed|hook execution failed|failed (pre|post)-\w+|"
        r"job .* failed|BackoffLimitExceeded|DeadlineExceeded.*job",
        re.I)),
    # helm 4's kstatus waiter reporting a workload that failed for good (a Deployment past its
    # progress deadline), after hooks: the same verdict fail-fast gives, reached by helm first.
    (ROLLOUT_FAILED, re.compile(r"not ready\. status: Failed, message: ", re.I)),
    (REGISTRY_UNREACHABLE, re.compile(
        r"is not a valid chart repository or cannot be reached|failed to do request: \w+ \"[^\"]*\"|"
        r"(Get|Head|Post) \"[^\"]*(/v2/|index\.yaml|\.tgz)[^\"]*\": (dial tcp|.*connection refused|.*no such host|.*i/o timeout|.*tls:|.*x509)",
        re.I)),
    (CHART_INVALID, re.compile(
        r"cannot load Chart\.yaml|Chart\.yaml file is missing|validation: chart\.metadata|chart\.metadata\.\w+ is required|"
        r"apiVersion is required in Chart\.yaml|chart metadata \(Chart\.yaml\) missing|invalid chart \(|"
        r"found in Chart\.yaml, but missing in charts/ directory|cannot load values\.yaml|values\.schema\.json.*(invalid|unmarshal)|"
        r"does not appear to be a gzipped archive|unable to detect chart at .*Chart\.yaml: no such file",
        re.I)),
    (UNAUTHORIZED, re.compile(
        r"\bUnauthorized\b|must be logged in|provide credentials|invalid bearer token|"
        r"x509: certificate signed by unknown authority|tls: failed to verify certificate|invalid username/password|"
        r"authentication required|basic credential not found",
        re.I)),
    (FORBIDDEN, re.compile(r"\bis forbidden\b|\bforbidden:|\(Forbidden\)", re.I)),
    (CLUSTER_UNREACHABLE, re.compile(
        r"Kubernetes cluster unreachable|connection refused|no such host|dial tcp|i/o timeout|"
        r"connect: network is unreachable|no route to host|"
        r"the server could not find the requested resource \(get namespaces\)|unsupported protocol scheme|"
        r"the server has asked for the client to provide credentials|http: server gave HTTP response to HTTPS client|"
        r"connection reset by peer",
        re.I)),
    (RELEASE_NOT_FOUND, re.compile(r"release: not found|has no deployed releases|release .* not found", re.I)),
    (CHART_NOT_FOUND, re.compile(
        r"chart .*not found|failed to download|no chart (name|version) found|path \".*\" not found|repo .* not found|"
        r"could not find protocol handler|no such file or directory.*(chart|\.tgz)|not found.*manifest|"
        r"unable to locate chart|: not found$|manifest unknown|name unknown|invalid_reference|no matching version|"
        # An OCI chart_version constraint that no tag satisfies (helm 3 "Could", helm 4 "could").
        r"could not locate a version matching",
        re.I | re.M)),
    (RENDER_FAILED, re.compile(
        r"parse error at|template: .*: (executing|function)|execution error at|YAML parse error|"
        r"unable to build kubernetes objects|error validating data|error validating \"\"|field not declared in schema|"
        r"unknown field|executing \".*\" at <|can't evaluate field|nil pointer evaluating|unable to decode \"\"|"
        r"error converting YAML to JSON.*templates/|function \".*\" not defined",
        re.I)),
    (INVALID_VALUES, re.compile(
        r"values don't meet the specifications of the schema|failed parsing --set|failed parsing --set-\w+|"
        r"error converting YAML to JSON|cannot unmarshal|failed to parse .*values|key .* has no value|"
        r"unable to parse .*values|error reading .*values|at '/[^']*': (got|want)|jsonschema|schema\(s\)",
        re.I)),
    (RESOURCE_CONFLICT, re.compile(
        r"rendered manifests contain a resource that already exists|invalid ownership metadata|"
        r"Apply failed with \d+ conflicts?|conflict(s)? with \"|the object has been modified|field is immutable|"
        r"already exists",
        re.I)),
    (TIMEOUT, re.compile(r"context deadline exceeded|timed out waiting for the condition|\btimeout\b|deadline exceeded", re.I)),
]


def classify_error(stderr: str, default: str = HELM_FAILED) -> str:
    """Maps helm's stderr to a stable error kind."""
    for kind, pattern in _ERROR_PATTERNS:
        if pattern.search(stderr or ""):
            return kind
    return default


@dataclass(frozen=True)
class HelmVersion:
    major: int
    minor: int
    patch: int
    raw: str

    @classmethod
    def parse(cls, text: str) -> HelmVersion:
        match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
        if not match:
            raise HelmError(HELM_UNSUPPORTED, f"Could not read a helm version from {(text or '').strip()!r}.")
        major, minor, patch = (int(g) for g in match.groups())
        return cls(major, minor, patch, match.group(0) if match.group(0).startswith("v") else "v" + match.group(0))

    def check_supported(self) -> None:
        if self.major == 3 and (self.major, self.minor, self.patch) >= MIN_HELM3:
            return
        if self.major == 4:
            return
        raise HelmError(
            HELM_UNSUPPORTED,
            f"helm {self.raw} is not supported: use helm >= v{'.'.join(map(str, MIN_HELM3))} or helm 4.",
        )


# Characters YAML does not allow unescaped in a document (YAML 1.2 "c-printable", and the line
# separators YAML 1.1 reads as line breaks), written as JSON \u escapes instead.
_YAML_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def json_for_helm(data: t.Any, **kwargs: t.Any) -> str:
    """JSON that helm reads as YAML (values files, kubeconfigs) with every string intact.

    Python's default escapes a character outside the BMP (an emoji, rare CJK) as a surrogate
    pair, which helm's YAML parser refuses ("found invalid Unicode character escape code"); so
    such characters are written as UTF-8, and only those YAML forbids raw are escaped."""
    text = json.dumps(data, ensure_ascii=False, **kwargs)
    return _YAML_UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class Workspace:
    """A private temp dir for values files and kubeconfigs; files are 0600 and removed on close."""

    def __init__(self, parent: str | None = None) -> None:
        # Under the task's own temp dir when Ansible gives one, so nothing is left in a
        # shared /tmp and concurrent tasks never see each other's files.
        self.path = tempfile.mkdtemp(prefix="helm-engine-", dir=parent)
        os.chmod(self.path, 0o700)
        self._counter = 0

    def write_private(self, stem: str, content: str) -> str:
        self._counter += 1
        path = os.path.join(self.path, f"{self._counter:02d}-{stem}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return path

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class SetValue:
    """One ``--set``-family expression, kubernetes.core's ``set_values`` item."""

    value: str
    value_type: str = "raw"

    FLAGS: t.ClassVar[dict[str, str]] = {
        "raw": "--set",
        "string": "--set-string",
        "json": "--set-json",
        "file": "--set-file",
        "literal": "--set-literal",
    }

    def argv(self) -> list[str]:
        # One argument, flag=value: a value that starts with '-' can never be read as a flag.
        return [f"{self.FLAGS[self.value_type]}={self.value}"]


OCI_SCHEME = "oci://"


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials for the OCI registry of an ``oci://`` chart.

    They reach helm as a docker-style registry config (``--registry-config``), a 0600 file in the
    task's workspace: never argv, and never helm's own config. The file is written with the
    credentials in it rather than by ``helm registry login --password-stdin``: into a config that
    holds no credentials yet, helm's login stores the password in the platform's credential
    helper (docker-credential-secretservice or -pass on Linux, when installed), where it would
    outlive the task (oras-go ``DetectDefaultNativeStore``, which helm 3 and 4 set)."""

    host: str
    username: str
    password: str = field(repr=False)

    def auth_token(self) -> str:
        """The ``auth`` field of the config: base64 of ``username:password`` (HTTP basic)."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def config_json(self) -> str:
        return json.dumps({"auths": {self.host: {"auth": self.auth_token()}}}, sort_keys=True)


def oci_registry_host(ref: str) -> str | None:
    """``host[:port]`` of an ``oci://`` reference (the key helm looks credentials up by)."""
    if not ref.startswith(OCI_SCHEME):
        return None
    return ref[len(OCI_SCHEME):].split("/", 1)[0] or None


@dataclass
class ChartSource:
    ref: str
    repo_url: str | None = None
    version: str | None = None
    dependency_update: bool = False
    plain_http: bool = False
    insecure_skip_tls_verify: bool = False
    ca_file: str | None = None
    login: RegistryLogin | None = field(default=None, repr=False)

    def is_local(self) -> bool:
        return self.ref.startswith(("/", "./", "../", "~")) or os.path.exists(self.ref)

    def positional(self) -> str:
        return os.path.expanduser(self.ref) if self.is_local() else self.ref

    def flags(self) -> list[str]:
        argv = []
        if self.repo_url:
            argv.append(f"--repo={self.repo_url}")
        if self.version:
            argv.append(f"--version={self.version}")
        if self.dependency_update:
            argv.append("--dependency-update")
        if self.plain_http:
            argv.append("--plain-http")
        if self.insecure_skip_tls_verify:
            argv.append("--insecure-skip-tls-verify")
        if self.ca_file:
            # Verifies the chart repository's or the OCI registry's certificate (both majors).
            argv.append(f"--ca-file={self.ca_file}")
        return argv


@dataclass
class DeploySpec:
    """Everything that decides what an install/upgrade does. The dry run and the real run
    are built from the same spec by the same function, so they cannot disagree."""

    release: str
    namespace: str
    chart: ChartSource
    values_files: list[str] = field(default_factory=list)
    values: dict[str, t.Any] | None = None
    set_values: list[SetValue] = field(default_factory=list)
    create_namespace: bool = False
    wait: bool = False
    wait_strategy: str | None = None
    wait_for_jobs: bool = False
    timeout: str | None = None
    atomic: bool = False
    history_max: int | None = None
    skip_crds: bool = False
    skip_schema_validation: bool = False
    disable_hooks: bool = False
    force: bool = False
    reset_values: bool = True
    reuse_values: bool = False
    reset_then_reuse_values: bool = False
    cleanup_on_fail: bool = False
    description: str | None = None
    server_side: str | None = None
    force_conflicts: bool = False
    take_ownership: bool = False
    post_renderer: str | None = None
    post_renderer_args: list[str] = field(default_factory=list)
    # The digest of the render inputs, stored with the revision (see _inputs.py). helm merges
    # labels into the previous revision's: without a digest, one the previous revision carries
    # is removed ("null"), or a later run could match inputs this revision did not come from.
    inputs_digest: str | None = None
    drop_inputs_label: bool = False


@dataclass
class RollbackSpec:
    release: str
    namespace: str
    revision: int
    wait: bool = False
    wait_strategy: str | None = None
    timeout: str | None = None
    cleanup_on_fail: bool = False
    force: bool = False
    disable_hooks: bool = False
    history_max: int | None = None


@dataclass
class UninstallSpec:
    release: str
    namespace: str
    wait: bool = False
    timeout: str | None = None
    keep_history: bool = False
    disable_hooks: bool = False


@dataclass
class TestSpec:
    """``helm test``: run the chart's test hooks of the deployed revision."""

    __test__ = False  # not a pytest class, whatever its name

    release: str
    namespace: str
    timeout: str | None = None
    logs: bool = False


@dataclass
class HelmResult:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str


# (argv, deadline=seconds, monitor=None) -> (rc, stdout, stderr); raises HelmError(TIMEOUT) past
# the deadline, or the monitor's error once it reports one.
Runner = t.Callable[..., t.Tuple[int, str, str]]
# Called every MONITOR_INTERVAL while helm runs; an error it returns ends helm (see run_process).
Monitor = t.Callable[[], t.Optional[HelmError]]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """helm gets SIGTERM if the module process dies (SIGKILL from a task timeout included), so
    no helm outlives its task. Linux only; elsewhere the deadline still bounds it."""
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
                poll: float = ABANDON_POLL) -> tuple[int, str, str]:
    """Runs argv with no shell and no stdin, bounded by ``deadline`` seconds.

    Past the deadline its whole process group gets SIGTERM (helm then records the release as
    failed itself), and SIGKILL ``grace`` seconds later. A SIGTERM/SIGINT to this process is
    passed on to helm the same way before this process ends, and so is the moment nobody
    will read this process's result any more (``abandoned``, checked every ``poll`` seconds:
    a task timeout or a SIGKILLed ansible-playbook abandons the module without a signal);
    this process then exits, and starts no helm once abandoned.

    ``monitor`` is asked every ``monitor_interval`` seconds whether the operation can still
    succeed. When it returns an error, helm gets SIGTERM and the rest of the deadline to end:
    helm then marks the release failed and, with --atomic / --rollback-on-failure, rolls it
    back itself. The monitor's error is raised, with helm's stderr."""
    if abandoned():
        raise SystemExit(128 + signal.SIGPIPE)  # nobody would read the result: start nothing
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        raise HelmError(HELM_MISSING, f"Could not run {argv[0]}: {exc.strerror or exc}.") from exc

    def stop(signum: int, _frame: t.Any) -> None:
        _terminate(proc, grace)
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        out, err = _communicate(proc, deadline, grace, monitor, monitor_interval, abandoned, poll)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


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
            out, err = _terminate(proc, grace)
            raise HelmError(
                TIMEOUT,
                f"helm did not finish within {deadline:.0f}s and was stopped (SIGTERM, then SIGKILL after {grace:.0f}s).",
                stderr=(err or b"").decode("utf-8", "replace")[-4000:],
                details={"deadline_seconds": deadline},
            ) from None
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


def deadline_for(timeout: float | None) -> float:
    """How long one helm process may run, from the task's timeout (see DEADLINE_FACTOR)."""
    return (timeout or DEFAULT_HELM_TIMEOUT) * DEADLINE_FACTOR + DEADLINE_MARGIN


class HelmClient:
    """Runs helm for one task. ``runner`` is ``run_process`` (or a fake in tests)."""

    def __init__(
        self,
        runner: Runner,
        binary: str,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        redactor: Redactor | None = None,
        workspace: Workspace | None = None,
        timeout: float | None = None,
    ) -> None:
        self._runner = runner
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.context = context
        self.redactor = redactor or Redactor()
        self.workspace = workspace
        self.deadline = deadline_for(timeout)
        self._version: HelmVersion | None = None
        self._values_paths: dict[str, str] = {}
        self._registry_configs: dict[str, str] = {}
        self.commands: list[str] = []
        self.process_count = 0

    # ---- running ---------------------------------------------------------------------------

    def _global_args(self, namespace: str | None) -> list[str]:
        argv: list[str] = []
        if namespace:
            argv.append(f"--namespace={namespace}")
        if self.kubeconfig:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            argv.append(f"--kube-context={self.context}")
        return argv

    def argv(self, args: list[str], positionals: t.Sequence[str] = (), *, namespace: str | None = None) -> list[str]:
        """The full argv: flags first, then ``--`` and the positional arguments, so a release
        name or chart ref can never be read as a flag."""
        argv = [self.binary] + args + self._global_args(namespace)
        if positionals:
            argv += ["--", *positionals]
        return argv

    def run(self, args: list[str], positionals: t.Sequence[str] = (), *, namespace: str | None = None,
            deadline: float | None = None, monitor: Monitor | None = None) -> HelmResult:
        argv = self.argv(args, positionals, namespace=namespace)
        shown = self.redactor.redact_argv(argv)
        self.commands.append(" ".join(shown))
        self.process_count += 1
        try:
            if monitor is None:
                rc, out, err = self._runner(argv, deadline=deadline or self.deadline)
            else:
                rc, out, err = self._runner(argv, deadline=deadline or self.deadline, monitor=monitor)
        except HelmError as exc:
            exc.command = shown
            if exc.stderr:
                exc.stderr = self.redactor.redact_text(exc.stderr)
            raise
        except OSError as exc:  # the binary vanished or is not executable
            raise HelmError(HELM_MISSING, f"Could not run helm ({self.binary}): {exc.strerror or exc}.") from exc
        result = HelmResult(argv=shown, rc=rc, stdout=out, stderr=err)
        if rc != 0:
            raise self.error_from(result)
        return result

    def error_from(self, result: HelmResult) -> HelmError:
        stderr = self.redactor.redact_text(result.stderr.strip()) or ""
        kind = classify_error(stderr)
        lines = [line for line in stderr.splitlines() if line.strip()]
        # helm 4 logs "level=WARN ..." lines before the one that says what failed.
        index = next((i for i, line in enumerate(lines) if line.startswith("Error:")), 0)
        first_line = re.sub(r"^Error:\s*", "", lines[index]) if lines else f"helm failed with exit code {result.rc} and no message"
        # helm 4 puts a template error's location on the Error line and the cause indented below.
        if index + 1 < len(lines) and lines[index + 1][:1] in (" ", "\t"):
            first_line = f"{first_line}: {lines[index + 1].strip()}"
        elif first_line.endswith(":"):
            # A list follows (schema violations: "- at '/replicaCount': got string, want integer"):
            # the message must say which value is wrong, not only that one is.
            details = [line.strip() for line in lines[index + 1:index + 6] if not line.startswith("level=")]
            if details:
                first_line = f"{first_line} {'; '.join(details)}"
        refused = _FLAG_REFUSED.search(stderr) if kind == INVALID_ARGUMENTS else None
        details = {"option": refused.group(1).replace("-", "_")} if refused else None
        # stdout too: a failed ``helm test --logs`` prints the test pods' logs there.
        return HelmError(kind, first_line, command=result.argv, rc=result.rc, stdout=self.redactor.redact_text(result.stdout),
                         stderr=stderr, details=details)

    def run_json(self, args: list[str], positionals: t.Sequence[str] = (), *, namespace: str | None = None,
                 monitor: Monitor | None = None) -> t.Any:
        result = self.run(args + ["--output=json"], positionals, namespace=namespace, monitor=monitor)
        try:
            return json.loads(_json_document(result.stdout))
        except (ValueError, RecursionError) as exc:
            raise HelmError(
                HELM_OUTPUT,
                f"helm printed output that could not be read as JSON: {str(exc)[:200]}",
                command=result.argv,
                rc=result.rc,
                stderr=self.redactor.redact_text(result.stderr),
            ) from None

    # ---- version -------------------------------------------------------------------------

    @property
    def version(self) -> HelmVersion:
        """Detected once per binary: every flag choice below reads it. The answer is kept in
        the user's cache, keyed by the binary's identity (path, inode, size, mtime), so a
        replaced or rebuilt helm is asked again."""
        if self._version is None:
            key = _binary_key(self.binary)
            cached = _read_version_cache().get(key) if key else None
            if cached:
                version = HelmVersion.parse(cached)
            else:
                try:
                    result = self.run(["version", "--template={{.Version}}"], deadline=VERSION_DEADLINE)
                except HelmError as exc:
                    raise validate.unanswered_version_probe(exc, self.binary, VERSION_DEADLINE) from None
                version = HelmVersion.parse(result.stdout)
                if key:
                    _remember_version(key, version.raw)
            version.check_supported()
            self._version = version
        return self._version

    @property
    def major(self) -> int:
        return self.version.major

    def require_helm4(self, option: str) -> None:
        """Version-dependent options are checked right after detection, before any change."""
        if self.major < 4:
            raise HelmError(HELM_UNSUPPORTED, f"{option}: needs helm 4; this is helm {self.version.raw}.", details={"option": option})

    # ---- argv builders: the only place helm flags are chosen ------------------------------

    def _values_file(self, values: dict[str, t.Any]) -> str:
        """Values go to helm through a 0600 file, never argv; one file per distinct values
        dict, so the dry run and the real run get the very same argv."""
        content = json_for_helm(values, sort_keys=True)
        if content not in self._values_paths:
            if self.workspace is None:
                raise HelmError(HELM_FAILED, "values need a workspace for their temp file")
            self._values_paths[content] = self.workspace.write_private("values.json", content)
        return self._values_paths[content]

    def _registry_config(self, login: RegistryLogin) -> str:
        """The registry credentials' 0600 file, written once per client like the values file,
        so the dry run and the real run get the very same argv."""
        content = login.config_json()
        if content not in self._registry_configs:
            if self.workspace is None:
                raise HelmError(HELM_FAILED, "registry credentials need a workspace for their temp file")
            self._registry_configs[content] = self.workspace.write_private("registry-config.json", content)
        return self._registry_configs[content]

    def _chart_args(self, chart: ChartSource) -> list[str]:
        """Where the chart comes from and how to fetch it; shared by upgrade and template."""
        argv = chart.flags()
        if chart.login is not None:
            argv.append(f"--registry-config={self._registry_config(chart.login)}")
        return argv

    def _wait_args(self, wait: bool, wait_strategy: str | None) -> list[str]:
        if not wait:
            return []
        if self.major >= 4:
            return [f"--wait={wait_strategy or 'watcher'}"]
        return ["--wait"]

    def _values_args(self, spec: DeploySpec) -> list[str]:
        """What decides the values, in helm's precedence order; shared by upgrade and template."""
        argv = [f"--values={path}" for path in spec.values_files]
        if spec.values:
            argv.append(f"--values={self._values_file(spec.values)}")
        for item in spec.set_values:
            argv += item.argv()
        return argv

    def template_argv(self, spec: DeploySpec) -> tuple[list[str], list[str]]:
        """(flags, positionals) of ``helm template`` for the same chart and values as
        upgrade_argv: a render that never asks the cluster (preflight's fallback when helm's
        dry run is refused reading the resources it would create)."""
        argv = ["template"] + self._chart_args(spec.chart) + self._values_args(spec)
        if not spec.skip_crds:
            argv.append("--include-crds")
        if spec.skip_schema_validation:
            argv.append("--skip-schema-validation")
        if spec.disable_hooks:
            argv.append("--no-hooks")
        argv.append("--skip-tests")
        if spec.post_renderer:
            argv.append(f"--post-renderer={spec.post_renderer}")
            argv += [f"--post-renderer-args={a}" for a in spec.post_renderer_args]
        return argv, [spec.release, spec.chart.positional()]

    def upgrade_argv(self, spec: DeploySpec, *, dry_run: bool) -> tuple[list[str], list[str]]:
        """(flags, positionals) of ``helm upgrade --install``."""
        argv = ["upgrade", "--install"] + self._chart_args(spec.chart) + self._values_args(spec)
        if spec.create_namespace:
            argv.append("--create-namespace")
        if spec.reuse_values:
            argv.append("--reuse-values")
        elif spec.reset_then_reuse_values:
            argv.append("--reset-then-reuse-values")
        elif spec.reset_values:
            argv.append("--reset-values")
        if spec.skip_crds:
            argv.append("--skip-crds")
        if spec.skip_schema_validation:
            argv.append("--skip-schema-validation")
        if spec.disable_hooks:
            argv.append("--no-hooks")
        if spec.description:
            argv.append(f"--description={spec.description}")
        if spec.history_max is not None:
            argv.append(f"--history-max={spec.history_max}")
        if spec.take_ownership:
            argv.append("--take-ownership")
        if spec.post_renderer:
            argv.append(f"--post-renderer={spec.post_renderer}")
            argv += [f"--post-renderer-args={a}" for a in spec.post_renderer_args]
        if spec.inputs_digest or spec.drop_inputs_label:
            argv.append(f"--labels={INPUTS_LABEL}={spec.inputs_digest or 'null'}")
        argv += self._wait_args(spec.wait or spec.atomic, spec.wait_strategy)
        if spec.wait_for_jobs and (spec.wait or spec.atomic):
            argv.append("--wait-for-jobs")
        if spec.timeout:
            argv.append(f"--timeout={spec.timeout}")
        if spec.atomic:
            argv.append("--rollback-on-failure" if self.major >= 4 else "--atomic")
        if spec.cleanup_on_fail:
            argv.append("--cleanup-on-fail")
        if spec.force:
            # helm 4 refuses --force-replace with server-side apply, its default since 4.0;
            # replacing is a client-side operation, as helm 3's --force was.
            argv += ["--server-side=false", "--force-replace"] if self.major >= 4 else ["--force"]
        if spec.server_side is not None or spec.force_conflicts:
            self.require_helm4("server_side" if spec.server_side is not None else "force_conflicts")
            if spec.server_side is not None:
                argv.append(f"--server-side={spec.server_side}")
            if spec.force_conflicts:
                argv.append("--force-conflicts")
        if dry_run:
            # Server-side, so that lookup() and the API capabilities match what the real run
            # will see.
            argv.append("--dry-run=server")
        else:
            # The real run always follows the task's dry run of this same argv, which validated
            # the same manifest against the same OpenAPI schemas a moment before (so check mode
            # refuses what the real run would). Fetching and parsing them again is half a second
            # of every change on helm 3 and 4; the API server still validates what it receives.
            argv.append("--disable-openapi-validation")
        return argv, [spec.release, spec.chart.positional()]

    def rollback_argv(self, spec: RollbackSpec) -> tuple[list[str], list[str]]:
        argv = ["rollback"]
        argv += self._wait_args(spec.wait, spec.wait_strategy)
        if spec.timeout:
            argv.append(f"--timeout={spec.timeout}")
        if spec.cleanup_on_fail:
            argv.append("--cleanup-on-fail")
        if spec.force:
            argv += ["--server-side=false", "--force-replace"] if self.major >= 4 else ["--force"]
        if spec.disable_hooks:
            argv.append("--no-hooks")
        if spec.history_max is not None:
            argv.append(f"--history-max={spec.history_max}")
        return argv, [spec.release, str(spec.revision)]

    def uninstall_argv(self, spec: UninstallSpec) -> tuple[list[str], list[str]]:
        argv = ["uninstall"]
        if spec.wait:
            argv.append("--wait")
        if spec.timeout:
            argv.append(f"--timeout={spec.timeout}")
        if spec.keep_history:
            argv.append("--keep-history")
        if spec.disable_hooks:
            argv.append("--no-hooks")
        return argv, [spec.release]

    def test_argv(self, spec: TestSpec) -> tuple[list[str], list[str]]:
        """(flags, positionals) of ``helm test``. ``--logs`` exists in helm 3 and helm 4 alike
        (both list it in ``helm test --help``); nothing here depends on the major."""
        argv = ["test"]
        if spec.timeout:
            argv.append(f"--timeout={spec.timeout}")
        if spec.logs:
            argv.append("--logs")
        return argv, [spec.release]

    # ---- operations -----------------------------------------------------------------------

    def render(self, spec: DeploySpec) -> dict[str, t.Any]:
        """The release this spec would produce, rendered by the server without persisting."""
        flags, positionals = self.upgrade_argv(spec, dry_run=True)
        return _release_document(self.run_json(flags, positionals, namespace=spec.namespace), self.commands[-1])

    def template(self, spec: DeploySpec) -> str:
        """The manifests (CRDs and hooks included, tests not) rendered by helm alone."""
        flags, positionals = self.template_argv(spec)
        return self.run(flags, positionals, namespace=spec.namespace).stdout

    def upgrade(self, spec: DeploySpec, monitor: Monitor | None = None) -> dict[str, t.Any]:
        flags, positionals = self.upgrade_argv(spec, dry_run=False)
        return _release_document(self.run_json(flags, positionals, namespace=spec.namespace, monitor=monitor),
                                 self.commands[-1])

    def repo_update(self) -> None:
        """Refreshes the local repository indexes (kubernetes.core's update_repo_cache). Only
        helm's cache on this host changes; with no repository configured there is nothing to do."""
        try:
            self.run(["repo", "update"])
        except HelmError as exc:
            if "no repositories" not in (exc.stderr or "").lower():
                raise

    def rollback(self, spec: RollbackSpec, monitor: Monitor | None = None) -> HelmResult:
        flags, positionals = self.rollback_argv(spec)
        return self.run(flags, positionals, namespace=spec.namespace, monitor=monitor)

    def uninstall(self, spec: UninstallSpec) -> HelmResult:
        flags, positionals = self.uninstall_argv(spec)
        return self.run(flags, positionals, namespace=spec.namespace)

    def test(self, spec: TestSpec) -> HelmResult:
        """Runs the release's tests; a failed test is a HelmError like any failed helm."""
        flags, positionals = self.test_argv(spec)
        return self.run(flags, positionals, namespace=spec.namespace)


# ---- the helm version cache ----------------------------------------------------------------

VERSION_CACHE_ENTRIES = 32


def version_cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ai_mesh.helm_engine", "helm-versions.json")


def _binary_key(binary: str) -> str | None:
    try:
        path = os.path.realpath(binary)
        info = os.stat(path)
    except OSError:
        return None
    return f"{path}|{info.st_dev}|{info.st_ino}|{info.st_size}|{info.st_mtime_ns}"


def _read_version_cache() -> dict[str, str]:
    try:
        with open(version_cache_path(), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def _remember_version(key: str, raw: str) -> None:
    """Best effort, atomic (parallel forks write it too); a read-only home only costs the
    ``helm version`` process next time."""
    path = version_cache_path()
    entries = _read_version_cache()
    entries.pop(key, None)
    entries[key] = raw
    kept = dict(list(entries.items())[-VERSION_CACHE_ENTRIES:])
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".helm-versions.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(kept, handle)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass


def _release_document(document: t.Any, command: str) -> dict[str, t.Any]:
    """helm's JSON for a release must at least name it and carry a revision and a manifest;
    anything else (``{}``, a list) would be mistaken for a release with nothing in it."""
    if not isinstance(document, dict) or not document.get("name") or not str(document.get("version", "")).isdigit() \
            or not isinstance(document.get("info"), dict):
        shape = sorted(document)[:10] if isinstance(document, dict) else type(document).__name__
        raise HelmError(HELM_OUTPUT, f"helm printed JSON that is not a release (keys: {shape}).", command=[command])
    return document


def _json_document(stdout: str) -> str:
    """helm may print warnings before the JSON document on stdout; keep from the first brace."""
    text = stdout.strip()
    if text.startswith(("{", "[")):
        return text
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return text[min(starts):] if starts else text
