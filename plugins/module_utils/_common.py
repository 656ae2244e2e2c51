# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""What every module of the collection shares: the argument spec for helm and cluster auth
(documented once in doc_fragments/helm_engine.py), the per-task context, and one way to turn
exceptions into results."""

from __future__ import annotations

import copy
import os
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import (
    HELM_MISSING,
    HelmClient,
    HelmError,
    Workspace,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeAuth, KubeClient
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor, redact_set_expression, split_path

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
    "stale_pending_after": {"type": "int"},
    "lock_wait": {"type": "int", "default": 0},
}


# Paired with the OPERATION doc fragment: options of helm_deploy and helm_rollback.
OPERATION_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "wait": {"type": "bool", "default": False},
    "wait_strategy": {"type": "str", "choices": ["watcher", "legacy"]},
    "timeout": {"type": "str"},
    "cleanup_on_fail": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "disable_hook": {"type": "bool", "default": False, "aliases": ["disable_hooks"]},
    "history_max": {"type": "int"},
    "sensitive_values": {"type": "list", "elements": "str", "default": []},
}


def argument_spec(**specific: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(copy.deepcopy(HELM_ARG_SPEC))
    spec.update(copy.deepcopy(RELEASE_ARG_SPEC))
    spec.update(specific)
    return spec


class TaskContext:
    """Resources of one task: redactor, private workspace, the helm client, the kube client."""

    def __init__(
        self,
        module: AnsibleModule,
        *,
        values_params: t.Sequence[str] = (),
        sensitive_paths: t.Sequence[str] = (),
        needs_helm: bool = True,
    ) -> None:
        self.module = module
        self.started = time.monotonic()
        self.redactor = Redactor(sensitive_paths)
        self.workspace = Workspace()
        self._values_params = values_params
        self._needs_helm = needs_helm
        self._kube: KubeClient | None = None
        try:
            self._setup(module.params)
        except BaseException:
            self.workspace.close()
            raise

    def _setup(self, params: dict[str, t.Any]) -> None:
        module = self.module
        for name in self._values_params:
            self.redactor.add_values(params.get(name))
        for item in params.get("set_values") or []:
            expression = item.get("value") or ""
            self.redactor.add_secret(expression)
            key, sep, value = expression.partition("=")
            if sep and self.redactor.is_sensitive(split_path(key)):
                # The value alone can surface in a rendered resource (a ConfigMap, an env var).
                self.redactor.add_secret(value)
        self.auth = KubeAuth.from_params(params)
        self.auth.register_secrets(self.redactor)
        self.relax_no_log()
        binary = params.get("binary_path") or module.get_bin_path("helm") or "helm"
        if self._needs_helm and not os.path.exists(binary):
            raise HelmError(
                HELM_MISSING,
                f"helm was not found ({binary if os.path.isabs(binary) else 'not on PATH'}). Install helm 3.13+ or helm 4, or set binary_path.",
            )
        self.kubeconfig = self.auth.effective_kubeconfig(self.workspace)
        self.helm = HelmClient(
            module.run_command,
            binary,
            kubeconfig=self.kubeconfig,
            context=self.auth.context if not self._kubeconfig_is_generated() else None,
            redactor=self.redactor,
            workspace=self.workspace,
        )

    def _kubeconfig_is_generated(self) -> bool:
        return bool(self.kubeconfig and self.kubeconfig.startswith(self.workspace.path))

    def relax_no_log(self) -> None:
        """Values and kubeconfig dicts are no_log so the module's syslog line never holds them,
        but Ansible would then also mask every equal string anywhere in the result ("3",
        "nginx", "true"). Keep Ansible's masking for the real secrets only; the rest of each
        tree is redacted structurally by our own code."""
        self.module.no_log_values.intersection_update(self.redactor.secrets | {self.module.params.get("api_key") or ""})

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
        args = dict(self.module.params)
        for name in self._values_params:
            if args.get(name) is not None:
                args[name] = self.redactor.redact_values(args[name])
        if args.get("set_values"):
            args["set_values"] = [
                dict(item, value=redact_set_expression(item.get("value") or "")) for item in args["set_values"]
            ]
        if isinstance(args.get("kubeconfig"), dict):
            args["kubeconfig"] = "<redacted: inline kubeconfig>"
        if args.get("api_key"):
            args["api_key"] = "<redacted>"
        return {"module_args": args}

    def common_result(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {
            "commands": list(self.helm.commands),
            "helm_processes": self.helm.process_count,
            "duration": self.elapsed(),
            "invocation": self.invocation(),
        }
        if self.helm._version is not None:
            result["helm_version"] = self.helm._version.raw
        return result

    def close(self) -> None:
        self.workspace.close()


def run_manager(module: AnsibleModule, manager_factory: t.Callable[[TaskContext], t.Any], **context_args: t.Any) -> t.NoReturn:
    """The one try/except of every module: known failures become fail_json with a stable kind."""
    context = None
    try:
        context = TaskContext(module, **context_args)
        result = manager_factory(context).run()
        result.update(context.common_result())
        module.exit_json(**result)
    except HelmError as exc:
        result = exc.to_result()
        if context is not None:
            result.update(context.common_result())
            result["msg"] = context.redactor.redact_text(result["msg"])
        module.fail_json(**result)
    finally:
        if context is not None:
            context.close()
    raise AssertionError("unreachable")  # pragma: no cover
