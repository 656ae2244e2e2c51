# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""One kubeconfig for helm and the Kubernetes client: the user's file as is when nothing
overrides it, otherwise a 0600 temp file that merges the overrides (host, api_key, ca_cert,
validate_certs, an inline dict), checked for shape before either client reads it."""

from __future__ import annotations

import json
import os
import typing as t
from dataclasses import dataclass, field

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import KUBECONFIG_INVALID, InputError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import SENSITIVE_KEY, Redactor
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import Workspace, json_for_helm

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    HAS_YAML = False

_KUBECONFIG_SECRET_KEYS = ("token", "client-key-data", "password", "id-token", "refresh-token", "client-secret")
# Paths in a kubeconfig are relative to the file that holds them (kubectl's rule); a merged
# copy written elsewhere must carry them absolute.
_RELATIVE_PATH_KEYS = {"clusters": ("certificate-authority",), "users": ("client-certificate", "client-key", "tokenFile")}
_KUBECONFIG_MAX_BYTES = 4 * 1024 * 1024


@dataclass
class KubeconfigView:
    """The kubeconfig as kubectl would see it: every file merged, first definition wins."""

    config: dict[str, t.Any] | None
    sources: list[str] = field(default_factory=list)

    @property
    def contexts(self) -> dict[str, dict[str, t.Any]]:
        return {c["name"]: c.get("context") or {} for c in (self.config or {}).get("contexts") or []}


def _read_kubeconfig(path: str) -> dict[str, t.Any]:
    shown = repr(path)
    if os.path.isdir(path):
        raise InputError(f"kubeconfig {shown} is a directory, not a file.", kind=KUBECONFIG_INVALID, option="kubeconfig")
    try:
        if os.path.getsize(path) > _KUBECONFIG_MAX_BYTES:
            raise InputError(f"kubeconfig {shown} is larger than 4 MiB.", kind=KUBECONFIG_INVALID, option="kubeconfig")
        with open(path, encoding="utf-8") as handle:
            loaded = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise InputError(f"kubeconfig {shown} cannot be read: {exc.strerror or exc}.", kind=KUBECONFIG_INVALID, option="kubeconfig") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise InputError(f"kubeconfig {shown} is not valid YAML{at}.", kind=KUBECONFIG_INVALID, option="kubeconfig") from None
    if loaded is None:
        loaded = {}
    _check_shape(loaded, shown)
    base = os.path.dirname(os.path.abspath(path))
    for section, keys in _RELATIVE_PATH_KEYS.items():
        inner = section[:-1]
        for entry in loaded.get(section) or []:
            body = entry.get(inner) or {}
            for key in keys:
                value = body.get(key)
                if isinstance(value, str) and value and not os.path.isabs(value):
                    body[key] = os.path.join(base, os.path.expanduser(value))
    return loaded


def _check_shape(config: t.Any, shown: str) -> None:
    """The structure kubectl and helm expect; anything else fails here with a readable message
    instead of a traceback deep in a client library."""
    def bad(what: str) -> t.NoReturn:
        raise InputError(f"kubeconfig {shown}: {what}.", kind=KUBECONFIG_INVALID, option="kubeconfig")

    if not isinstance(config, dict):
        bad(f"the document is a {type(config).__name__}, not a mapping")
    for section in ("clusters", "users", "contexts"):
        entries = config.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            bad(f"'{section}' is a {type(entries).__name__}, not a list")
        inner = section[:-1]
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
                bad(f"{section}[{index}] has no name")
            body = entry.get(inner)
            if body is not None and not isinstance(body, dict):
                bad(f"{section}[{index}] ({entry['name']}): '{inner}' is a {type(body).__name__}, not a mapping")
    current = config.get("current-context")
    if current is not None and not isinstance(current, str):
        bad("'current-context' is not a string")


def merge_kubeconfigs(configs: t.Sequence[dict[str, t.Any]]) -> dict[str, t.Any]:
    """kubectl's merge: named entries from the first file that defines them, the first
    current-context that is set."""
    merged: dict[str, t.Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for config in configs:
        for section in ("clusters", "users", "contexts"):
            known = {e["name"] for e in merged[section]}
            merged[section] += [e for e in config.get(section) or [] if e["name"] not in known]
        if not merged.get("current-context") and config.get("current-context"):
            merged["current-context"] = config["current-context"]
        for key in ("preferences", "extensions"):
            if key in config and key not in merged:
                merged[key] = config[key]
    return merged


@dataclass
class KubeAuth:
    """kubernetes.core's auth options, resolved once per task."""

    kubeconfig: str | dict[str, t.Any] | None = None
    context: str | None = None
    host: str | None = None
    api_key: str | None = None
    ca_cert: str | None = None
    validate_certs: bool | None = None

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> KubeAuth:
        kubeconfig = params.get("kubeconfig")
        if kubeconfig is not None and not isinstance(kubeconfig, (str, dict)):
            raise InputError(
                f"kubeconfig must be a path or a dictionary, got a {type(kubeconfig).__name__}; "
                "to merge several files, give one path or set KUBECONFIG=a:b.",
                option="kubeconfig",
            )
        if isinstance(kubeconfig, str) and not kubeconfig.strip():
            raise InputError("kubeconfig is an empty string; leave it unset to use KUBECONFIG or ~/.kube/config.", option="kubeconfig")
        return cls(
            kubeconfig=kubeconfig,
            context=params.get("context"),
            host=params.get("host"),
            api_key=params.get("api_key"),
            ca_cert=params.get("ca_cert"),
            validate_certs=params.get("validate_certs"),
        )

    def register_secrets(self, redactor: Redactor) -> None:
        """The credentials of every user of an inline kubeconfig, used or not: its tokens, an
        auth-provider's tokens and client secret, an exec plugin's secret env values and
        ``--token X``/``--token=X`` arguments."""
        redactor.add_secret(self.api_key)
        if not isinstance(self.kubeconfig, dict):
            return
        for user in self.kubeconfig.get("users") or []:
            body = user.get("user") if isinstance(user, dict) else None
            if not isinstance(body, dict):
                continue
            for key in _KUBECONFIG_SECRET_KEYS:
                redactor.add_secret(body.get(key))
            provider = body.get("auth-provider")
            if isinstance(provider, dict) and isinstance(provider.get("config"), dict):
                for key, value in provider["config"].items():
                    if SENSITIVE_KEY.search(str(key)):
                        redactor.add_secret(value)
            plugin = body.get("exec")
            if isinstance(plugin, dict):
                for env in plugin.get("env") or []:
                    if isinstance(env, dict) and SENSITIVE_KEY.search(str(env.get("name", ""))):
                        redactor.add_secret(env.get("value"))
                args = [str(a) for a in plugin.get("args") or []]
                for flag, value in zip(args, args[1:] + [""]):
                    name, sep, inline = flag.partition("=")
                    if name.startswith("-") and SENSITIVE_KEY.search(name):
                        redactor.add_secret(inline if sep else value)

    def _needs_override(self) -> bool:
        return isinstance(self.kubeconfig, dict) or any(
            v is not None for v in (self.host, self.api_key, self.ca_cert)
        ) or self.validate_certs is False

    def _source_paths(self) -> list[str]:
        if isinstance(self.kubeconfig, str):
            path = os.path.expanduser(self.kubeconfig)
            if not os.path.exists(path):
                raise InputError(f"kubeconfig {self.kubeconfig!r} does not exist.", kind=KUBECONFIG_INVALID, option="kubeconfig")
            return [path]
        if self.kubeconfig is not None:
            return []
        env = os.environ.get("KUBECONFIG")
        if env:
            # kubectl and helm skip entries that do not exist.
            return [os.path.expanduser(p) for p in env.split(os.pathsep) if p and os.path.exists(os.path.expanduser(p))]
        default = os.path.expanduser("~/.kube/config")
        return [default] if os.path.exists(default) else []

    def view(self) -> KubeconfigView:
        """Reads and checks the kubeconfig (no request is made): shape, context, server."""
        if isinstance(self.kubeconfig, dict):
            config = json.loads(json.dumps(self.kubeconfig, default=str))
            _check_shape(config, "(inline)")
            view = KubeconfigView(config)
        else:
            paths = self._source_paths()
            configs = [_read_kubeconfig(p) for p in paths]
            view = KubeconfigView(merge_kubeconfigs(configs) if configs else None, paths)
        if view.config is not None:
            contexts = view.contexts
            name = self.context or view.config.get("current-context")
            if self.context and self.context not in contexts:
                known = ", ".join(sorted(contexts)[:20]) or "none"
                raise InputError(f"context {self.context!r} is not in the kubeconfig (contexts: {known}).", option="context")
            if not self.host:
                if not name:
                    raise InputError("the kubeconfig sets no current-context; set context or host.", kind=KUBECONFIG_INVALID, option="context")
                if name:
                    cluster = contexts.get(name, {}).get("cluster")
                    servers = {c["name"]: (c.get("cluster") or {}).get("server") for c in view.config.get("clusters") or []}
                    if not servers.get(cluster):
                        raise InputError(
                            f"context {name!r} names cluster {cluster!r}, which the kubeconfig does not define with a server.",
                            kind=KUBECONFIG_INVALID, option="context",
                        )
        elif not self.host and not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise InputError(
                "No kubeconfig found: set kubeconfig (or K8S_AUTH_KUBECONFIG), KUBECONFIG, or create ~/.kube/config.",
                kind=KUBECONFIG_INVALID, option="kubeconfig",
            )
        return view

    def effective_kubeconfig(self, workspace: Workspace, view: KubeconfigView | None = None) -> str | None:
        """The kubeconfig path helm and the client both use; None means in-cluster. The user's
        file is used as is when it alone is the view; a merge or an override is written to a
        0600 temp file, so helm and the client can never see different clusters."""
        view = view or self.view()
        if not self._needs_override() and len(view.sources) == 1:
            return view.sources[0]
        if view.config is None and not self._needs_override():
            return None
        config = view.config or {}
        self._apply_overrides(config)
        return workspace.write_private("kubeconfig", json_for_helm(config))

    def _apply_overrides(self, config: dict[str, t.Any]) -> None:
        config.setdefault("apiVersion", "v1")
        config.setdefault("kind", "Config")
        # "or []" alone would detach the list from config when the file has clusters: null.
        clusters = config["clusters"] = config.get("clusters") or []
        users = config["users"] = config.get("users") or []
        contexts = config["contexts"] = config.get("contexts") or []
        context_name = self.context or config.get("current-context")
        context = next((c for c in contexts if c.get("name") == context_name), None)
        if context is None:
            if context_name and contexts:
                raise InputError(f"context {context_name!r} is not in the kubeconfig.", option="context")
            context = {"name": "helm-engine", "context": {"cluster": "helm-engine", "user": "helm-engine"}}
            contexts.append(context)
        config["current-context"] = context["name"]
        body = context.setdefault("context", {})
        cluster_name = body.get("cluster") or "helm-engine"
        user_name = body.get("user") or "helm-engine"
        body.setdefault("cluster", cluster_name)
        body.setdefault("user", user_name)
        cluster = _named(clusters, cluster_name, "cluster")
        user = _named(users, user_name, "user")
        if self.host:
            cluster["server"] = self.host
        if self.ca_cert:
            cluster["certificate-authority"] = os.path.abspath(os.path.expanduser(self.ca_cert))
            cluster.pop("certificate-authority-data", None)
        if self.validate_certs is False:
            cluster["insecure-skip-tls-verify"] = True
            cluster.pop("certificate-authority", None)
            cluster.pop("certificate-authority-data", None)
        if self.api_key:
            user.clear()
            user["token"] = self.api_key
        if not cluster.get("server"):
            raise InputError("No API server: set host, or a kubeconfig with a cluster server.", kind=KUBECONFIG_INVALID, option="host")


def _named(items: list[dict[str, t.Any]], name: str, key: str) -> dict[str, t.Any]:
    for item in items:
        if item.get("name") == name:
            return item.setdefault(key, {})
    entry: dict[str, t.Any] = {"name": name, key: {}}
    items.append(entry)
    return entry[key]
