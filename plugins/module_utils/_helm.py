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
import re
import typing as t
from dataclasses import dataclass

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
    EngineError,
    HelmError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm_version import HelmVersion, cached_version
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._inputs import INPUTS_LABEL
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import Monitor, Runner
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import (
    DEFAULT_HELM_TIMEOUT,
    ChartSource,
    DeploySpec,
    RollbackSpec,
    TestSpec,
    UninstallSpec,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import Workspace, json_for_helm

# helm's --timeout bounds each Kubernetes operation (pre hooks, the wait, post hooks), not the
# whole command (helm docs: "time to wait for any individual Kubernetes operation"). A helm
# process may therefore legitimately run about three timeouts; past that, plus a margin, it
# is hung, and is ended: SIGTERM first (helm marks the release failed), SIGKILL after a grace.
DEADLINE_FACTOR = 3
DEADLINE_MARGIN = 30.0
VERSION_DEADLINE = 5.0  # `helm version` touches neither network nor cluster: it answers in well under 1 s

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
        r"cannot re-?use a name that is still in use",
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
    # Not "release ... not found" at large: "unable to build kubernetes objects from release manifest:
    # resource mapping not found" is a render failure (a kind the cluster does not serve).
    (RELEASE_NOT_FOUND, re.compile(r"release: not found|has no deployed releases|release not loaded|release \"[^\"]*\" not found", re.I)),
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


@dataclass
class HelmResult:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str


def deadline_for(timeout: float | None) -> float:
    """How long one helm process may run, from the task's timeout (see DEADLINE_FACTOR)."""
    return (timeout or DEFAULT_HELM_TIMEOUT) * DEADLINE_FACTOR + DEADLINE_MARGIN


# The flags each spec's attributes turn into, in the order helm gets them (see switches).
SET_VALUE_FLAGS = {"raw": "--set", "string": "--set-string", "json": "--set-json", "file": "--set-file",
                   "literal": "--set-literal"}
CHART_SWITCHES = (("repo_url", "--repo"), ("version", "--version"), ("dependency_update", "--dependency-update"),
                  ("plain_http", "--plain-http"), ("insecure_skip_tls_verify", "--insecure-skip-tls-verify"),
                  # Verifies the chart repository's or the OCI registry's certificate (both majors).
                  ("ca_file", "--ca-file"))
UPGRADE_SWITCHES = (("skip_crds", "--skip-crds"), ("skip_schema_validation", "--skip-schema-validation"),
                    ("disable_hooks", "--no-hooks"), ("description", "--description"), ("history_max", "--history-max"),
                    ("take_ownership", "--take-ownership"))


def switches(source: t.Any, table: t.Sequence[tuple[str, str]]) -> list[str]:
    """The flags of ``table`` whose attribute of ``source`` is set, in table order: True gives
    the bare flag, any other value but None, False and "" gives ``flag=value`` (0 included)."""
    argv = []
    for attribute, flag in table:
        value = getattr(source, attribute)
        if value is None or value is False or value == "":
            continue
        argv.append(flag if value is True else f"{flag}={value}")
    return argv


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
            # A monitor only when there is one: runners (and test fakes) need not take it.
            watching = {"monitor": monitor} if monitor is not None else {}
            rc, out, err = self._runner(argv, deadline=deadline or self.deadline, **watching)
        except EngineError as exc:  # stopped at its deadline, or by the monitor
            error = exc if isinstance(exc, HelmError) else HelmError(
                exc.kind, exc.msg, rc=exc.rc, stderr=exc.stderr, details=exc.details)
            error.command = shown
            if error.stderr:
                error.stderr = self.redactor.redact_text(error.stderr)
            raise error from None
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
            self._version = cached_version(self.binary, self._ask_version)
        return self._version

    def _ask_version(self) -> str:
        try:
            return self.run(["version", "--template={{.Version}}"], deadline=VERSION_DEADLINE).stdout
        except HelmError as exc:
            # A binary that does not answer this (a wrapper that hangs, not helm) is named as the problem.
            raise validate.unanswered_version_probe(exc, self.binary, VERSION_DEADLINE) from None

    @property
    def detected_version(self) -> HelmVersion | None:
        """The version once detected, without detecting it (results report it when known)."""
        return self._version

    @property
    def major(self) -> int:
        return self.version.major

    def require_helm4(self, option: str) -> None:
        """Version-dependent options are checked right after detection, before any change."""
        if self.major < 4:
            raise HelmError(HELM_UNSUPPORTED, f"{option}: needs helm 4; this is helm {self.version.raw}.", details={"option": option})

    # ---- argv builders: the only place helm flags are chosen ------------------------------

    def _private_file(self, stem: str, content: str, what: str) -> str:
        """Values and registry credentials reach helm through 0600 files, never argv; one file
        per distinct content, so the dry run and the real run get the very same argv."""
        if self.workspace is None:
            raise HelmError(HELM_FAILED, f"{what} need a workspace for their temp file")
        return self.workspace.write_once(stem, content)

    def _chart_args(self, chart: ChartSource) -> list[str]:
        """Where the chart comes from and how to fetch it; shared by upgrade and template."""
        argv = switches(chart, CHART_SWITCHES)
        if chart.login is not None:
            config = self._private_file("registry-config.json", chart.login.config_json(), "registry credentials")
            argv.append(f"--registry-config={config}")
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
            argv.append(f"--values={self._private_file('values.json', json_for_helm(spec.values, sort_keys=True), 'values')}")
        # One argument each, flag=value: a value that starts with '-' can never be read as a flag.
        argv += [f"{SET_VALUE_FLAGS[item.value_type]}={item.value}" for item in spec.set_values]
        return argv

    @staticmethod
    def _post_renderer_args(spec: DeploySpec) -> list[str]:
        if not spec.post_renderer:
            return []
        return [f"--post-renderer={spec.post_renderer}"] + [f"--post-renderer-args={a}" for a in spec.post_renderer_args]

    def template_argv(self, spec: DeploySpec) -> tuple[list[str], list[str]]:
        """(flags, positionals) of ``helm template`` for the same chart and values as
        upgrade_argv: a render that never asks the cluster (preflight's fallback when helm's
        dry run is refused reading the resources it would create)."""
        argv = ["template"] + self._chart_args(spec.chart) + self._values_args(spec)
        if not spec.skip_crds:
            argv.append("--include-crds")
        argv += switches(spec, [("skip_schema_validation", "--skip-schema-validation"), ("disable_hooks", "--no-hooks")])
        argv.append("--skip-tests")
        argv += self._post_renderer_args(spec)
        return argv, [spec.release, spec.chart.positional()]

    def upgrade_argv(self, spec: DeploySpec, *, dry_run: bool, validated: bool = True) -> tuple[list[str], list[str]]:
        """(flags, positionals) of ``helm upgrade --install``; ``validated``: a dry run of the
        same argv ran before this real run."""
        argv = ["upgrade", "--install"] + self._chart_args(spec.chart) + self._values_args(spec)
        argv += switches(spec, [("create_namespace", "--create-namespace")])
        # One of them: helm refuses --reuse-values with --reset-values.
        for attribute, flag in (("reuse_values", "--reuse-values"), ("reset_then_reuse_values", "--reset-then-reuse-values"),
                                ("reset_values", "--reset-values")):
            if getattr(spec, attribute):
                argv.append(flag)
                break
        argv += switches(spec, UPGRADE_SWITCHES)
        argv += self._post_renderer_args(spec)
        if spec.inputs_digest or spec.drop_inputs_label:
            argv.append(f"--labels={INPUTS_LABEL}={spec.inputs_digest or 'null'}")
        argv += self._wait_args(spec.wait or spec.atomic, spec.wait_strategy)
        if spec.wait_for_jobs and (spec.wait or spec.atomic):
            argv.append("--wait-for-jobs")
        argv += switches(spec, [("timeout", "--timeout")])
        if spec.atomic:
            argv.append("--rollback-on-failure" if self.major >= 4 else "--atomic")
        argv += switches(spec, [("cleanup_on_fail", "--cleanup-on-fail")]) + self._force_args(spec.force)
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
        elif validated:
            # The task's dry run of this same argv validated the same manifest against the same
            # OpenAPI schemas a moment before (so check mode refuses what the real run would).
            # Fetching and parsing them again is half a second of every change on helm 3 and 4;
            # the API server still validates what it receives.
            argv.append("--disable-openapi-validation")
        return argv, [spec.release, spec.chart.positional()]

    def rollback_argv(self, spec: RollbackSpec) -> tuple[list[str], list[str]]:
        argv = ["rollback"] + self._wait_args(spec.wait, spec.wait_strategy)
        argv += switches(spec, [("timeout", "--timeout"), ("cleanup_on_fail", "--cleanup-on-fail")])
        argv += self._force_args(spec.force)
        argv += switches(spec, [("disable_hooks", "--no-hooks"), ("history_max", "--history-max")])
        return argv, [spec.release, str(spec.revision)]

    def _force_args(self, force: bool) -> list[str]:
        if not force:
            return []
        # helm 4 refuses --force-replace with server-side apply, its default since 4.0;
        # replacing is a client-side operation, as helm 3's --force was.
        return ["--server-side=false", "--force-replace"] if self.major >= 4 else ["--force"]

    def uninstall_argv(self, spec: UninstallSpec) -> tuple[list[str], list[str]]:
        argv = ["uninstall"] + switches(spec, [("wait", "--wait"), ("timeout", "--timeout"), ("keep_history", "--keep-history"),
                                               ("disable_hooks", "--no-hooks")])
        return argv, [spec.release]

    def test_argv(self, spec: TestSpec) -> tuple[list[str], list[str]]:
        """(flags, positionals) of ``helm test``. ``--logs`` exists in helm 3 and helm 4 alike
        (both list it in ``helm test --help``); nothing here depends on the major."""
        return ["test"] + switches(spec, [("timeout", "--timeout"), ("logs", "--logs")]), [spec.release]

    # ---- operations -----------------------------------------------------------------------

    def render(self, spec: DeploySpec) -> dict[str, t.Any]:
        """The release this spec would produce, rendered by the server without persisting."""
        flags, positionals = self.upgrade_argv(spec, dry_run=True)
        return _release_document(self.run_json(flags, positionals, namespace=spec.namespace), self.commands[-1])

    def template(self, spec: DeploySpec) -> str:
        """The manifests (CRDs and hooks included, tests not) rendered by helm alone."""
        flags, positionals = self.template_argv(spec)
        return self.run(flags, positionals, namespace=spec.namespace).stdout

    def upgrade(self, spec: DeploySpec, monitor: Monitor | None = None, *, validated: bool = True) -> dict[str, t.Any]:
        flags, positionals = self.upgrade_argv(spec, dry_run=False, validated=validated)
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
