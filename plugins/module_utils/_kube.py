# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Cluster access: the Kubernetes REST client the modules read and write with, loaded without
the kubernetes package's models, with bounded timeouts, request counting and stable error kinds.

helm and this client must talk to the same cluster as the same user, so both get the same
effective kubeconfig (see _kubeconfig.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import threading
import types
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


USER_AGENT = "ai_mesh.helm_engine"
# Reads of a release's objects run this many at a time.
PARALLEL_READS = 4
# What a label selector may name: a qualified key and a non-empty value (Kubernetes' own rules).
_LABEL_KEY = re.compile(r"(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
# (apiVersion, kind, namespace, name) of an object.
ObjectKey = t.Tuple[str, str, t.Optional[str], str]

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
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
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


def shared_label_selector(objects: t.Sequence[dict[str, t.Any] | None]) -> str | None:
    """A label selector every one of ``objects`` matches as declared (the label pairs all of
    them carry, that a selector can name), or None when they share none."""
    shared: dict[str, str] | None = None
    for obj in objects:
        labels = ((obj or {}).get("metadata") or {}).get("labels")
        if not isinstance(labels, dict):
            return None
        pairs = {key: value for key, value in labels.items() if isinstance(key, str) and isinstance(value, str)
                 and _LABEL_KEY.fullmatch(key) and _LABEL_VALUE.fullmatch(value)}
        shared = pairs if shared is None else {key: value for key, value in shared.items() if pairs.get(key) == value}
        if not shared:
            return None
    return ",".join(f"{key}={value}" for key, value in sorted(shared.items())) if shared else None


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
        self._server_version: str | None = None
        self._server_version_lock = threading.Lock()  # the releases of one task ask at once

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

    def patch_json(self, path: str, body: dict[str, t.Any]) -> t.Any:
        return self._call("PATCH", path, body=body, content_type="application/merge-patch+json")

    def apply(self, api_version: str, kind: str, namespace: str | None, name: str, obj: dict[str, t.Any], *,
              field_manager: str, dry_run: bool) -> dict[str, t.Any] | None:
        """A server-side apply of ``obj`` with ``force`` (the fields it sets are taken from any
        other manager, as a correction must); with ``dry_run``, the object as it would be,
        written nowhere. None when the cluster does not serve the kind."""
        path = self.object_path(api_version, kind, namespace, name)
        if path is None:
            return None
        body = dict(obj, apiVersion=api_version, kind=kind)
        namespaced = "/namespaces/" in path
        body["metadata"] = dict(obj.get("metadata") or {}, name=name, **({"namespace": namespace} if namespaced else {}))
        query = {"fieldManager": field_manager, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        return self._call("PATCH", path, body=body, content_type="application/apply-patch+yaml", query=query)

    def post_json(self, path: str, body: dict[str, t.Any]) -> t.Any:
        """A POST whose answer is the point (a SelfSubjectAccessReview), never a write of a resource."""
        return self._call("POST", path, body=body)

    def write_json(self, method: str, path: str, body: dict[str, t.Any]) -> t.Any:
        """A write of a whole object: POST (create), PUT (replace), DELETE (with DeleteOptions)."""
        return self._call(method, path, body=body)

    def server_version(self) -> str:
        """The API server's gitVersion (what a chart sees as .Capabilities.KubeVersion), read
        once per client: the releases of a helm_releases task share it."""
        with self._server_version_lock:
            if self._server_version is None:
                self._server_version = str((self.get_json("/version") or {}).get("gitVersion") or "")
            return self._server_version

    def namespace_exists(self, namespace: str) -> bool:
        return self.get_json(f"/api/v1/namespaces/{path_segment(namespace)}", missing_ok=True) is not None

    # ---- generic resource reads -----------------------------------------------------------

    def served_resources(self, api_version: str, kind: str | None = None) -> dict[str, dict[str, t.Any]]:
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
        resource = self.served_resources(api_version, kind).get(kind)
        if resource is None:
            return None
        base = "/api/v1" if api_version == "v1" else f"/apis/{'/'.join(path_segment(p) for p in api_version.split('/'))}"
        if resource.get("namespaced") and namespace:
            base += f"/namespaces/{path_segment(namespace)}"
        path = f"{base}/{path_segment(resource['name'])}"
        return f"{path}/{path_segment(name)}" if name else path

    def list_objects(self, api_version: str, kind: str, namespace: str | None,
                     label_selector: str | None = None) -> dict[str, dict[str, t.Any]] | None:
        """Every object of a kind in a namespace (or cluster-wide), by name, in pages of 500,
        only those ``label_selector`` matches when given; None when the cluster does not serve
        that kind."""
        path = self.object_path(api_version, kind, namespace)
        if path is None:
            return None
        objects: dict[str, dict[str, t.Any]] = {}
        first = {"limit": "500", **({"labelSelector": label_selector} if label_selector else {})}
        query = first
        while True:
            listing = self.get_json(path, query, missing_ok=True)
            if listing is None:
                return None
            for item in listing.get("items") or []:
                objects[(item.get("metadata") or {}).get("name", "")] = item
            token = (listing.get("metadata") or {}).get("continue")
            if not token:
                return objects
            query = {**first, "continue": token}

    def read_objects(self, keys: t.Sequence[ObjectKey], declared: t.Mapping[ObjectKey, dict[str, t.Any]] | None = None
                     ) -> dict[ObjectKey, dict[str, t.Any] | None]:
        """The live object of each (apiVersion, kind, namespace, name), None when absent: one
        GET for a kind held once, one LIST for a kind held more often, a few reads at a time
        (the round trips cost, not the CPU). Requests grow with kinds, not with objects.

        ``declared`` (the objects as a manifest declares them) narrows each LIST to the labels
        they all carry, so a namespace of many releases is not read whole for each one; an
        object the LIST misses (someone removed the label) is read by name."""
        groups: dict[tuple[str, str, str | None], list[str]] = {}
        for api_version, kind, namespace, name in keys:
            groups.setdefault((api_version, kind, namespace), []).append(name)

        def read(group: tuple[str, str, str | None]) -> dict[str, dict[str, t.Any] | None]:
            api_version, kind, namespace = group
            names = groups[group]
            if len(names) == 1:
                return {names[0]: self.get_object(api_version, kind, namespace, names[0])}
            selector = shared_label_selector([declared.get((*group, name)) for name in names]) if declared else None
            listed = self.list_objects(api_version, kind, namespace, selector) or {}
            found = {name: listed.get(name) for name in names}
            if selector:
                for name in names:
                    if found[name] is None:
                        found[name] = self.get_object(api_version, kind, namespace, name)
            return found

        if len(groups) > 1 and PARALLEL_READS > 1:
            with ThreadPoolExecutor(max_workers=min(PARALLEL_READS, len(groups))) as pool:
                answers = list(pool.map(read, groups))
        else:
            answers = [read(group) for group in groups]
        live: dict[ObjectKey, dict[str, t.Any] | None] = {}
        for (api_version, kind, namespace), found in zip(groups, answers):
            for name, obj in found.items():
                live[(api_version, kind, namespace, name)] = obj
        return live

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, t.Any] | None:
        path = self.object_path(api_version, kind, namespace, name)
        if path is None:
            return None
        return self.get_json(path, missing_ok=True)
