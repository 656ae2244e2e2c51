# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""What every module of the collection shares: the argument spec for helm and cluster auth
(documented once in doc_fragments/helm_engine.py), the per-task context, and one way to turn
exceptions into results."""

from __future__ import annotations

import copy
import dataclasses
import os
import time
import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    HELM_MISSING,
    INTERNAL_ERROR,
    INVALID_ARGUMENTS,
    RELEASE_LOCKED,
    EngineError,
    HelmError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import InputError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import (
    ChartSource,
    DeploySpec,
    HelmClient,
    RegistryLogin,
    SetValue,
    Workspace,
    oci_registry_host,
    run_process,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeAuth, KubeClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._lock import KubeLeaseApi, ReleaseLock, lease_duration
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._recovery import RecoveryPolicy
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor, redact_set_expression
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rollout import FailFastPolicy

# Paired with doc_fragments/helm_engine.py (AUTH and HELM fragments); change both together.
AUTH_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    # no_log keeps a kubeconfig dict out of the syslog line; see TaskContext.relax_no_log.
    "kubeconfig": {"type": "raw", "aliases": ["kubeconfig_path"], "no_log": True,
                   "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "aliases": ["kube_context"], "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"], "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT"])},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"], "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL"])},
}

HELM_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "binary_path": {"type": "path"},
}

RELEASE_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "name": {"type": "str", "required": True, "aliases": ["release_name"]},
    "namespace": {"type": "str", "required": True, "aliases": ["release_namespace"]},
}


# Paired with the RECOVERY doc fragment: what to do about a release stuck in pending-*.
RECOVERY_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "recover_pending": {"type": "bool", "default": True},
    "stale_pending_after": {"type": "raw"},
    "lock_wait": {"type": "raw", "default": 0},
}


# Paired with the OPERATION doc fragment: options of helm_deploy and helm_rollback.
OPERATION_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "wait": {"type": "bool", "default": False},
    "wait_strategy": {"type": "str", "choices": ["watcher", "legacy"]},
    "timeout": {"type": "raw"},
    "fail_fast": {"type": "bool"},
    "fail_fast_restarts": {"type": "int", "default": 3},
    "fail_fast_grace": {"type": "raw", "default": "30s"},
    "cleanup_on_fail": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "disable_hook": {"type": "bool", "default": False, "aliases": ["disable_hooks"]},
    "history_max": {"type": "int"},
    "sensitive_values": {"type": "list", "elements": "str", "default": []},
}


# Paired with the CHART doc fragment: what decides the rendered release, shared by helm_deploy
# and helm_preflight so both render a task the same way (see deploy_spec).
CHART_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "chart_ref": {"type": "path"},
    "chart_repo_url": {"type": "str"},
    "chart_version": {"type": "str"},
    # kubernetes.core.helm_pull's names (it has repo_username/repo_password with these aliases).
    "chart_repo_username": {"type": "str", "aliases": ["repo_username"]},
    "chart_repo_password": {"type": "str", "aliases": ["repo_password"], "no_log": True},
    "chart_ca_cert": {"type": "path"},
    # no_log keeps values out of the module's syslog line; TaskContext narrows Ansible's
    # masking back to the real secrets so results stay readable.
    "release_values": {"type": "dict", "default": {}, "aliases": ["values"], "no_log": True},
    "values_files": {"type": "list", "elements": "str", "default": []},
    "set_values": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "value": {"type": "str", "required": True, "no_log": True},
            "value_type": {"type": "str", "default": "raw", "choices": ["raw", "string", "json", "file", "literal"]},
        },
    },
    "create_namespace": {"type": "bool", "default": False},
    "skip_crds": {"type": "bool", "default": False},
    "skip_schema_validation": {"type": "bool", "default": False},
    "dependency_update": {"type": "bool", "default": False, "aliases": ["dep_up"]},
    "take_ownership": {"type": "bool", "default": False},
    "post_renderer": {"type": "str"},
    "plain_http": {"type": "bool", "default": False},
    "insecure_skip_tls_verify": {"type": "bool", "default": False, "aliases": ["skip_tls_certs_check"]},
}


def registry_login(params: dict[str, t.Any], chart_ref: str) -> RegistryLogin | None:
    """The registry credentials of a task, validated (no side effect)."""
    username, password = params.get("chart_repo_username"), params.get("chart_repo_password")
    if username is None and password is None:
        return None
    if username is None or password is None:
        missing = "chart_repo_username" if username is None else "chart_repo_password"
        raise InputError("chart_repo_username and chart_repo_password go together; "
                         f"{missing} is missing.", option=missing)
    host = oci_registry_host(chart_ref)
    if host is None:
        # helm takes a chart repository's password only on its command line (--password).
        raise InputError(
            "chart_repo_username and chart_repo_password apply to oci:// charts only: helm would take a "
            "chart repository's password on its command line. Add the repository with "
            "'helm repo add --password-stdin' and use chart_ref: <repo>/<chart>.", option="chart_repo_username")
    validate.argument(username, "chart_repo_username")
    if ":" in username:
        raise InputError("chart_repo_username cannot contain ':' (HTTP basic authentication).", option="chart_repo_username")
    if not password:
        raise InputError("chart_repo_password is empty.", option="chart_repo_password")
    return RegistryLogin(host, username, password)


def deploy_spec(params: dict[str, t.Any], name: str, namespace: str, timeout: float | None) -> DeploySpec:
    """The DeploySpec of a task, validated (no side effect). helm_deploy's dry run and real run
    and helm_preflight's render all come from here; options a module does not have (helm_preflight
    has no wait or atomic) take helm_deploy's defaults, which do not change what renders."""
    p = params
    if p.get("chart_ref") is None:
        raise InputError("chart_ref is required to render the release (helm_deploy: with state=present).", option="chart_ref")
    ca_file = validate.optional_argument(p.get("chart_ca_cert"), "chart_ca_cert")
    if ca_file is not None and not os.path.isfile(ca_file):
        raise InputError(f"chart_ca_cert {ca_file!r} is not a file on the host that runs the module.", option="chart_ca_cert")
    chart = ChartSource(
        validate.chart_ref(p["chart_ref"]),
        validate.url(p["chart_repo_url"], "chart_repo_url") if p.get("chart_repo_url") is not None else None,
        validate.optional_argument(p.get("chart_version"), "chart_version"),
        bool(p.get("dependency_update")),
        plain_http=bool(p.get("plain_http")),
        insecure_skip_tls_verify=bool(p.get("insecure_skip_tls_verify")),
        ca_file=ca_file,
    )
    chart.login = registry_login(p, chart.ref)
    values_files = validate.values_files(p.get("values_files") or [])
    validate.values_size(p.get("release_values"), values_files)
    set_values = []
    for item in p.get("set_values") or []:
        if not item["value"] or "=" not in item["value"]:
            raise InputError("each set_values item needs a value of the form key=value.", option="set_values")
        set_values.append(SetValue(item["value"], item["value_type"]))
    validate.set_values([(item.value_type, item.value) for item in set_values])
    return DeploySpec(
        release=name,
        namespace=namespace,
        chart=chart,
        values_files=values_files,
        values=p.get("release_values") or None,
        set_values=set_values,
        create_namespace=bool(p.get("create_namespace")),
        wait=bool(p.get("wait")),
        wait_strategy=p.get("wait_strategy"),
        wait_for_jobs=bool(p.get("wait_for_jobs")),
        timeout=validate.go_duration(timeout) if timeout is not None else None,
        atomic=bool(p.get("atomic")),
        history_max=p.get("history_max"),
        skip_crds=bool(p.get("skip_crds")),
        skip_schema_validation=bool(p.get("skip_schema_validation")),
        disable_hooks=bool(p.get("disable_hook")),
        force=bool(p.get("force")),
        reset_values=p.get("reset_values", True),
        reuse_values=bool(p.get("reuse_values")),
        reset_then_reuse_values=bool(p.get("reset_then_reuse_values")),
        cleanup_on_fail=bool(p.get("cleanup_on_fail")),
        description=validate.optional_argument(p.get("description"), "description"),
        server_side=p.get("server_side"),
        force_conflicts=bool(p.get("force_conflicts")),
        take_ownership=bool(p.get("take_ownership")),
        post_renderer=validate.optional_argument(p.get("post_renderer"), "post_renderer"),
    )


def argument_spec(**specific: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(copy.deepcopy(HELM_ARG_SPEC))
    spec.update(copy.deepcopy(RELEASE_ARG_SPEC))
    spec.update(specific)
    return spec


class EngineModule(AnsibleModule):
    """AnsibleModule whose every failure carries ``error.kind``: the argument spec's own
    rejections (a missing option, a wrong type, a bad choice) become ``invalid_arguments``."""

    def fail_json(self, msg: str, **kwargs: t.Any) -> t.NoReturn:  # type: ignore[override]
        kwargs.setdefault("error", {"kind": INVALID_ARGUMENTS, "message": msg})
        kwargs.setdefault("changed", False)
        super().fail_json(msg=msg, **kwargs)


def recovery_policy(params: dict[str, t.Any], timeout: float | None) -> RecoveryPolicy:
    """The RECOVERY options, validated."""
    stale = validate.duration_seconds(params.get("stale_pending_after"), "stale_pending_after")
    lock_wait = validate.duration_seconds(params.get("lock_wait"), "lock_wait", default=0.0, allow_zero=True)
    return RecoveryPolicy(
        recover_pending=params.get("recover_pending", True),
        stale_pending_after=stale,
        lock_wait=lock_wait or 0.0,
        operation_timeout=timeout,
    )


# Files larger than this are refused by validate.values_size (or by helm) anyway.
_MAX_SECRET_FILE = 8 * 1024 * 1024


def _read_text_file(path: t.Any) -> str | None:
    """A file's text, or None when it cannot be read (validation or helm reports that later)."""
    if not isinstance(path, str) or not path:
        return None
    path = os.path.expanduser(path)
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > _MAX_SECRET_FILE:
            return None
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _read_values_file(path: t.Any) -> t.Any:
    """A values file as helm reads it (one YAML document), or None when it cannot be read."""
    text = _read_text_file(path)
    return None if text is None else validate.load_values_yaml(text)


def register_secrets(redactor: Redactor, params: dict[str, t.Any], values_params: t.Sequence[str] = ()) -> None:
    """Every secret of a task's parameters, as the task wrote it and as helm will read it."""
    KubeAuth(kubeconfig=params.get("kubeconfig") if isinstance(params.get("kubeconfig"), dict) else None,
             api_key=params.get("api_key")).register_secrets(redactor)
    for name in values_params:
        redactor.add_values(params.get(name))
    # What helm reads, not only what the task says: a chart or helm's error message can quote
    # a value from a values file, a --set-file, or a --set value helm unescaped.
    for path in params.get("values_files") or []:
        redactor.add_values(_read_values_file(path))
    for item in params.get("set_values") or []:
        expression = item.get("value") or ""
        value_type = item.get("value_type") or "raw"
        content = None
        if value_type == "file":
            content = _read_text_file(expression.partition("=")[2])
        redactor.add_set_value(expression, value_type, content)
    password = params.get("chart_repo_password")
    if password:
        redactor.add_secret(password)
        if params.get("chart_repo_username") is not None:
            # As it sits in the registry config and in an Authorization header.
            redactor.add_secret(RegistryLogin("", str(params["chart_repo_username"]), password).auth_token())


def redacted_invocation(params: dict[str, t.Any], redactor: Redactor, values_params: t.Sequence[str] = ()) -> dict[str, t.Any]:
    """module_args as Ansible would show them, with every secret redacted by us."""
    args = dict(params)
    for name in values_params:
        if args.get(name) is not None:
            args[name] = redactor.redact_values(args[name])
    if args.get("set_values"):
        args["set_values"] = [
            dict(item, value=redact_set_expression(item.get("value") or "")) for item in args["set_values"]
        ]
    if isinstance(args.get("kubeconfig"), dict):
        args["kubeconfig"] = "<redacted: inline kubeconfig>"
    for secret in ("api_key", "chart_repo_password"):
        if args.get(secret):
            args[secret] = "<redacted>"
    return {"module_args": args}


def _invocation_without_context(module: AnsibleModule, context_args: dict[str, t.Any]) -> dict[str, t.Any]:
    """A task refused while its context was being built (an invalid name, context, api_key):
    Ansible's own invocation would show the parameters with only the secrets we registered
    masked (see relax_no_log), an inline kubeconfig whole; ours redacts them."""
    redactor = Redactor(context_args.get("sensitive_paths") or ())
    values_params = context_args.get("values_params") or ()
    register_secrets(redactor, module.params, values_params)
    return redacted_invocation(module.params, redactor, values_params)


def fail_fast_policy(params: dict[str, t.Any], waits: bool) -> FailFastPolicy:
    """The fail_fast options, validated; on by default whenever helm waits."""
    restarts = params.get("fail_fast_restarts", 3)
    if restarts is None or restarts < 1:
        raise InputError(f"fail_fast_restarts must be 1 or more, got {restarts}.", option="fail_fast_restarts")
    grace = validate.duration_seconds(params.get("fail_fast_grace", "30s"), "fail_fast_grace", default=30.0, allow_zero=True)
    enabled = params.get("fail_fast")
    return FailFastPolicy(enabled=waits if enabled is None else bool(enabled) and waits, restarts=restarts, grace=grace or 0.0)


class TaskContext:
    """Resources of one task: redactor, private workspace, the helm client, the kube client.

    Building it validates every input the modules share (release name, namespace, kubeconfig,
    context, host, the helm binary) and touches neither helm nor the cluster."""

    def __init__(
        self,
        module: AnsibleModule,
        *,
        values_params: t.Sequence[str] = (),
        sensitive_paths: t.Sequence[str] = (),
        needs_helm: bool = True,
        timeout: float | None = None,
    ) -> None:
        self.module = module
        self.check_mode = bool(module.check_mode)
        self.started = time.monotonic()
        self.redactor = Redactor(sensitive_paths)
        self._values_params = values_params
        self._needs_helm = needs_helm
        self._kube: KubeClient | None = None
        self._helm: HelmClient | None = None
        self.workspace: Workspace | None = None
        # First: registering secrets walks the values, which must not nest without end.
        validate.values_nesting(module.params, values_params, _read_text_file)
        register_secrets(self.redactor, module.params, values_params)
        # Before any input is judged: a refusal message must not come back masked by Ansible.
        self.relax_no_log()
        params = module.params
        self.name = validate.release_name(params.get("name"))
        self.namespace = validate.namespace(params.get("namespace"))
        if params.get("host") is not None:
            validate.url(params["host"], "host")
        if params.get("context") is not None:
            validate.argument(params["context"], "context")
        if params.get("api_key"):  # an empty K8S_AUTH_API_KEY means none
            validate.api_key(params["api_key"])
        if params.get("ca_cert") is not None and not os.path.isfile(params["ca_cert"]):
            raise EngineError(INVALID_ARGUMENTS, f"ca_cert {params['ca_cert']!r} is not a file.", details={"option": "ca_cert"})
        self.auth = KubeAuth.from_params(params)
        self.binary = self._helm_binary(params.get("binary_path")) if needs_helm else None
        self.view = self.auth.view()
        self.timeout = timeout
        # The only side effect so far: a private 0700 dir for values and kubeconfig copies.
        self.workspace = Workspace(getattr(module, "tmpdir", None))
        try:
            self.kubeconfig = self.auth.effective_kubeconfig(self.workspace, self.view)
        except BaseException:
            self.workspace.close()
            raise

    def _helm_binary(self, binary_path: str | None) -> str:
        if binary_path is not None:
            validate.argument(binary_path, "binary_path")
            binary = os.path.expanduser(binary_path)
        else:
            binary = self.module.get_bin_path("helm") or ""
        if not binary or not os.path.exists(binary):
            where = repr(binary_path) if binary_path else "not on PATH"
            raise HelmError(HELM_MISSING, f"helm was not found ({where}). Install helm 3.13+ or helm 4, or set binary_path.")
        if os.path.isdir(binary) or not os.access(binary, os.X_OK):
            raise HelmError(HELM_MISSING, f"helm at {binary!r} is not an executable file.")
        return binary

    def _kubeconfig_is_generated(self) -> bool:
        return bool(self.kubeconfig and self.workspace and self.kubeconfig.startswith(self.workspace.path))

    def relax_no_log(self) -> None:
        """Values and kubeconfig dicts are no_log so the module's syslog line never holds them,
        but Ansible would then also mask every equal string anywhere in the result ("3",
        "nginx", "true"). Keep Ansible's masking for the real secrets only; the rest of each
        tree is redacted structurally by our own code."""
        self.module.no_log_values.intersection_update(self.redactor.secrets | {self.module.params.get("api_key") or ""})

    @property
    def helm(self) -> HelmClient:
        if self._helm is None:
            self._helm = HelmClient(
                run_process,
                self.binary or "helm",
                kubeconfig=self.kubeconfig,
                context=self.auth.context if not self._kubeconfig_is_generated() else None,
                redactor=self.redactor,
                workspace=self.workspace,
                timeout=self.timeout,
            )
        return self._helm

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            context = None if self._kubeconfig_is_generated() else self.auth.context
            self._kube = KubeClient(self.kubeconfig, context)
        return self._kube

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def invocation(self) -> dict[str, t.Any]:
        """module_args as Ansible would show them, with every secret redacted by us."""
        return redacted_invocation(self.module.params, self.redactor, self._values_params)

    def common_result(self) -> dict[str, t.Any]:
        """What every module returns, success or failure: its cost and what it ran."""
        helm = self._helm
        result: dict[str, t.Any] = {
            "commands": list(helm.commands) if helm else [],
            "helm_processes": helm.process_count if helm else 0,
            "kube_requests": self._kube.request_count if self._kube else 0,
            "duration": self.elapsed(),
            "invocation": self.invocation(),
        }
        if helm is not None and helm._version is not None:
            result["helm_version"] = helm._version.raw
        return result

    def close(self) -> None:
        if self.workspace is not None:
            self.workspace.close()


class Manager:
    """The phases of every module, in this order: ``validate`` every input (no side effect),
    ``prepare`` (detect helm, check version-dependent options), then ``execute`` (recover,
    render, act) and return the result. A rejected input can never follow a change."""

    # The managers that change a release name themselves here: they hold the release's lock
    # (a Lease, see _lock.py) from before recovery to the end of their operation.
    lock_operation: str | None = None

    def __init__(self, context: TaskContext) -> None:
        self.context = context
        self.module = context.module
        self.params = context.module.params
        self.check_mode = context.check_mode

    def validate(self) -> None:
        """Module-specific inputs; raise InputError."""

    def prepare(self) -> None:
        """Work that needs helm but changes nothing."""

    def execute(self) -> dict[str, t.Any]:
        raise NotImplementedError

    def settled_without_lock(self) -> dict[str, t.Any] | None:
        """A locking manager's result when it can tell, changing nothing, that there is
        nothing to do: a no-op then costs no lock requests. None: take the lock, execute."""
        return None

    def run(self) -> dict[str, t.Any]:
        self.validate()
        self.prepare()
        if self.lock_operation is None:
            return self.execute()
        settled = self.settled_without_lock()
        if settled is not None:
            return settled
        policy: RecoveryPolicy = getattr(self, "policy", None) or recovery_policy(self.params, self.context.timeout)
        # Check mode takes no lock, but reads it: a run the real one would refuse is refused.
        lock = ReleaseLock(
            KubeLeaseApi(self.context.kube), self.context.name, self.context.namespace,
            operation=self.lock_operation, duration=lease_duration(policy.stale_after),
            wait=policy.lock_wait, check_only=self.check_mode,
        )
        with lock:
            if lock.unlocked_reason and not lock.check_only and "may not" in lock.unlocked_reason:
                self.module.warn(f"Release {self.context.namespace}/{self.context.name} ran without its lock: "
                                 f"{lock.unlocked_reason}. Two runs at once are then only kept apart by helm's own checks.")
            # One lock_wait in all: what the lease took is not waited again for a pending revision.
            self.policy = dataclasses.replace(policy, lock_wait=max(0.0, policy.lock_wait - lock.waited))
            try:
                return self.execute()
            except EngineError as exc:
                if exc.kind == RELEASE_LOCKED and lock.unlocked_reason and not lock.check_only:
                    # helm's own words for a concurrent run ("release: already exists") say little.
                    exc.msg = (f"Another run changed release {self.context.namespace}/{self.context.name} at the same "
                               f"time (helm: {exc.msg}); it ran without the release's lock: {lock.unlocked_reason}.")
                raise


def build_result(context: TaskContext, fields: dict[str, t.Any]) -> dict[str, t.Any]:
    """The one result shape of the modules: their own fields, then the common ones, with
    ``changed`` false unless the cluster changed."""
    result = dict(fields)
    result.setdefault("changed", False)
    result.update(context.common_result())
    return result


def run_manager(
    module: AnsibleModule,
    manager_factory: t.Callable[[TaskContext], Manager],
    *,
    timeout_option: str | None = "timeout",
    **context_args: t.Any,
) -> t.NoReturn:
    """The one try/except of every module: known failures become fail_json with a stable kind,
    anything else ``internal_error`` with the traceback in ``exception``."""
    context = None
    try:
        timeout = validate.duration_seconds(module.params.get(timeout_option), timeout_option) if timeout_option else None
        context = TaskContext(module, timeout=timeout, **context_args)
        result = build_result(context, manager_factory(context).run())
        context.close()
        module.exit_json(**result)
    except EngineError as exc:
        result = exc.to_result()
        result.setdefault("changed", False)
        if context is not None:
            result.update(context.common_result())
            result["msg"] = context.redactor.redact_text(result["msg"])
            context.close()
        else:  # refused before the task's context existed: nothing ran
            result.update(commands=[], helm_processes=0, kube_requests=0, duration=0.0,
                          invocation=_invocation_without_context(module, context_args))
        module.fail_json(**result)
    except Exception as exc:  # a defect: say so in one line, keep the traceback for -vvv
        message = f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        if context is not None:
            message = context.redactor.redact_text(message) or message
            context.close()
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        module.fail_json(
            msg=message,
            error={"kind": INTERNAL_ERROR, "message": message},
            exception=context.redactor.redact_text(trace) if context is not None else trace,
            changed=False,
            invocation=context.invocation() if context is not None else _invocation_without_context(module, context_args),
        )
    raise AssertionError("unreachable")  # pragma: no cover
