"""classify_error against what real helm 3 and helm 4 print, one case per error kind.

Each case runs the helm binary itself, the way the modules run it (``upgrade --install
--dry-run=server``, flags, ``--``, then release and chart), provokes one failure, and checks the
kind ``classify_error`` gives helm's real stderr. The unit tests hold copies of such messages;
these tests catch a helm release that words them differently.
"""

from __future__ import annotations

import re
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._helm import classify_error

HELM_DEADLINE = 120  # seconds; every case fails in well under a second when helm behaves

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  replicas: {{ .Values.replicas | quote }}
"""


def make_chart(root: Path, *, chart_yaml: str | None = None, templates: dict[str, str] | None = None,
               schema: str | None = None) -> Path:
    """A tiny chart: one ConfigMap, ``replicas: 1``, and whatever a case breaks."""
    chart = root / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(chart_yaml or "apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    for name, text in (templates or {"configmap.yaml": CONFIGMAP}).items():
        (chart / "templates" / name).write_text(text)
    if schema is not None:
        (chart / "values.schema.json").write_text(schema)
    return chart


def helm_stderr(helm: str, kubeconfig: str, namespace: str, chart: str, *flags: str) -> str:
    """helm's stderr for a dry-run upgrade --install that must fail."""
    argv = [helm, "upgrade", "--install", "--dry-run=server", *flags, f"--namespace={namespace}",
            f"--kubeconfig={kubeconfig}", "--", "web", chart]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=HELM_DEADLINE)
    assert proc.returncode != 0, f"helm was expected to fail: {' '.join(argv)}\n{proc.stdout[-2000:]}"
    assert proc.stderr.strip(), f"helm failed without a message: {' '.join(argv)}"
    return proc.stderr


def assert_kind(stderr: str, expected: str) -> None:
    kind = classify_error(stderr)
    assert kind == expected, f"classify_error gave {kind!r}, expected {expected!r}, for helm's stderr:\n{stderr}"


def kubeconfig_copy(kubeconfig: str, tmp_path: Path, *, server: str | None = None, token: str | None = None) -> str:
    """The cluster's kubeconfig with another server URL, or with every user's credentials
    replaced by a bearer token (the CA stays, so TLS still verifies)."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    if server is not None:
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = server
    if token is not None:
        for user in config["users"]:
            user["user"] = {"token": token}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return str(path)


# ---- charts and values: the chart is read after helm has reached the cluster -------------


def test_template_syntax_error_is_render_failed(helm, kubeconfig, namespace, tmp_path):
    chart = make_chart(tmp_path, templates={"configmap.yaml": CONFIGMAP, "broken.yaml": "data: {{ .Values.replicas \n"})
    stderr = helm_stderr(helm, kubeconfig, namespace, str(chart))
    assert "broken.yaml" in stderr, stderr
    assert_kind(stderr, "render_failed")


def test_values_schema_violation_is_invalid_values(helm, kubeconfig, namespace, tmp_path):
    schema = '{"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}, "required": ["replicas"]}'
    chart = make_chart(tmp_path, schema=schema)
    stderr = helm_stderr(helm, kubeconfig, namespace, str(chart), "--set-string=replicas=three")
    assert "replicas" in stderr, stderr
    assert_kind(stderr, "invalid_values")


def test_missing_chart_path_is_chart_not_found(helm, kubeconfig, namespace, tmp_path):
    stderr = helm_stderr(helm, kubeconfig, namespace, str(tmp_path / "no-such-chart"))
    assert_kind(stderr, "chart_not_found")


def test_malformed_chart_yaml_is_chart_invalid(helm, kubeconfig, namespace, tmp_path):
    chart = make_chart(tmp_path, chart_yaml="apiVersion: v2\nname: [tiny\nversion: 0.1.0\n")
    stderr = helm_stderr(helm, kubeconfig, namespace, str(chart))
    assert_kind(stderr, "chart_invalid")


def test_chart_yaml_without_version_is_chart_invalid(helm, kubeconfig, namespace, tmp_path):
    chart = make_chart(tmp_path, chart_yaml="apiVersion: v2\nname: tiny\n")
    stderr = helm_stderr(helm, kubeconfig, namespace, str(chart))
    assert_kind(stderr, "chart_invalid")


def test_bad_set_index_is_invalid_values(helm, kubeconfig, namespace, tmp_path):
    chart = make_chart(tmp_path)
    stderr = helm_stderr(helm, kubeconfig, namespace, str(chart), "--set=list[99999999]=1")
    assert "--set" in stderr, stderr
    assert_kind(stderr, "invalid_values")


# ---- registries ----------------------------------------------------------------------------


def test_unreachable_chart_repository_is_registry_unreachable(helm, kubeconfig, namespace):
    stderr = helm_stderr(helm, kubeconfig, namespace, "sample", "--repo=http://127.0.0.1:1")
    assert_kind(stderr, "registry_unreachable")


def test_unreachable_oci_registry_is_registry_unreachable(helm, kubeconfig, namespace):
    stderr = helm_stderr(helm, kubeconfig, namespace, "oci://127.0.0.1:1/charts/x")
    assert_kind(stderr, "registry_unreachable")


# ---- the cluster ---------------------------------------------------------------------------


def test_unreachable_cluster_is_cluster_unreachable(helm, kubeconfig, namespace, tmp_path):
    bad = kubeconfig_copy(kubeconfig, tmp_path, server="https://127.0.0.1:1")
    stderr = helm_stderr(helm, bad, namespace, str(make_chart(tmp_path)))
    assert_kind(stderr, "cluster_unreachable")


def test_bad_token_is_unauthorized(helm, kubeconfig, namespace, tmp_path):
    bad = kubeconfig_copy(kubeconfig, tmp_path, token="wrong")
    stderr = helm_stderr(helm, bad, namespace, str(make_chart(tmp_path)))
    assert_kind(stderr, "unauthorized")


def test_token_without_rights_is_forbidden(helm, kubeconfig, namespace, kubectl, tmp_path):
    kubectl("create", "namespace", namespace)
    kubectl("-n", namespace, "create", "serviceaccount", "nobody")
    token = kubectl("-n", namespace, "create", "token", "nobody", "--duration=10m").stdout.strip()
    config = kubeconfig_copy(kubeconfig, tmp_path, token=token)
    stderr = helm_stderr(helm, config, namespace, str(make_chart(tmp_path)))
    assert f"system:serviceaccount:{namespace}:nobody" in stderr, stderr
    assert_kind(stderr, "forbidden")


# ---- helm's own command line ---------------------------------------------------------------


def test_unknown_flag_is_helm_failed_not_a_cluster_problem(helm, kubeconfig, namespace, tmp_path):
    stderr = helm_stderr(helm, kubeconfig, namespace, str(make_chart(tmp_path)), "--no-such-flag")
    assert "unknown flag" in stderr, stderr
    kind = classify_error(stderr)
    assert kind != "cluster_unreachable", f"a flag helm does not know is no cluster problem:\n{stderr}"
    assert_kind(stderr, "helm_failed")
