# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Cluster access: one kubeconfig for helm and the kubernetes client, and reads of releases.

helm and the Python client must talk to the same cluster as the same user, so both get the
same effective kubeconfig: the user's file as is when nothing overrides it, otherwise a 0600
temp file that merges the overrides (host, api_key, ca_cert, validate_certs, a dict).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sys
import threading
import types
import typing as t
from dataclasses import dataclass, field
from urllib.parse import quote

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CLUSTER_UNREACHABLE,
    FORBIDDEN,
    KUBECONFIG_INVALID,
    KUBERNETES_API,
    MISSING_DEPENDENCY,
    TIMEOUT,
    UNAUTHORIZED,
    InputError,
    KubeError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import json_for_helm
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import SENSITIVE_KEY, Redactor
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import (
    Release,
    decode_storage,
    encode_storage,
    storage_secret_name,
)

if t.TYPE_CHECKING:
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import Workspace

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    HAS_YAML = False

RELEASE_SECRET_TYPE = "helm.sh/release.v1"
_KUBECONFIG_SECRET_KEYS = ("token", "client-key-data", "password", "id-token", "refresh-token", "client-secret")
# Paths in a kubeconfig are relative to the file that holds them (kubectl's rule); a merged
# copy written elsewhere must carry them absolute.
_RELATIVE_PATH_KEYS = {"clusters": ("certificate-authority",), "users": ("client-certificate", "client-key", "tokenFile")}
_KUBECONFIG_MAX_BYTES = 4 * 1024 * 1024
# A label value (the selector's right-hand side must be one, or it reshapes the selector).
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


USER_AGENT = "ai_mesh.helm_engine"

# (apiVersion, kind) -> (resource, namespaced) of the built-in kinds charts hold most, so reading
# them needs no discovery request. Anything else is discovered (once per group/version and task).
BUILTIN_RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "Namespace"): ("namespaces", False),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
}


@dataclass(frozen=True)
class KubernetesClientParts:
    """The parts of the kubernetes package this client uses: its kubeconfig loaders (every
    auth method they know: tokens, certificates, exec plugins, OIDC) and its REST layer."""

    Configuration: t.Any
    RESTClientObject: t.Any
    ConfigException: type[Exception]
    load_kube_config: t.Callable[..., t.Any]
    load_incluster_config: t.Callable[..., t.Any]


class _DeferredModule(types.ModuleType):
    """Stands in for a module the kubeconfig loader or the REST layer imports at the top but
    uses only on rare paths (OIDC refresh, a proxy with no_proxy): the real module is imported
    on first use of an attribute, once the stand-ins are gone from sys.modules."""

    def __getattr__(self, attr: str) -> t.Any:
        if attr.startswith("__") or sys.modules.get(self.__name__) is self:
            raise AttributeError(attr)
        return getattr(importlib.import_module(self.__name__), attr)


def _deferred_callable(module: str, attr: str) -> t.Callable[..., t.Any]:
    def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = attr
    return call


# Imported by kubernetes.config.kube_config and kubernetes.client.rest at their top, used only
# on rare paths: about 45 ms of every task, left for when they are used.
_DEFERRED_MODULES: dict[str, dict[str, str]] = {
    "oauthlib": {},
    "oauthlib.oauth2": {},
    "requests_oauthlib": {"OAuth2Session": "requests_oauthlib"},
    "requests": {},
    "requests.utils": {"should_bypass_proxies": "requests.utils"},
}


def _real_api_client(*args: t.Any, **kwargs: t.Any) -> t.Any:
    """Stands in for ``kubernetes.client.ApiClient`` while the light import runs; only OIDC
    discovery calls it, and pays for the full import then."""
    from kubernetes.client.api_client import ApiClient  # pylint: disable=import-outside-toplevel

    return ApiClient(*args, **kwargs)


def load_kubernetes_client() -> KubernetesClientParts:
    """Imports the kubeconfig loaders and the REST layer without ``kubernetes/__init__``.

    The package's ``__init__`` imports every API class and about 700 model classes (0.5 s and
    more, most of a status task), none of which this client uses: it sends REST requests and
    reads the JSON itself. The two package modules are stood in for while the needed
    submodules import, and so are the OAuth and requests modules they use only on rare paths
    (_DEFERRED_MODULES); all stand-ins are removed again, so a later ``import kubernetes`` (or
    ``requests``) in the same process gets the whole real package."""
    if "kubernetes.client.api_client" in sys.modules:  # already paid for: use it
        stand_ins: dict[str, types.ModuleType] = {}
    else:
        spec = importlib.util.find_spec("kubernetes")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("kubernetes")
        root = list(spec.submodule_search_locations)
        stand_ins = {}
        for name, path in (("kubernetes", root), ("kubernetes.client", [os.path.join(p, "client") for p in root])):
            if name not in sys.modules:
                module = types.ModuleType(name)
                module.__path__ = path
                stand_ins[name] = module
        for name, callables in _DEFERRED_MODULES.items():
            if name not in sys.modules:
                deferred = _DeferredModule(name)
                for attr, module_name in callables.items():
                    setattr(deferred, attr, _deferred_callable(module_name, attr))
                stand_ins[name] = deferred
        for name, module in stand_ins.items():  # `import a.b` binds a, then reads b from it
            parent, dot, child = name.rpartition(".")
            if dot and parent in stand_ins:
                setattr(stand_ins[parent], child, module)
    try:
        sys.modules.update(stand_ins)
        if "kubernetes.client" in stand_ins:
            from kubernetes.client import configuration as configuration_module  # pylint: disable=import-outside-toplevel

            stand_ins["kubernetes.client"].Configuration = configuration_module.Configuration  # type: ignore[attr-defined]
            stand_ins["kubernetes.client"].ApiClient = _real_api_client  # type: ignore[attr-defined]
        from kubernetes.client.configuration import Configuration  # pylint: disable=import-outside-toplevel
        from kubernetes.client.rest import RESTClientObject  # pylint: disable=import-outside-toplevel
        from kubernetes.config.config_exception import ConfigException  # pylint: disable=import-outside-toplevel
        from kubernetes.config.incluster_config import load_incluster_config  # pylint: disable=import-outside-toplevel
        from kubernetes.config.kube_config import load_kube_config  # pylint: disable=import-outside-toplevel
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return KubernetesClientParts(Configuration, RESTClientObject, ConfigException, load_kube_config, load_incluster_config)


def path_segment(value: str) -> str:
    """One URL path segment: '/', '..', '#', '?' in a name can never reshape the request."""
    if value in ("", ".", ".."):
        raise InputError(f"{value!r} cannot be used as a name in an API path.")
    return quote(value, safe="")


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


def api_error(exc: Exception, what: str) -> KubeError:
    """Maps a kubernetes client exception to a stable kind."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or str(exc)
    reason = str(reason).splitlines()[0][:300] if reason else type(exc).__name__
    if status == 401:
        return KubeError(UNAUTHORIZED, f"{what}: the cluster rejected the credentials (401 Unauthorized).", details={"status": 401})
    if status == 403:
        return KubeError(FORBIDDEN, f"{what}: forbidden (403): {reason}", details={"status": 403})
    if status in (408, 504) or "timed out" in reason.lower() or "timeout" in type(exc).__name__.lower():
        return KubeError(TIMEOUT, f"{what}: the API server did not answer in time: {reason}", details={"status": status})
    if status is None or status == 0:
        return KubeError(CLUSTER_UNREACHABLE, f"{what}: Kubernetes cluster unreachable: {reason}")
    return KubeError(KUBERNETES_API, f"{what}: Kubernetes API error {status}: {reason}", details={"status": status})


class KubeClient:
    """Thin reads over the kubernetes client, deserialising JSON ourselves: the client's model
    classes cost more time than the request on the status hot path."""

    # Connect and read timeouts of one request: an API server that is down or hung fails the
    # task in bounded time instead of hanging it. The connect timeout also bounds the TLS
    # handshake, all a frozen API server (its port open, nothing answering) lets through.
    REQUEST_TIMEOUT = (5, 30)
    # Attempts after the first, for a request that could not connect or got no answer. Left
    # to urllib3 (3 retries) a frozen API server costs 4 connect timeouts (20 s) per request.
    RETRIES = 1

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        try:
            kubernetes = load_kubernetes_client()
        except ImportError as exc:
            raise KubeError(
                MISSING_DEPENDENCY,
                "The 'kubernetes' Python library is required on the host that runs this module (pip install kubernetes).",
            ) from exc
        try:
            configuration = kubernetes.Configuration()
            if kubeconfig is None:
                kubernetes.load_incluster_config(client_configuration=configuration)
            else:
                kubernetes.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
            # Before the pool exists: it reads retries once, when it is built (set afterwards,
            # as this client once did, it changes nothing).
            configuration.retries = self.RETRIES
            self.rest = kubernetes.RESTClientObject(configuration)
        except (kubernetes.ConfigException, OSError, TypeError, ValueError, KeyError, AttributeError) as exc:
            # The shape was checked already; what is left is content the client cannot use
            # (an unreadable certificate file, a broken exec plugin, bad base64).
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise KubeError(KUBECONFIG_INVALID, f"Could not load the kubeconfig: {reason}") from None
        self.configuration = configuration
        self.request_count = 0
        self._count_lock = threading.Lock()  # status reads run on a few threads

    def _call(
        self,
        method: str,
        path: str,
        *,
        text: bool = False,
        query: dict[str, str] | None = None,
        body: t.Any = None,
        content_type: str = "application/json",
    ) -> t.Any:
        with self._count_lock:
            self.request_count += 1
        headers = {"Accept": "*/*" if text else "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            # The refresh hook (exec plugins, token files) runs here, as ApiClient would run it.
            token = self.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
            if token:
                headers["authorization"] = token
            response = self.rest.request(
                method,
                self.configuration.host + path,
                query_params=list((query or {}).items()),
                headers=headers,
                body=body,
                _preload_content=False,
                _request_timeout=self.REQUEST_TIMEOUT,
            )
        except Exception as exc:  # ApiException, urllib3 errors: all become a stable kind
            raise api_error(exc, f"{method} {path}") from None
        if text:
            return response.data.decode("utf-8", errors="replace")
        try:
            return json.loads(response.data)
        except (ValueError, RecursionError):
            raise KubeError(KUBERNETES_API, f"{method} {path}: the API server answered with something that is not JSON.") from None

    def get_json(self, path: str, query: dict[str, str] | None = None, *, missing_ok: bool = False) -> t.Any:
        try:
            return self._call("GET", path, query=query)
        except KubeError as exc:
            if missing_ok and exc.details.get("status") == 404:
                return None
            raise

    def get_text(self, path: str, query: dict[str, str] | None = None) -> str:
        """A plain-text read (a container's log)."""
        return self._call("GET", path, text=True, query=query)

    def release_history(self, name: str, namespace: str) -> list[Release]:
        """Every stored revision of a release, oldest first, read from helm's Secrets. The
        name is checked again on each item: the label selector is only a filter."""
        if not _LABEL_VALUE.match(name):
            raise InputError(f"{name!r} cannot be a release name: it is not a valid label value.", option="name")
        listing = self.get_json(
            f"/api/v1/namespaces/{path_segment(namespace)}/secrets",
            {"labelSelector": f"owner=helm,name={name}"},
        )
        releases = []
        for item in listing.get("items") or []:
            if item.get("type") != RELEASE_SECRET_TYPE:
                continue
            payload = (item.get("data") or {}).get("release")
            if not payload:
                continue
            # The API base64-encodes Secret data; helm's payload inside is base64 again.
            release = Release.from_json(decode_storage(base64.b64decode(payload)))
            release.labels = dict((item.get("metadata") or {}).get("labels") or {})
            if release.name == name and (release.namespace or namespace) == namespace:
                releases.append(release)
        return sorted(releases, key=lambda r: r.revision)

    def patch_json(self, path: str, body: dict[str, t.Any]) -> t.Any:
        return self._call("PATCH", path, body=body, content_type="application/merge-patch+json")

    def post_json(self, path: str, body: dict[str, t.Any]) -> t.Any:
        """A POST whose answer is the point (a SelfSubjectAccessReview), never a write of a resource."""
        return self._call("POST", path, body=body)

    def write_json(self, method: str, path: str, body: dict[str, t.Any]) -> t.Any:
        """A write of a whole object: POST (create), PUT (replace), DELETE (with DeleteOptions)."""
        return self._call(method, path, body=body)

    def mark_release_failed(self, release: Release, description: str) -> None:
        """Rewrites a stuck revision as failed, as helm itself does when it is interrupted
        gently (SIGTERM), so the history says what happened instead of pending forever."""
        data = json.loads(json.dumps(release.raw))
        data.setdefault("info", {})["status"] = "failed"
        data["info"]["description"] = description
        payload = base64.b64encode(encode_storage(data).encode("ascii")).decode("ascii")
        secret = storage_secret_name(release.name, release.revision)
        self.patch_json(
            f"/api/v1/namespaces/{path_segment(release.namespace)}/secrets/{path_segment(secret)}",
            {"metadata": {"labels": {"status": "failed"}}, "data": {"release": payload}},
        )

    def server_version(self) -> str:
        """The API server's gitVersion (what a chart sees as .Capabilities.KubeVersion)."""
        return str((self.get_json("/version") or {}).get("gitVersion") or "")

    def label_revision(self, release: Release, key: str, value: str) -> None:
        """Sets one label on a revision's storage Secret; its content stays as helm wrote it."""
        secret = storage_secret_name(release.name, release.revision)
        self.patch_json(
            f"/api/v1/namespaces/{path_segment(release.namespace)}/secrets/{path_segment(secret)}",
            {"metadata": {"labels": {key: value}}},
        )

    def namespace_exists(self, namespace: str) -> bool:
        return self.get_json(f"/api/v1/namespaces/{path_segment(namespace)}", missing_ok=True) is not None

    # ---- generic resource reads -----------------------------------------------------------

    def _resources_of(self, api_version: str, kind: str | None = None) -> dict[str, dict[str, t.Any]]:
        """Discovery for one group/version, cached per task: kind -> APIResource. A built-in
        kind every conformant API server serves is known without asking."""
        if kind is not None and (api_version, kind) in BUILTIN_RESOURCES:
            plural, namespaced = BUILTIN_RESOURCES[(api_version, kind)]
            return {kind: {"kind": kind, "name": plural, "namespaced": namespaced}}
        cache = self.__dict__.setdefault("_discovery", {})
        if api_version not in cache:
            path = "/api/v1" if api_version == "v1" else f"/apis/{'/'.join(path_segment(p) for p in api_version.split('/'))}"
            listing = self.get_json(path, missing_ok=True) or {}
            cache[api_version] = {
                r["kind"]: r for r in listing.get("resources") or [] if "/" not in r.get("name", "")
            }
        return cache[api_version]

    def object_path(self, api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str | None:
        """The REST path of an object (or of its collection when name is None); None when the
        cluster does not serve that kind."""
        resource = self._resources_of(api_version, kind).get(kind)
        if resource is None:
            return None
        base = "/api/v1" if api_version == "v1" else f"/apis/{'/'.join(path_segment(p) for p in api_version.split('/'))}"
        if resource.get("namespaced") and namespace:
            base += f"/namespaces/{path_segment(namespace)}"
        path = f"{base}/{path_segment(resource['name'])}"
        return f"{path}/{path_segment(name)}" if name else path

    def list_objects(self, api_version: str, kind: str, namespace: str | None) -> dict[str, dict[str, t.Any]] | None:
        """Every object of a kind in a namespace (or cluster-wide), by name, in pages of 500;
        None when the cluster does not serve that kind."""
        path = self.object_path(api_version, kind, namespace)
        if path is None:
            return None
        objects: dict[str, dict[str, t.Any]] = {}
        query = {"limit": "500"}
        while True:
            listing = self.get_json(path, query, missing_ok=True)
            if listing is None:
                return None
            for item in listing.get("items") or []:
                objects[(item.get("metadata") or {}).get("name", "")] = item
            token = (listing.get("metadata") or {}).get("continue")
            if not token:
                return objects
            query = {"limit": "500", "continue": token}

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, t.Any] | None:
        path = self.object_path(api_version, kind, namespace, name)
        if path is None:
            return None
        return self.get_json(path, missing_ok=True)
