# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""KubeAuth resolves the kubeconfig helm and the client share; KubeClient gives up on an API
server that is down or frozen in bounded time. No cluster is contacted (sockets on 127.0.0.1
stand in for a dead API server)."""

from __future__ import annotations

import copy
import os
import socket
import stat
import threading
import time

import pytest
import yaml

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CLUSTER_UNREACHABLE,
    FORBIDDEN,
    INVALID_ARGUMENTS,
    KUBECONFIG_INVALID,
    KUBERNETES_API,
    TIMEOUT,
    UNAUTHORIZED,
    EngineError,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import KubeClient, api_error, path_segment, shared_label_selector
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kubeconfig import KubeAuth
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
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


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


def test_nothing_set_in_a_pod_means_in_cluster(workspace, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert KubeAuth().effective_kubeconfig(workspace) is None
    assert os.listdir(workspace.path) == []


def test_nothing_set_outside_a_pod_is_kubeconfig_invalid(workspace):
    with pytest.raises(EngineError) as caught:
        KubeAuth().effective_kubeconfig(workspace)
    assert caught.value.kind == KUBECONFIG_INVALID
    assert caught.value.details == {"option": "kubeconfig"}
    assert os.listdir(workspace.path) == []


@pytest.mark.parametrize("overrides", [{}, {"host": SERVER, "api_key": "tok"}])
def test_missing_path_is_kubeconfig_invalid(tmp_path, workspace, overrides):
    auth = KubeAuth(kubeconfig=str(tmp_path / "nope.yaml"), **overrides)
    with pytest.raises(EngineError) as caught:
        auth.effective_kubeconfig(workspace)
    assert caught.value.kind == KUBECONFIG_INVALID
    assert caught.value.details == {"option": "kubeconfig"}
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


def test_an_inline_kubeconfig_outside_the_bmp_is_written_as_utf8(workspace):
    """helm's YAML parser refuses JSON's surrogate-pair escapes ("found invalid Unicode character
    escape code"): an emoji anywhere in an inline kubeconfig, an unused user's token included,
    made every helm process of the task fail as cluster_unreachable."""
    config = copy.deepcopy(KUBECONFIG)
    config["users"].append({"name": "unused", "user": {"token": "tok-\U0001f511-\u00e9\u2028"}})
    path = KubeAuth(kubeconfig=config).effective_kubeconfig(workspace)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    assert "\U0001f511" in text and "\\ud83d" not in text and "\u2028" not in text
    assert load_private(path, workspace)["users"][-1]["user"]["token"] == "tok-\U0001f511-\u00e9\u2028"


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
    assert caught.value.details == {"option": "context"}
    assert "'staging'" in caught.value.msg and "dev, prod" in caught.value.msg


def test_unknown_context_of_a_file_is_invalid_arguments(kubeconfig_file, workspace):
    with pytest.raises(EngineError) as caught:
        KubeAuth(kubeconfig=kubeconfig_file, context="staging").view()
    assert caught.value.kind == INVALID_ARGUMENTS
    assert caught.value.details == {"option": "context"}
    assert os.listdir(workspace.path) == []


def test_no_server_outside_a_pod_is_kubeconfig_invalid(workspace):
    with pytest.raises(EngineError) as caught:
        KubeAuth(api_key="tok-abc123").effective_kubeconfig(workspace)
    assert caught.value.kind == KUBECONFIG_INVALID


def test_api_key_without_a_server_in_a_pod_is_kubeconfig_invalid(workspace, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    with pytest.raises(EngineError) as caught:
        KubeAuth(api_key="tok-abc123").effective_kubeconfig(workspace)
    assert caught.value.kind == KUBECONFIG_INVALID
    assert caught.value.details == {"option": "host"}


def test_no_current_context_is_kubeconfig_invalid(tmp_path):
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(dict(KUBECONFIG, **{"current-context": ""})))
    with pytest.raises(EngineError) as caught:
        KubeAuth(kubeconfig=str(path)).view()
    assert caught.value.kind == KUBECONFIG_INVALID
    assert caught.value.details == {"option": "context"}
    # Naming a context, or a host, is enough.
    assert KubeAuth(kubeconfig=str(path), context="prod").view().sources == [str(path)]
    assert KubeAuth(kubeconfig=str(path), host=SERVER).view().sources == [str(path)]


def test_context_whose_cluster_has_no_server_is_kubeconfig_invalid(tmp_path):
    config = copy.deepcopy(KUBECONFIG)
    config["clusters"][1]["cluster"] = {"insecure-skip-tls-verify": True}
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(config))
    KubeAuth(kubeconfig=str(path)).view()  # dev is fine
    with pytest.raises(EngineError) as caught:
        KubeAuth(kubeconfig=str(path), context="prod").view()
    assert caught.value.kind == KUBECONFIG_INVALID
    assert "prod-cluster" in caught.value.msg


# ---- kubeconfig files: type, shape, KUBECONFIG merging -----------------------------------


@pytest.mark.parametrize("kubeconfig", [["/a", "/b"], 5, True, "", "   "])
def test_kubeconfig_that_is_not_a_path_or_dict_is_invalid_arguments(kubeconfig):
    with pytest.raises(EngineError) as caught:
        KubeAuth.from_params({"kubeconfig": kubeconfig})
    assert caught.value.kind == INVALID_ARGUMENTS
    assert caught.value.details == {"option": "kubeconfig"}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("clusters: [\n", id="invalid-yaml"),
        pytest.param("clusters: 5\n", id="clusters-not-a-list"),
        pytest.param("- apiVersion: v1\n", id="document-is-a-list"),
        pytest.param("just text\n", id="document-is-a-string"),
        pytest.param("clusters:\n- cluster: {server: https://x}\n", id="entry-without-name"),
        pytest.param("contexts:\n- name: dev\n  context: [dev]\n", id="context-not-a-mapping"),
        pytest.param("current-context: [dev]\n", id="current-context-not-a-string"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
    ],
)
def test_malformed_kubeconfig_file_is_kubeconfig_invalid(tmp_path, workspace, content):
    path = tmp_path / "kubeconfig.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(EngineError) as caught:
        KubeAuth(kubeconfig=str(path)).effective_kubeconfig(workspace)
    assert caught.value.kind == KUBECONFIG_INVALID
    assert caught.value.details == {"option": "kubeconfig"}
    assert str(path) in caught.value.msg


def test_directory_kubeconfig_is_kubeconfig_invalid(tmp_path):
    with pytest.raises(EngineError) as caught:
        KubeAuth(kubeconfig=str(tmp_path)).view()
    assert caught.value.kind == KUBECONFIG_INVALID
    assert "directory" in caught.value.msg


def test_directory_in_kubeconfig_env_is_kubeconfig_invalid(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path))
    with pytest.raises(EngineError) as caught:
        KubeAuth().view()
    assert caught.value.kind == KUBECONFIG_INVALID


def test_inline_kubeconfig_of_the_wrong_shape_is_kubeconfig_invalid():
    with pytest.raises(EngineError) as caught:
        KubeAuth(kubeconfig={"clusters": 5}).view()
    assert caught.value.kind == KUBECONFIG_INVALID


def write_yaml(path, content: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content))
    return str(path)


def test_kubeconfig_env_files_are_merged_like_kubectl(tmp_path, workspace, monkeypatch):
    first = write_yaml(tmp_path / "one" / "config", {
        "clusters": [{"name": "shared", "cluster": {"server": "https://first:6443", "certificate-authority": "ca.pem"}}],
        "users": [{"name": "me", "user": {"client-certificate": "certs/me.crt", "client-key": "/abs/me.key"}}],
        "contexts": [{"name": "one", "context": {"cluster": "shared", "user": "me"}}],
    })
    second = write_yaml(tmp_path / "two" / "config", {
        "current-context": "two",
        "clusters": [
            {"name": "shared", "cluster": {"server": "https://second:6443"}},
            {"name": "other", "cluster": {"server": "https://other:6443", "certificate-authority": "other-ca.pem"}},
        ],
        "users": [{"name": "me", "user": {"token": "second-token"}}, {"name": "bot", "user": {"tokenFile": "bot.token"}}],
        "contexts": [
            {"name": "one", "context": {"cluster": "other", "user": "bot"}},
            {"name": "two", "context": {"cluster": "shared", "user": "bot"}},
        ],
    })
    third = write_yaml(tmp_path / "three" / "config", {"current-context": "one"})
    missing = str(tmp_path / "missing" / "config")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([first, missing, second, third]))

    auth = KubeAuth()
    view = auth.view()
    assert view.sources == [first, second, third]
    merged = load_private(auth.effective_kubeconfig(workspace, view), workspace)
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    assert merged == {
        "apiVersion": "v1",
        "kind": "Config",
        # The first file that sets one; the first file sets none.
        "current-context": "two",
        # The first definition of a name wins; relative paths are made absolute from their file.
        "clusters": [
            {"name": "shared", "cluster": {"server": "https://first:6443", "certificate-authority": f"{one}/ca.pem"}},
            {"name": "other", "cluster": {"server": "https://other:6443", "certificate-authority": f"{two}/other-ca.pem"}},
        ],
        "users": [
            {"name": "me", "user": {"client-certificate": f"{one}/certs/me.crt", "client-key": "/abs/me.key"}},
            {"name": "bot", "user": {"tokenFile": f"{two}/bot.token"}},
        ],
        "contexts": [
            {"name": "one", "context": {"cluster": "shared", "user": "me"}},
            {"name": "two", "context": {"cluster": "shared", "user": "bot"}},
        ],
    }
    # The user's files are left as they were.
    with open(first, encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["clusters"][0]["cluster"]["certificate-authority"] == "ca.pem"


def test_kubeconfig_env_first_current_context_wins(tmp_path, workspace, monkeypatch):
    first = write_yaml(tmp_path / "a.yaml", dict(copy.deepcopy(KUBECONFIG), **{"current-context": "prod"}))
    second = write_yaml(tmp_path / "b.yaml", dict(copy.deepcopy(KUBECONFIG), **{"current-context": "dev"}))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([first, second]))
    merged = load_private(KubeAuth().effective_kubeconfig(workspace), workspace)
    assert merged["current-context"] == "prod"
    assert [c["name"] for c in merged["clusters"]] == ["dev-cluster", "prod-cluster"]


def test_kubeconfig_env_with_one_existing_file_passes_it_through(kubeconfig_file, tmp_path, workspace, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), kubeconfig_file]))
    assert KubeAuth().effective_kubeconfig(workspace) == kubeconfig_file
    assert os.listdir(workspace.path) == []


# ---- path_segment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, segment",
    [
        ("web", "web"),
        ("sh.helm.release.v1.web.v3", "sh.helm.release.v1.web.v3"),
        ("a/b", "a%2Fb"),
        ("../secrets", "..%2Fsecrets"),
        ("x#frag", "x%23frag"),
        ("x?watch=true", "x%3Fwatch%3Dtrue"),
        ("a b%", "a%20b%25"),
    ],
)
def test_path_segment_escapes(value, segment):
    assert path_segment(value) == segment


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_path_segment_rejects_dot_names(value):
    with pytest.raises(EngineError) as caught:
        path_segment(value)
    assert caught.value.kind == INVALID_ARGUMENTS


# ---- register_secrets --------------------------------------------------------------------


def test_register_secrets():
    redactor = Redactor()
    KubeAuth(kubeconfig=copy.deepcopy(KUBECONFIG), api_key="tok-abc123").register_secrets(redactor)
    assert redactor.secrets == frozenset({"tok-abc123", "dev-token-123", "S0VZLWRhdGE=", "admin-pw"})


def test_register_secrets_of_auth_providers_and_exec_plugins_of_unused_users():
    config = copy.deepcopy(KUBECONFIG)
    config["users"] += [
        {"name": "oidc", "user": {"auth-provider": {"name": "oidc", "config": {
            "id-token": "oidc-id", "refresh-token": "oidc-refresh", "client-secret": "oidc-cs", "client-id": "public"}}}},
        {"name": "exec", "user": {"exec": {"command": "get-token", "env": [
            {"name": "API_TOKEN", "value": "env-token"}, {"name": "REGION", "value": "eu-west-1"}],
            "args": ["--token", "arg-token", "--password=arg-pw", "--region", "eu"]}}},
    ]
    redactor = Redactor()
    KubeAuth(kubeconfig=config).register_secrets(redactor)
    assert {"oidc-id", "oidc-refresh", "oidc-cs", "env-token", "arg-token", "arg-pw"} <= redactor.secrets
    assert not {"public", "eu-west-1", "eu", "get-token", "--region"} & redactor.secrets


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


# ---- KubeClient: bounded time against an API server that is down or frozen --------------


@pytest.fixture
def frozen_api_server():
    """A port that accepts TCP connections and never answers (a SIGSTOPped API server: the
    kernel completes the handshake, nothing reads). Yields (port, accepted connections)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    listener.close()
    for conn in accepted:
        conn.close()


def kubeconfig_for_port(tmp_path, port: int) -> str:
    config = copy.deepcopy(KUBECONFIG)
    config["clusters"][0]["cluster"] = {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}
    path = tmp_path / "kubeconfig-port.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_client_retries_once_at_most(tmp_path):
    client = KubeClient(kubeconfig_for_port(tmp_path, 1), None)
    # urllib3 would retry 3 times; the pool is built with the client, so it must carry ours.
    retries = client.rest.pool_manager.connection_pool_kw["retries"]
    assert getattr(retries, "total", retries) == KubeClient.RETRIES == 1


def test_frozen_api_server_fails_after_two_connect_timeouts(tmp_path, frozen_api_server, monkeypatch):
    port, accepted = frozen_api_server
    monkeypatch.setattr(KubeClient, "REQUEST_TIMEOUT", (0.3, 0.3))
    client = KubeClient(kubeconfig_for_port(tmp_path, port), None)
    began = time.monotonic()
    with pytest.raises(EngineError) as caught:
        client.get_json("/api/v1/namespaces/apps/secrets")
    took = time.monotonic() - began
    assert caught.value.kind == TIMEOUT
    assert "did not answer in time" in caught.value.msg
    assert len(accepted) == 2, "one attempt and one retry"
    assert took < 3, took


def test_closed_port_is_cluster_unreachable_at_once(tmp_path):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # bound then closed: nothing listens there
    client = KubeClient(kubeconfig_for_port(tmp_path, port), None)
    began = time.monotonic()
    with pytest.raises(EngineError) as caught:
        client.get_json("/api/v1/namespaces/apps/secrets")
    assert caught.value.kind == CLUSTER_UNREACHABLE
    assert "Connection refused" in caught.value.msg
    assert time.monotonic() - began < 2


def test_light_import_leaves_the_real_package_importable():
    """The stand-ins for kubernetes/__init__ are gone after the import: a later full import
    gets the real package, built on the same submodules."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._kube import load_kubernetes_client\n"
        "parts = load_kubernetes_client()\n"
        "assert 'kubernetes.client.models' not in sys.modules, 'the models were imported'\n"
        "assert 'kubernetes' not in sys.modules and 'kubernetes.client' not in sys.modules\n"
        "assert not {'requests', 'oauthlib', 'requests_oauthlib'} & set(sys.modules), 'rare-path modules were imported'\n"
        "from kubernetes.config import kube_config\n"
        "from kubernetes.client import rest\n"
        "# The deferred names reach the real modules on first use.\n"
        "from oauthlib.oauth2.rfc6749.errors import InvalidClientIdError\n"
        "assert kube_config.oauthlib.oauth2.rfc6749.errors.InvalidClientIdError is InvalidClientIdError\n"
        "assert rest.should_bypass_proxies('https://10.0.0.1:6443', no_proxy='10.0.0.1') is True\n"
        "assert kube_config.OAuth2Session(client_id='x').client_id == 'x'\n"
        "import kubernetes\n"
        "from kubernetes import client\n"
        "assert client.Configuration is parts.Configuration\n"
        "assert hasattr(client, 'CoreV1Api') and hasattr(kubernetes, 'config')\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_builtin_kinds_need_no_discovery_and_lists_follow_continue_tokens(tmp_path, monkeypatch):
    client = KubeClient(kubeconfig_for_port(tmp_path, 1), None)
    reads: list[tuple[str, dict]] = []
    pages = {
        None: {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "page-2"}},
        "page-2": {"items": [{"metadata": {"name": "b"}}], "metadata": {}},
    }

    def get_json(path, query=None, *, missing_ok=False):
        reads.append((path, dict(query or {})))
        if path.startswith("/apis/example.com"):
            return {"resources": [{"kind": "Widget", "name": "widgets", "namespaced": True}]}
        return pages[(query or {}).get("continue")]

    monkeypatch.setattr(client, "get_json", get_json)
    assert client.object_path("apps/v1", "Deployment", "apps", "web") == "/apis/apps/v1/namespaces/apps/deployments/web"
    assert client.object_path("rbac.authorization.k8s.io/v1", "ClusterRole", "apps", "x") == \
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/x"
    assert reads == []  # no discovery for built-in kinds
    assert sorted(client.list_objects("v1", "ConfigMap", "apps")) == ["a", "b"]
    assert reads == [("/api/v1/namespaces/apps/configmaps", {"limit": "500"}),
                     ("/api/v1/namespaces/apps/configmaps", {"limit": "500", "continue": "page-2"})]
    assert client.object_path("example.com/v1", "Widget", "apps") == "/apis/example.com/v1/namespaces/apps/widgets"
    assert reads[-1] == ("/apis/example.com/v1", {})


def test_the_server_version_is_read_once_per_client(tmp_path, monkeypatch):
    """The releases of a helm_releases task share a client: one /version request, not one each."""
    client = KubeClient(kubeconfig_for_port(tmp_path, 1), None)
    reads: list[str] = []

    def get_json(path, query=None, *, missing_ok=False):
        reads.append(path)
        return {"gitVersion": "v1.36.3"}

    monkeypatch.setattr(client, "get_json", get_json)
    assert [client.server_version() for _ in range(3)] == ["v1.36.3"] * 3
    assert reads == ["/version"]


@pytest.mark.parametrize("labels, selector", [
    ([{"app": "web", "tier": "a"}, {"app": "web", "tier": "b"}], "app=web"),
    ([{"app": "web", "example.com/team": "x"}, {"example.com/team": "x", "app": "web"}], "app=web,example.com/team=x"),
    ([{"app": "web"}, {"app": "db"}], None),
    ([{"app": "web"}, None], None),
    # What a selector cannot name is left out: an empty value, a value with a space or a comma,
    # a key with a leading dash, a value that is not a string.
    ([{"a": "", "b": "x y", "c": "1,2", "-d": "v", "e": 1}] * 2, None),
    ([{"app": "web", "note": "a=b"}] * 2, "app=web"),
])
def test_shared_label_selector(labels, selector):
    objects = [None if item is None else {"metadata": {"labels": item}} for item in labels]
    assert shared_label_selector(objects) == selector
