# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""A task's parameters: the argument specs the modules share, each paired with the doc fragment
that documents it (doc_fragments/helm_engine.py), and their conversion into specs and policies
(validated, no side effect), and into the secrets the task carries."""

from __future__ import annotations

import copy
import os
import typing as t

from ansible.module_utils.basic import env_fallback

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _validate as validate
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import InputError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kubeconfig import KubeAuth
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor, redact_set_expression
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import (
    ChartSource,
    DeploySpec,
    DriftPolicy,
    FailFastPolicy,
    IgnoreRule,
    RecoveryPolicy,
    RegistryLogin,
    SetValue,
    oci_registry_host,
)

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


# Paired with the DRIFT doc fragment: helm_deploy's drift option and both modules' ignore rules.
DRIFT_IGNORE_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "drift_ignore": {"type": "list", "elements": "dict", "default": []},
}

# helm_deploy's own options besides the shared ones (paired with its DOCUMENTATION), also every
# item of helm_releases.
DEPLOY_ARG_SPEC: dict[str, dict[str, t.Any]] = {
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present", "aliases": ["release_state"]},
    "wait_for_jobs": {"type": "bool", "default": False},
    "wait_timeout": {"type": "raw"},
    "atomic": {"type": "bool", "default": False},
    "reset_values": {"type": "bool", "default": True},
    "reuse_values": {"type": "bool"},
    "reset_then_reuse_values": {"type": "bool", "default": False},
    "update_repo_cache": {"type": "bool", "default": False},
    "description": {"type": "str"},
    "server_side": {"type": "str", "choices": ["true", "false", "auto"]},
    "force_conflicts": {"type": "bool", "default": False},
    "keep_history": {"type": "bool", "default": False},
    "purge": {"type": "bool", "default": True},
    "replace": {"type": "bool", "default": False},
    "drift": {"type": "str", "choices": ["correct", "detect", "ignore"], "default": "correct"},
    "cleanup": {"type": "list", "elements": "str", "choices": ["hooks", "volume_claims", "namespace"], "default": []},
    **DRIFT_IGNORE_ARG_SPEC,
    **CHART_ARG_SPEC,
    **OPERATION_ARG_SPEC,
    **RECOVERY_ARG_SPEC,
}
DEPLOY_EXCLUSIVE = [("wait_timeout", "timeout"), ("replace", "history_max"), ("force", "server_side"),
                    ("force", "force_conflicts"), ("reuse_values", "reset_then_reuse_values")]


def connection_argument_spec(**specific: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """The cluster and helm options alone (a module with no release of its own), and ``specific``."""
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(copy.deepcopy(HELM_ARG_SPEC))
    spec.update(copy.deepcopy(specific))
    return spec


def argument_spec(**specific: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(copy.deepcopy(HELM_ARG_SPEC))
    spec.update(copy.deepcopy(RELEASE_ARG_SPEC))
    spec.update(copy.deepcopy(specific))
    return spec


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


def fail_fast_policy(params: dict[str, t.Any], waits: bool) -> FailFastPolicy:
    """The fail_fast options, validated; on by default whenever helm waits."""
    restarts = params.get("fail_fast_restarts", 3)
    if restarts is None or restarts < 1:
        raise InputError(f"fail_fast_restarts must be 1 or more, got {restarts}.", option="fail_fast_restarts")
    grace = validate.duration_seconds(params.get("fail_fast_grace", "30s"), "fail_fast_grace", default=30.0, allow_zero=True)
    enabled = params.get("fail_fast")
    return FailFastPolicy(enabled=waits if enabled is None else bool(enabled) and waits, restarts=restarts, grace=grace or 0.0)


MAX_IGNORE_RULES = 200


def drift_policy(params: dict[str, t.Any], mode: str = "correct") -> DriftPolicy:
    """``drift`` and ``drift_ignore``, validated: each rule a dict with an optional kind and
    name and a non-empty list of JSON pointers (``/spec/replicas``; ``""`` for the whole object)."""
    items = params.get("drift_ignore") or []
    if len(items) > MAX_IGNORE_RULES:
        raise InputError(f"drift_ignore has {len(items)} rules; at most {MAX_IGNORE_RULES}.", option="drift_ignore")
    rules = []
    for index, item in enumerate(items):
        where = f"drift_ignore[{index}]"
        if set(item) - {"kind", "name", "paths"}:
            unknown = ", ".join(sorted(map(str, set(item) - {"kind", "name", "paths"})))
            raise InputError(f"{where} has unknown keys ({unknown}); it takes kind, name and paths.", option="drift_ignore")
        try:
            kind = validate.argument(item["kind"], f"{where}.kind") if item.get("kind") is not None else None
            name = validate.argument(item["name"], f"{where}.name") if item.get("name") is not None else None
        except InputError as exc:
            raise InputError(exc.msg, option="drift_ignore") from None
        paths = item.get("paths")
        if not isinstance(paths, list) or not paths:
            raise InputError(f"{where}.paths must be a non-empty list of JSON pointers such as /spec/replicas.",
                             option="drift_ignore")
        for path in paths:
            if not isinstance(path, str) or (path and not path.startswith("/")) or validate.has_control_characters(path):
                raise InputError(f"{where}.paths: {str(path)[:80]!r} is not a JSON pointer (one starts with /).",
                                 option="drift_ignore")
        rules.append(IgnoreRule(kind, name, tuple(paths)))
    return DriftPolicy(mode=params.get("drift") or mode, rules=tuple(rules))


# Files larger than this are refused by validate.values_size (or by helm) anyway.
_MAX_SECRET_FILE = 8 * 1024 * 1024


def read_text_file(path: t.Any) -> str | None:
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
    text = read_text_file(path)
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
            content = read_text_file(expression.partition("=")[2])
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
