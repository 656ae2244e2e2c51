# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The task runtime every module shares: the task's context (redactor, workspace, helm and
Kubernetes clients), the Manager phases, and the one way a result or a failure leaves a module."""

from __future__ import annotations

import dataclasses
import functools
import os
import time
import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._args import (
    read_text_file,
    recovery_policy,
    redacted_invocation,
    register_secrets,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    HELM_MISSING,
    INTERNAL_ERROR,
    INVALID_ARGUMENTS,
    RELEASE_LOCKED,
    EngineError,
    HelmError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import HelmClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kubeconfig import KubeAuth
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._lock import KubeLeaseApi, ReleaseLock, lease_duration
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._process import run_process
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._rollout import RolloutWatcher
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import DEFAULT_HELM_TIMEOUT, FailFastPolicy, RecoveryPolicy
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._storage import ReleaseStore
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import Workspace


# A helm process lives a second or two and its heap is mostly the chart and the manifests it
# renders: collecting garbage four times less often than Go's default (GOGC=100) cut the CPU of
# 50 installs, 10 at a time on 2 cores, by 12 to 24 % for about a fifth more peak memory
# (bench/NOTES.md). Whatever the environment sets itself (GOGC, GOMEMLIMIT) wins.
HELM_ENVIRONMENT_DEFAULTS = {"GOGC": "400"}


def helm_environment(base: t.Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment helm runs in: ``base`` (this process's), with HELM_ENVIRONMENT_DEFAULTS
    for what it does not set."""
    environment = dict(os.environ if base is None else base)
    for name, value in HELM_ENVIRONMENT_DEFAULTS.items():
        environment.setdefault(name, value)
    return environment


class EngineModule(AnsibleModule):
    """AnsibleModule whose every failure carries ``error.kind``: the argument spec's own
    rejections (a missing option, a wrong type, a bad choice) become ``invalid_arguments``."""

    def fail_json(self, msg: str, **kwargs: t.Any) -> t.NoReturn:  # type: ignore[override]
        kwargs.setdefault("error", {"kind": INVALID_ARGUMENTS, "message": msg})
        kwargs.setdefault("changed", False)
        super().fail_json(msg=msg, **kwargs)


def _invocation_without_context(module: AnsibleModule, context_args: dict[str, t.Any],
                                context_class: type[TaskContext]) -> dict[str, t.Any]:
    """A task refused while its context was being built (an invalid name, context, api_key):
    Ansible's own invocation would show the parameters with only the secrets we registered
    masked (see relax_no_log), an inline kubeconfig whole; ours redacts them."""
    redactor = Redactor(context_args.get("sensitive_paths") or ())
    values_params = context_args.get("values_params") or ()
    register_secrets(redactor, module.params, values_params)
    return context_class.shown_invocation(module.params, redactor, values_params)


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
        one_release: bool = True,
    ) -> None:
        self.module = module
        self.check_mode = bool(module.check_mode)
        self.started = time.monotonic()
        self.redactor = Redactor(sensitive_paths)
        self._values_params = values_params
        self.workspace: Workspace | None = None
        # The contexts of the releases a multi-release task runs (see _releases.py).
        self.children: list[TaskContext] = []
        # First: registering secrets walks the values, which must not nest without end.
        validate.values_nesting(module.params, values_params, read_text_file)
        register_secrets(self.redactor, module.params, values_params)
        # Before any input is judged: a refusal message must not come back masked by Ansible.
        self.relax_no_log()
        self._bind(module.params, needs_helm=needs_helm, timeout=timeout, one_release=one_release,
                   workspace_parent=getattr(module, "tmpdir", None))

    def _bind(self, params: dict[str, t.Any], *, needs_helm: bool, timeout: float | None, one_release: bool = True,
              workspace_parent: str | None = None) -> None:
        """Validates the release and connection inputs of ``params`` and builds the effective
        kubeconfig; the workspace is made here unless the context shares one."""
        self._kube: KubeClient | None = None
        self._store: ReleaseStore | None = None
        self._helm: HelmClient | None = None
        self.name = validate.release_name(params.get("name")) if one_release else ""
        self.namespace = validate.namespace(params.get("namespace")) if one_release else ""
        if params.get("host") is not None:
            validate.url(params["host"], "host")
        if params.get("context") is not None:
            validate.argument(params["context"], "context")
        if params.get("api_key"):  # an empty K8S_AUTH_API_KEY means none
            validate.api_key(params["api_key"])
        if params.get("ca_cert") is not None and not os.path.isfile(params["ca_cert"]):
            raise EngineError(INVALID_ARGUMENTS, f"ca_cert {params['ca_cert']!r} is not a file.", details={"option": "ca_cert"})
        self.auth = KubeAuth.from_params(params)
        self.binary = self.find_helm() if needs_helm else None
        self.view = self.auth.view()
        self.timeout = timeout
        owns_workspace = self.workspace is None
        if owns_workspace:
            # The only side effect so far: a private 0700 dir for values and kubeconfig copies.
            self.workspace = Workspace(workspace_parent)
        try:
            self.kubeconfig = self.auth.effective_kubeconfig(self.workspace, self.view)
        except BaseException:
            if owns_workspace:
                self.workspace.close()
            raise

    @property
    def params(self) -> dict[str, t.Any]:
        return self.module.params

    @property
    def diff(self) -> bool:
        """Whether the task runs with --diff."""
        return bool(getattr(self.module, "_diff", False))

    def warn(self, message: str) -> None:
        self.module.warn(message)

    def find_helm(self) -> str:
        """The helm binary the task runs (binary_path, else helm on PATH), or helm_missing."""
        binary_path = self.params.get("binary_path")
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

    def detect_helm(self) -> HelmClient:
        """The helm client with its binary found and its version detected, so that a missing
        or unsupported helm, or an option its major lacks, is refused before anything changes.
        A module that can report a missing helm among other problems (helm_preflight) calls
        this late; the others find the binary while the context is built."""
        if self.binary is None:
            self.binary = self.find_helm()
        self.helm.version  # noqa: B018 - detection is the point
        return self.helm

    @property
    def helm(self) -> HelmClient:
        if self._helm is None:
            self._helm = HelmClient(
                functools.partial(run_process, env=helm_environment()),
                self.binary or "helm",
                kubeconfig=self.kubeconfig,
                context=self.auth.context if not self._kubeconfig_is_generated() else None,
                redactor=self.redactor,
                workspace=self.workspace,
                timeout=self.timeout,
            )
        return self._helm

    @property
    def store(self) -> ReleaseStore:
        """helm's release records; every revision it decodes registers its values as secrets."""
        if self._store is None:
            self._store = ReleaseStore(self.kube, self.redactor)
        return self._store

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            context = None if self._kubeconfig_is_generated() else self.auth.context
            self._kube = KubeClient(self.kubeconfig, context)
        return self._kube

    def rollout_watcher(self, manifest: str | t.Callable[[], str | None], policy: FailFastPolicy | None = None) -> RolloutWatcher:
        """The watcher of a release's workloads in the task's namespace, its evidence redacted;
        it judges a rollout within the task's timeout (helm's default without one)."""
        return RolloutWatcher(self.kube, self.namespace, manifest, policy or FailFastPolicy(),
                              redact=self.redactor.redact_text, timeout=self.timeout or DEFAULT_HELM_TIMEOUT)

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)

    @staticmethod
    def shown_invocation(params: dict[str, t.Any], redactor: Redactor, values_params: t.Sequence[str]) -> dict[str, t.Any]:
        """module_args as Ansible would show them, with every secret redacted by us."""
        return redacted_invocation(params, redactor, values_params)

    def invocation(self) -> dict[str, t.Any]:
        return self.shown_invocation(self.module.params, self.redactor, self._values_params)

    def helm_usage(self) -> tuple[list[str], int]:
        """The helm commands this context ran, and how many processes."""
        return (list(self._helm.commands), self._helm.process_count) if self._helm else ([], 0)

    def common_result(self) -> dict[str, t.Any]:
        """What every module returns, success or failure: its cost and what it ran (with the
        contexts of the releases it ran, when it ran several)."""
        contexts = [self] + list(self.children)
        commands = [command for context in contexts for command in context.helm_usage()[0]]
        kubes = {id(context._kube): context._kube for context in contexts if context._kube is not None}
        result: dict[str, t.Any] = {
            "commands": commands,
            "helm_processes": sum(context.helm_usage()[1] for context in contexts),
            "kube_requests": sum(kube.request_count for kube in kubes.values()),
            "duration": self.elapsed(),
            "invocation": self.invocation(),
        }
        versions = [c._helm.detected_version.raw for c in contexts if c._helm is not None and c._helm.detected_version]
        if versions:
            result["helm_version"] = versions[0]
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
        self.params = context.params
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
                self.context.warn(f"Release {self.context.namespace}/{self.context.name} ran without its lock: "
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
    ``changed`` false unless the cluster changed; swept for every secret the task knows, so
    a field a module forgot to redact cannot carry one out."""
    result = dict(fields)
    result.setdefault("changed", False)
    result.update(context.common_result())
    return context.redactor.redact_tree(result)


def failure_result(context: TaskContext, exc: EngineError) -> dict[str, t.Any]:
    """A failure's result, shaped and swept like a success's (see build_result)."""
    return build_result(context, exc.to_result())


def run_manager(
    module: AnsibleModule,
    manager_factory: t.Callable[[TaskContext], Manager],
    *,
    timeout_option: str | None = "timeout",
    context_class: type[TaskContext] = TaskContext,
    **context_args: t.Any,
) -> t.NoReturn:
    """The one try/except of every module: known failures become fail_json with a stable kind,
    anything else ``internal_error`` with the traceback in ``exception``."""
    context = None
    try:
        timeout = validate.duration_seconds(module.params.get(timeout_option), timeout_option) if timeout_option else None
        context = context_class(module, timeout=timeout, **context_args)
        result = build_result(context, manager_factory(context).run())
        context.close()
        module.exit_json(**result)
    except EngineError as exc:
        if context is not None:
            result = failure_result(context, exc)
            context.close()
        else:  # refused before the task's context existed: nothing ran
            result = dict(exc.to_result(), changed=False, commands=[], helm_processes=0, kube_requests=0, duration=0.0,
                          invocation=_invocation_without_context(module, context_args, context_class))
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
            invocation=context.invocation() if context is not None else _invocation_without_context(module, context_args, context_class),
        )
    raise AssertionError("unreachable")  # pragma: no cover
