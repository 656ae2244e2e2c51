# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""KubeAuth resolves the kubeconfig helm and the client share. No cluster is contacted."""

from __future__ import annotations

import copy
import os
import stat

import pytest
import yaml

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CLUSTER_UNREACHABLE,
    FORBIDDEN,
    INVALID_ARGUMENTS,
    KUBERNETES_API,
    UNAUTHORIZED,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeAuth, api_error
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import Redactor

SERVER = "https://127.0.0.1:6443"

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "dev",
    "clusters": [
        {"name": "dev-cluster", "cluster": {"server": SERVER, "certificate-authority-data": "Q0EtREFUQQ=="}},
        {"name": "prod-cluster", "cluster": {"server": "https://prod.example:6443"}},
    ],
    "users": [
        {"name": "dev-user", "user": {"token": "dev-token-123", "username": "dev"}},
        {"name": "prod-user", "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZLWRhdGE="}},
        {"name": "basic", "user": {"username": "admin", "password": "admin-pw"}},
    ],
    "contexts": [
        {"name": "dev", "context": {"cluster": "dev-cluster", "user": "dev-user", "namespace": "apps"}},
        {"name": "prod", "context": {"cluster": "prod-cluster", "user": "prod-user"}},
    ],
}


@pytest.fixture(autouse=True)
def no_user_kubeconfig(monkeypatch, tmp_path):
    """Never read the kubeconfig of whoever runs the tests."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def load_private(path: str, workspace) -> dict:
    assert os.path.dirname(path) == workspace.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)  # JSON is YAML: helm reads either


def cluster_of(config: dict, context: str | None = None) -> dict:
    name = next(c for c in config["contexts"] if c["name"] == (context or config["current-context"]))["context"]["cluster"]
    return next(c for c in config["clusters"] if c["name"] == name)["cluster"]


def user_of(config: dict, context: str | None = None) -> dict:
    name = next(c for c in config["contexts"] if c["name"] == (context or config["current-context"]))["context"]["user"]
    return next(u for u in config["users"] if u["name"] == name)["user"]


@pytest.fixture
def kubeconfig_file(tmp_path) -> str:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return str(path)


# ---- effective_kubeconfig ----------------------------------------------------------------


@pytest.mark.parametrize("validate_certs", [None, True])
def test_path_passes_through_without_overrides(kubeconfig_file, workspace, validate_certs):
    auth = KubeAuth(kubeconfig=kubeconfig_file, context="prod", validate_certs=validate_certs)
    assert auth.effective_kubeconfig(workspace) == kubeconfig_file
    assert os.listdir(workspace.path) == []


def test_home_relative_path_is_expanded(tmp_path, workspace):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text(yaml.safe_dump(KUBECONFIG))
    assert KubeAuth(kubeconfig="~/.kube/config").effective_kubeconfig(workspace) == str(home / ".kube" / "config")


def test_nothing_set_means_helm_defaults(workspace):
    assert KubeAuth().effective_kubeconfig(workspace) is None
    assert os.listdir(workspace.path) == []


@pytest.mark.parametrize("overrides", [{}, {"host": SERVER, "api_key": "tok"}])
def test_missing_path_is_invalid_arguments(tmp_path, workspace, overrides):
    auth = KubeAuth(kubeconfig=str(tmp_path / "nope.yaml"), **overrides)
    with pytest.raises(EngineError) as caught:
        auth.effective_kubeconfig(workspace)
    assert caught.value.kind == INVALID_ARGUMENTS
    assert "nope.yaml" in caught.value.msg


def test_host_and_api_key_write_a_private_file(workspace):
    path = KubeAuth(host=SERVER, api_key="tok-abc123").effective_kubeconfig(workspace)
    config = load_private(path, workspace)
    assert (config["apiVersion"], config["kind"], config["current-context"]) == ("v1", "Config", "helm-engine")


# _apply_overrides keeps `config.setdefault("clusters", []) or []`: an empty (or null) list is
# falsy, so the overrides go into a detached list and the file has no cluster, user or context.
@pytest.mark.parametrize(
    "kubeconfig",
    [
        pytest.param(None, id="no-kubeconfig"),
        pytest.param({"apiVersion": "v1", "kind": "Config"}, id="dict-without-lists"),
        pytest.param("apiVersion: v1\nkind: Config\nclusters: null\ncontexts: null\ncurrent-context: \"\"\n"
                     "preferences: {}\nusers: null\n", id="kubectl-config-view-of-nothing"),
    ],
)
def test_host_and_api_key_kubeconfig_has_server_and_token(tmp_path, workspace, kubeconfig):
    if isinstance(kubeconfig, str):
        path = tmp_path / "empty-kubeconfig.yaml"
        path.write_text(kubeconfig)
        kubeconfig = str(path)
    auth = KubeAuth(kubeconfig=kubeconfig, host=SERVER, api_key="tok-abc123", validate_certs=False)
    config = load_private(auth.effective_kubeconfig(workspace), workspace)
    assert cluster_of(config) == {"server": SERVER, "insecure-skip-tls-verify": True}
    assert user_of(config) == {"token": "tok-abc123"}


def test_host_and_api_key_override_a_kubeconfig_file(kubeconfig_file, workspace):
    auth = KubeAuth(kubeconfig=kubeconfig_file, host="https://10.0.0.1:6443", api_key="tok-abc123")
    config = load_private(auth.effective_kubeconfig(workspace), workspace)
    assert config["current-context"] == "dev"
    assert cluster_of(config) == {"server": "https://10.0.0.1:6443", "certificate-authority-data": "Q0EtREFUQQ=="}
    assert user_of(config) == {"token": "tok-abc123"}


@pytest.mark.parametrize("ca_cert", [None, "/etc/ca.pem"])
def test_validate_certs_false_skips_tls_verification(kubeconfig_file, workspace, ca_cert):
    auth = KubeAuth(kubeconfig=kubeconfig_file, ca_cert=ca_cert, validate_certs=False)
    cluster = cluster_of(load_private(auth.effective_kubeconfig(workspace), workspace))
    assert cluster == {"server": SERVER, "insecure-skip-tls-verify": True}


def test_ca_cert_replaces_inline_ca(kubeconfig_file, workspace):
    auth = KubeAuth(kubeconfig=kubeconfig_file, ca_cert="/etc/ca.pem")
    cluster = cluster_of(load_private(auth.effective_kubeconfig(workspace), workspace))
    assert cluster == {"server": SERVER, "certificate-authority": "/etc/ca.pem"}


def test_dict_kubeconfig_is_written_as_is(workspace):
    given = copy.deepcopy(KUBECONFIG)
    config = load_private(KubeAuth(kubeconfig=given).effective_kubeconfig(workspace), workspace)
    assert config == KUBECONFIG
    assert given == KUBECONFIG  # the caller's dict is not modified


def test_api_key_replaces_the_user_of_the_chosen_context(kubeconfig_file, workspace):
    auth = KubeAuth(kubeconfig=kubeconfig_file, context="prod", api_key="tok-prod")
    config = load_private(auth.effective_kubeconfig(workspace), workspace)
    assert config["current-context"] == "prod"
    assert user_of(config) == {"token": "tok-prod"}
    assert user_of(config, "dev") == {"token": "dev-token-123", "username": "dev"}
    with open(kubeconfig_file, encoding="utf-8") as handle:
        assert yaml.safe_load(handle) == KUBECONFIG  # the user's file is untouched


def test_unknown_context_is_invalid_arguments(workspace):
    with pytest.raises(EngineError) as caught:
        KubeAuth(kubeconfig=copy.deepcopy(KUBECONFIG), context="staging").effective_kubeconfig(workspace)
    assert caught.value.kind == INVALID_ARGUMENTS


def test_no_server_is_invalid_arguments(workspace):
    with pytest.raises(EngineError) as caught:
        KubeAuth(api_key="tok-abc123").effective_kubeconfig(workspace)
    assert caught.value.kind == INVALID_ARGUMENTS


# ---- register_secrets --------------------------------------------------------------------


def test_register_secrets():
    redactor = Redactor()
    KubeAuth(kubeconfig=copy.deepcopy(KUBECONFIG), api_key="tok-abc123").register_secrets(redactor)
    assert redactor.secrets == frozenset({"tok-abc123", "dev-token-123", "S0VZLWRhdGE=", "admin-pw"})


def test_register_secrets_of_a_path_kubeconfig_is_only_the_api_key(kubeconfig_file):
    redactor = Redactor()
    KubeAuth(kubeconfig=kubeconfig_file).register_secrets(redactor)
    assert redactor.secrets == frozenset()
    KubeAuth(kubeconfig=kubeconfig_file, api_key="tok-abc123").register_secrets(redactor)
    assert redactor.secrets == frozenset({"tok-abc123"})


# ---- api_error ---------------------------------------------------------------------------


class ApiFailure(Exception):
    def __init__(self, status, reason="boom"):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@pytest.mark.parametrize(
    "status, kind",
    [(401, UNAUTHORIZED), (403, FORBIDDEN), (None, CLUSTER_UNREACHABLE), (0, CLUSTER_UNREACHABLE), (500, KUBERNETES_API)],
)
def test_api_error_kinds(status, kind):
    error = api_error(ApiFailure(status), "GET /api/v1/namespaces/apps/secrets")
    assert error.kind == kind
    assert error.msg.startswith("GET /api/v1/namespaces/apps/secrets: ")


def test_from_params():
    params = {"kubeconfig": "/k", "context": "c", "host": "h", "api_key": "a", "ca_cert": "/ca", "validate_certs": False}
    auth = KubeAuth.from_params(params)
    assert (auth.kubeconfig, auth.context, auth.host, auth.api_key, auth.ca_cert, auth.validate_certs) == (
        "/k", "c", "h", "a", "/ca", False,
    )
