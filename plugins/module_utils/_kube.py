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
import json
import os
import typing as t
from dataclasses import dataclass

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import (
    CLUSTER_UNREACHABLE,
    FORBIDDEN,
    INVALID_ARGUMENTS,
    KUBERNETES_API,
    MISSING_DEPENDENCY,
    UNAUTHORIZED,
    HelmError,
    Workspace,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._release import (
    Release,
    decode_storage,
    encode_storage,
    storage_secret_name,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    HAS_YAML = False

RELEASE_SECRET_TYPE = "helm.sh/release.v1"
_KUBECONFIG_SECRET_KEYS = ("token", "client-key-data", "password", "id-token", "refresh-token", "client-secret")


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
        return cls(
            kubeconfig=params.get("kubeconfig"),
            context=params.get("context"),
            host=params.get("host"),
            api_key=params.get("api_key"),
            ca_cert=params.get("ca_cert"),
            validate_certs=params.get("validate_certs"),
        )

    def register_secrets(self, redactor: Redactor) -> None:
        redactor.add_secret(self.api_key)
        if isinstance(self.kubeconfig, dict):
            for user in self.kubeconfig.get("users") or []:
                for key in _KUBECONFIG_SECRET_KEYS:
                    redactor.add_secret((user.get("user") or {}).get(key))

    def _needs_override(self) -> bool:
        return isinstance(self.kubeconfig, dict) or any(
            v is not None for v in (self.host, self.api_key, self.ca_cert)
        ) or self.validate_certs is False

    def effective_kubeconfig(self, workspace: Workspace) -> str | None:
        """The kubeconfig path helm and the client both use; None means their defaults
        (KUBECONFIG, ~/.kube/config, or the in-cluster service account)."""
        if isinstance(self.kubeconfig, str):
            path = os.path.expanduser(self.kubeconfig)
            if not os.path.exists(path):
                raise HelmError(INVALID_ARGUMENTS, f"kubeconfig {self.kubeconfig!r} does not exist.")
        if not self._needs_override():
            return os.path.expanduser(self.kubeconfig) if isinstance(self.kubeconfig, str) else None
        config = self._base_config()
        self._apply_overrides(config)
        return workspace.write_private("kubeconfig", json.dumps(config))

    def _base_config(self) -> dict[str, t.Any]:
        if isinstance(self.kubeconfig, dict):
            return json.loads(json.dumps(self.kubeconfig))
        path = self.kubeconfig if isinstance(self.kubeconfig, str) else None
        if path is None and not self.host:
            path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
        if path and os.path.exists(os.path.expanduser(path)):
            with open(os.path.expanduser(path), encoding="utf-8") as handle:
                return yaml.safe_load(handle) or {}
        return {}

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
                raise HelmError(INVALID_ARGUMENTS, f"context {context_name!r} is not in the kubeconfig.")
            context = {"name": "helm-engine", "context": {"cluster": "helm-engine", "user": "helm-engine"}}
            contexts.append(context)
        config["current-context"] = context["name"]
        cluster_name = context["context"].get("cluster") or "helm-engine"
        user_name = context["context"].get("user") or "helm-engine"
        cluster = _named(clusters, cluster_name, "cluster")
        user = _named(users, user_name, "user")
        if self.host:
            cluster["server"] = self.host
        if self.ca_cert:
            cluster["certificate-authority"] = os.path.expanduser(self.ca_cert)
            cluster.pop("certificate-authority-data", None)
        if self.validate_certs is False:
            cluster["insecure-skip-tls-verify"] = True
            cluster.pop("certificate-authority", None)
            cluster.pop("certificate-authority-data", None)
        if self.api_key:
            user.clear()
            user["token"] = self.api_key
        if not cluster.get("server"):
            raise HelmError(INVALID_ARGUMENTS, "No API server: set host, or a kubeconfig with a cluster server.")


def _named(items: list[dict[str, t.Any]], name: str, key: str) -> dict[str, t.Any]:
    for item in items:
        if item.get("name") == name:
            return item.setdefault(key, {})
    entry: dict[str, t.Any] = {"name": name, key: {}}
    items.append(entry)
    return entry[key]


def api_error(exc: Exception, what: str) -> HelmError:
    """Maps a kubernetes client exception to the same error kinds helm failures get."""
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None) or str(exc)
    if status == 401:
        return HelmError(UNAUTHORIZED, f"{what}: the cluster rejected the credentials (401 Unauthorized).")
    if status == 403:
        return HelmError(FORBIDDEN, f"{what}: forbidden (403): {reason}")
    if status is None or status == 0:
        return HelmError(CLUSTER_UNREACHABLE, f"{what}: Kubernetes cluster unreachable: {reason}")
    return HelmError(KUBERNETES_API, f"{what}: Kubernetes API error {status}: {reason}")


class KubeClient:
    """Thin reads over the kubernetes client, deserialising JSON ourselves: the client's model
    classes cost more time than the request on the status hot path."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        try:
            from kubernetes import client, config
            from kubernetes.config.config_exception import ConfigException
        except ImportError as exc:
            raise HelmError(
                MISSING_DEPENDENCY,
                "The 'kubernetes' Python library is required on the host that runs this module (pip install kubernetes).",
            ) from exc
        try:
            try:
                self.api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
            except (ConfigException, FileNotFoundError, TypeError):
                if kubeconfig:
                    raise
                configuration = client.Configuration()
                config.load_incluster_config(client_configuration=configuration)
                self.api_client = client.ApiClient(configuration)
        except ConfigException as exc:
            raise HelmError(INVALID_ARGUMENTS, f"Could not load the kubeconfig: {exc}") from exc
        self.api_client.configuration.retries = 1
        self._client_module = client

    def get_json(self, path: str, query: dict[str, str] | None = None, *, missing_ok: bool = False) -> t.Any:
        try:
            response = self.api_client.call_api(
                path,
                "GET",
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=(5, 30),
            )
        except Exception as exc:  # ApiException, urllib3 errors: all become a stable kind
            if missing_ok and getattr(exc, "status", None) == 404:
                return None
            raise api_error(exc, f"GET {path}") from exc
        raw = response[0] if isinstance(response, tuple) else response
        return json.loads(raw.data)

    def release_history(self, name: str, namespace: str) -> list[Release]:
        """Every stored revision of a release, oldest first, read from helm's Secrets."""
        listing = self.get_json(
            f"/api/v1/namespaces/{namespace}/secrets",
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
            releases.append(Release.from_json(decode_storage(base64.b64decode(payload))))
        return sorted(releases, key=lambda r: r.revision)

    def patch_json(self, path: str, body: dict[str, t.Any]) -> t.Any:
        try:
            response = self.api_client.call_api(
                path,
                "PATCH",
                body=body,
                header_params={"Accept": "application/json", "Content-Type": "application/merge-patch+json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=(5, 30),
            )
        except Exception as exc:
            raise api_error(exc, f"PATCH {path}") from exc
        raw = response[0] if isinstance(response, tuple) else response
        return json.loads(raw.data)

    def mark_release_failed(self, release: Release, description: str) -> None:
        """Rewrites a stuck revision as failed, as helm itself does when it is interrupted
        gently (SIGTERM), so the history says what happened instead of pending forever."""
        data = json.loads(json.dumps(release.raw))
        data.setdefault("info", {})["status"] = "failed"
        data["info"]["description"] = description
        payload = base64.b64encode(encode_storage(data).encode("ascii")).decode("ascii")
        self.patch_json(
            f"/api/v1/namespaces/{release.namespace}/secrets/{storage_secret_name(release.name, release.revision)}",
            {"metadata": {"labels": {"status": "failed"}}, "data": {"release": payload}},
        )

    # ---- generic resource reads -----------------------------------------------------------

    def _resources_of(self, api_version: str) -> dict[str, dict[str, t.Any]]:
        """Discovery for one group/version, cached per task: kind -> APIResource."""
        cache = self.__dict__.setdefault("_discovery", {})
        if api_version not in cache:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            listing = self.get_json(path, missing_ok=True) or {}
            cache[api_version] = {
                r["kind"]: r for r in listing.get("resources") or [] if "/" not in r.get("name", "")
            }
        return cache[api_version]

    def object_path(self, api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str | None:
        """The REST path of an object (or of its collection when name is None); None when the
        cluster does not serve that kind."""
        resource = self._resources_of(api_version).get(kind)
        if resource is None:
            return None
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if resource.get("namespaced") and namespace:
            base += f"/namespaces/{namespace}"
        path = f"{base}/{resource['name']}"
        return f"{path}/{name}" if name else path

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, t.Any] | None:
        path = self.object_path(api_version, kind, namespace, name)
        if path is None:
            return None
        return self.get_json(path, missing_ok=True)
