# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A test's Kubernetes environment: no auth setting of the machine that runs the tests, and a
kubeconfig of its own."""

from __future__ import annotations

import json
import os
import typing as t

# Every variable the modules' auth options fall back to, and what the kubernetes client reads.
AUTH_ENV = ("KUBECONFIG", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_CONTEXT", "K8S_AUTH_HOST", "K8S_AUTH_API_KEY",
            "K8S_AUTH_SSL_CA_CERT", "K8S_AUTH_VERIFY_SSL", "KUBERNETES_SERVICE_HOST")

KUBECONFIG: dict[str, t.Any] = {
    "apiVersion": "v1", "kind": "Config", "current-context": "unit",
    "clusters": [{"name": "unit", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "unit", "user": {"token": "unit-token"}}],
    "contexts": [{"name": "unit", "context": {"cluster": "unit", "user": "unit"}}],
}


def clear_auth_env(monkeypatch: t.Any) -> None:
    """Only what the test passes: none of the runner's auth settings."""
    for name in AUTH_ENV:
        monkeypatch.delenv(name, raising=False)


def write_kubeconfig(directory: t.Any, config: dict[str, t.Any] | None = None) -> str:
    path = os.path.join(str(directory), "kubeconfig")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config or KUBECONFIG, handle)
    return path
