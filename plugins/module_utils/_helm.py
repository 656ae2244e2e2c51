# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The one helm client: every helm process of the collection is built and run here.

It builds argv lists (never shell strings), detects the helm major once, chooses every
version-dependent flag in one place, parses ``-o json``, classifies failures into stable error
kinds and redacts secrets from everything it echoes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import typing as t
from dataclasses import dataclass, field

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor

# Stable error kinds. Playbooks and the role match on these; never rename one.
CLUSTER_UNREACHABLE = "cluster_unreachable"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
CHART_NOT_FOUND = "chart_not_found"
INVALID_VALUES = "invalid_values"
INVALID_ARGUMENTS = "invalid_arguments"
RENDER_FAILED = "render_failed"
RELEASE_LOCKED = "release_locked"
RELEASE_NOT_FOUND = "release_not_found"
REVISION_NOT_FOUND = "revision_not_found"
TIMEOUT = "timeout"
HOOK_FAILED = "hook_failed"
RESOURCE_CONFLICT = "resource_conflict"
HELM_MISSING = "helm_missing"
HELM_UNSUPPORTED = "helm_unsupported"
HELM_FAILED = "helm_failed"
HELM_OUTPUT = "helm_output_invalid"
MISSING_DEPENDENCY = "missing_dependency"
KUBERNETES_API = "kubernetes_api_error"

# Oldest helm 3 with --dry-run=server and -o json on upgrade.
MIN_HELM3 = (3, 13, 0)

# Ordered: the first pattern that matches names the kind. Specific causes come before the
# generic symptoms they produce (a failed hook often ends in a deadline too).
_ERROR_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (RELEASE_LOCKED, re.compile(r"another operation \(install/upgrade/rollback\) is in progress", re.I)),
    (HOOK_FAILED, re.compile(r"(pre|post)-(install|upgrade|rollback|delete) hooks? failed|hook execution failed|failed (pre|post)-\w+|job .* failed|BackoffLimitExceeded|DeadlineExceeded.*job", re.I)),
    (UNAUTHORIZED, re.compile(r"\bUnauthorized\b|must be logged in|provide credentials|invalid bearer token|x509: certificate signed by unknown authority|tls: failed to verify certificate", re.I)),
    (FORBIDDEN, re.compile(r"\bis forbidden\b|\bforbidden:|\(Forbidden\)", re.I)),
    (CLUSTER_UNREACHABLE, re.compile(r"Kubernetes cluster unreachable|connection refused|no such host|dial tcp|i/o timeout|connect: network is unreachable|no route to host|the server could not find the requested resource \(get namespaces\)|EOF$", re.I | re.M)),
    (CHART_NOT_FOUND, re.compile(r"chart .*not found|failed to download|no chart (name|version) found|path \".*\" not found|repo .* not found|not a valid chart repository|could not find protocol handler|Chart\.yaml file is missing|no such file or directory.*(chart|\.tgz)|not found.*manifest|unable to locate chart|401 Unauthorized.*oci", re.I)),
    (RENDER_FAILED, re.compile(r"parse error at|template: .*: (executing|function)|execution error at|YAML parse error|unable to build kubernetes objects|error validating data|error validating \"\"|field not declared in schema|unknown field|executing \".*\" at <|can't evaluate field|nil pointer evaluating", re.I)),
    (INVALID_VALUES, re.compile(r"values don't meet the specifications of the schema|failed parsing --set|error converting YAML to JSON|cannot unmarshal|failed to parse .*values|key .* has no value|unable to parse .*values|error reading .*values", re.I)),
    (RESOURCE_CONFLICT, re.compile(r"rendered manifests contain a resource that already exists|invalid ownership metadata|Apply failed with \d+ conflicts?|conflict(s)? with \"|the object has been modified|field is immutable|already exists", re.I)),
    (TIMEOUT, re.compile(r"context deadline exceeded|timed out waiting for the condition|\btimeout\b|deadline exceeded", re.I)),
    (RELEASE_NOT_FOUND, re.compile(r"release: not found|has no deployed releases|release .* not found", re.I)),
]


def classify_error(stderr: str, default: str = HELM_FAILED) -> str:
    """Maps helm's stderr to a stable error kind."""
    for kind, pattern in _ERROR_PATTERNS:
        if pattern.search(stderr or ""):
            return kind
    return default


class HelmError(Exception):
    """A failure the modules report as ``msg`` plus an ``error`` dict with a stable ``kind``."""

    def __init__(
        self,
        kind: str,
        msg: str,
        *,
        command: list[str] | None = None,
        rc: int | None = None,
        stdout: str | None = None,
        stderr: str | None = None,
        details: dict[str, t.Any] | None = None,
    ) -> None:
        super().__init__(msg)
        self.kind = kind
        self.msg = msg
        self.command = command
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.details = details or {}
        # Top-level result keys (the release state a failure left, ``changed``).
        self.extra: dict[str, t.Any] = {}

    def to_result(self) -> dict[str, t.Any]:
        error: dict[str, t.Any] = {"kind": self.kind, "message": self.msg}
        if self.rc is not None:
            error["rc"] = self.rc
        if self.stderr:
            error["stderr"] = self.stderr
        if self.command:
            error["command"] = " ".join(self.command)
        error.update(self.details)
        result = {"msg": self.msg, "error": error}
        result.update(self.extra)
        return result


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


class Workspace:
    """A private temp dir for values files and kubeconfigs; files are 0600 and removed on close."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="helm-engine-")
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
        return [self.FLAGS[self.value_type], self.value]


@dataclass
class ChartSource:
    ref: str
    repo_url: str | None = None
    version: str | None = None
    dependency_update: bool = False

    def is_local(self) -> bool:
        return self.ref.startswith(("/", "./", "../", "~")) or os.path.exists(self.ref)

    def argv(self) -> list[str]:
        argv = [os.path.expanduser(self.ref) if self.is_local() else self.ref]
        if self.repo_url:
            argv += ["--repo", self.repo_url]
        if self.version:
            argv += ["--version", self.version]
        if self.dependency_update:
            argv.append("--dependency-update")
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
    disable_hooks: bool = False
    force: bool = False
    reset_values: bool = True
    reuse_values: bool = False
    cleanup_on_fail: bool = False
    description: str | None = None
    server_side: str | None = None
    force_conflicts: bool = False
    take_ownership: bool = False


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
class HelmResult:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str


RunCommand = t.Callable[..., t.Tuple[int, str, str]]


class HelmClient:
    """Runs helm for one task. ``run_command`` is AnsibleModule.run_command (or a fake in tests)."""

    def __init__(
        self,
        run_command: RunCommand,
        binary: str,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        redactor: Redactor | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        self._run_command = run_command
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.context = context
        self.redactor = redactor or Redactor()
        self.workspace = workspace
        self._version: HelmVersion | None = None
        self._values_paths: dict[str, str] = {}
        self.commands: list[str] = []
        self.process_count = 0

    # ---- running ---------------------------------------------------------------------------

    def _global_args(self, namespace: str | None) -> list[str]:
        argv: list[str] = []
        if namespace:
            argv += ["--namespace", namespace]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--kube-context", self.context]
        return argv

    def run(self, args: list[str], *, namespace: str | None = None) -> HelmResult:
        argv = [self.binary] + args + self._global_args(namespace)
        shown = self.redactor.redact_argv(argv)
        self.commands.append(" ".join(shown))
        self.process_count += 1
        try:
            rc, out, err = self._run_command(argv, expand_user_and_vars=False)
        except OSError as exc:  # the binary vanished between detection and use
            raise HelmError(HELM_MISSING, f"Could not run helm ({self.binary}): {exc}") from exc
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
        first_line = re.sub(r"^Error:\s*", "", lines[index]) if lines else "helm failed"
        # helm 4 puts a template error's location on the Error line and the cause indented below.
        if index + 1 < len(lines) and lines[index + 1][:1] in (" ", "\t"):
            first_line = f"{first_line}: {lines[index + 1].strip()}"
        return HelmError(kind, first_line, command=result.argv, rc=result.rc, stderr=stderr)

    def run_json(self, args: list[str], *, namespace: str | None = None) -> t.Any:
        result = self.run(args + ["--output", "json"], namespace=namespace)
        try:
            return json.loads(_json_document(result.stdout))
        except ValueError as exc:
            raise HelmError(
                HELM_OUTPUT,
                f"helm printed output that is not JSON: {exc}",
                command=result.argv,
                rc=result.rc,
                stderr=self.redactor.redact_text(result.stderr),
            ) from exc

    # ---- version -------------------------------------------------------------------------

    @property
    def version(self) -> HelmVersion:
        """Detected once per client (one task): every flag choice below reads it."""
        if self._version is None:
            result = self.run(["version", "--template", "{{.Version}}"])
            version = HelmVersion.parse(result.stdout)
            version.check_supported()
            self._version = version
        return self._version

    @property
    def major(self) -> int:
        return self.version.major

    # ---- argv builders: the only place helm flags are chosen ------------------------------

    def _values_file(self, values: dict[str, t.Any]) -> str:
        """Values go to helm through a 0600 file, never argv; one file per distinct values
        dict, so the dry run and the real run get the very same argv."""
        content = json.dumps(values, sort_keys=True)
        if content not in self._values_paths:
            if self.workspace is None:
                raise HelmError(INVALID_ARGUMENTS, "values need a workspace for their temp file")
            self._values_paths[content] = self.workspace.write_private("values.json", content)
        return self._values_paths[content]

    def _wait_args(self, wait: bool, wait_strategy: str | None) -> list[str]:
        if not wait:
            return []
        if self.major >= 4:
            return [f"--wait={wait_strategy or 'watcher'}"]
        return ["--wait"]

    def upgrade_argv(self, spec: DeploySpec, *, dry_run: bool) -> list[str]:
        argv = ["upgrade", spec.release] + spec.chart.argv() + ["--install"]
        for path in spec.values_files:
            argv += ["--values", path]
        if spec.values:
            argv += ["--values", self._values_file(spec.values)]
        for item in spec.set_values:
            argv += item.argv()
        if spec.create_namespace:
            argv.append("--create-namespace")
        if spec.reuse_values:
            argv.append("--reuse-values")
        elif spec.reset_values:
            argv.append("--reset-values")
        if spec.skip_crds:
            argv.append("--skip-crds")
        if spec.disable_hooks:
            argv.append("--no-hooks")
        if spec.description:
            argv += ["--description", spec.description]
        if spec.history_max is not None:
            argv += ["--history-max", str(spec.history_max)]
        if spec.take_ownership:
            argv.append("--take-ownership")
        argv += self._wait_args(spec.wait or spec.atomic, spec.wait_strategy)
        if spec.wait_for_jobs and (spec.wait or spec.atomic):
            argv.append("--wait-for-jobs")
        if spec.timeout:
            argv += ["--timeout", spec.timeout]
        if spec.atomic:
            argv.append("--rollback-on-failure" if self.major >= 4 else "--atomic")
        if spec.cleanup_on_fail:
            argv.append("--cleanup-on-fail")
        if spec.force:
            argv.append("--force-replace" if self.major >= 4 else "--force")
        if self.major >= 4:
            if spec.server_side is not None:
                argv.append(f"--server-side={spec.server_side}")
            if spec.force_conflicts:
                argv.append("--force-conflicts")
        elif spec.server_side not in (None, "false") or spec.force_conflicts:
            raise HelmError(HELM_UNSUPPORTED, "server_side and force_conflicts need helm 4; this is helm " + self.version.raw)
        if dry_run:
            # The only difference from the real run. Server-side, so that lookup() and the
            # API capabilities match what the real run will see.
            argv.append("--dry-run=server")
        return argv

    def rollback_argv(self, spec: RollbackSpec) -> list[str]:
        argv = ["rollback", spec.release, str(spec.revision)]
        argv += self._wait_args(spec.wait, spec.wait_strategy)
        if spec.timeout:
            argv += ["--timeout", spec.timeout]
        if spec.cleanup_on_fail:
            argv.append("--cleanup-on-fail")
        if spec.force:
            argv.append("--force-replace" if self.major >= 4 else "--force")
        if spec.disable_hooks:
            argv.append("--no-hooks")
        if spec.history_max is not None:
            argv += ["--history-max", str(spec.history_max)]
        return argv

    def uninstall_argv(self, spec: UninstallSpec) -> list[str]:
        argv = ["uninstall", spec.release]
        if spec.wait:
            argv.append("--wait")
        if spec.timeout:
            argv += ["--timeout", spec.timeout]
        if spec.keep_history:
            argv.append("--keep-history")
        if spec.disable_hooks:
            argv.append("--no-hooks")
        return argv

    # ---- operations -----------------------------------------------------------------------

    def render(self, spec: DeploySpec) -> dict[str, t.Any]:
        """The release this spec would produce, rendered by the server without persisting."""
        return self.run_json(self.upgrade_argv(spec, dry_run=True), namespace=spec.namespace)

    def upgrade(self, spec: DeploySpec) -> dict[str, t.Any]:
        return self.run_json(self.upgrade_argv(spec, dry_run=False), namespace=spec.namespace)

    def rollback(self, spec: RollbackSpec) -> HelmResult:
        return self.run(self.rollback_argv(spec), namespace=spec.namespace)

    def uninstall(self, spec: UninstallSpec) -> HelmResult:
        return self.run(self.uninstall_argv(spec), namespace=spec.namespace)


def _json_document(stdout: str) -> str:
    """helm may print warnings before the JSON document on stdout; keep from the first brace."""
    text = stdout.strip()
    if text.startswith(("{", "[")):
        return text
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return text[min(starts):] if starts else text
