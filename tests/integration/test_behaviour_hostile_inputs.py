"""Hostile and careless inputs, on helm 3 and helm 4: each one fails with its documented
``error.kind``, a message that names the problem, no traceback, in bounded time, and changes
nothing on the cluster.

Other tests run on the same cluster at the same time, so "nothing changed" compares only what
a case could have touched: helm's release Secrets in the namespaces involved, and no new
namespace named after the input.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import helm_work, run_playbook
from test_helm_deploy import SAMPLE, configmap, deploy_args

# A hung helm is stopped at 3 * timeout + 30 s; everything else ends in seconds. Generous, so a
# slow shared machine does not flake, but a hang cannot pass.
HANG_GUARD_SECONDS = 60


@dataclass
class Ctx:
    namespace: str
    tmp_path: Path
    helm: str
    kubeconfig: str
    chart_copy: t.Callable[[str], Path]
    extra_namespaces: list[str] = field(default_factory=list)

    def file(self, name: str, content: str, mode: int = 0o644) -> str:
        path = self.tmp_path / name
        path.write_text(content)
        path.chmod(mode)
        return str(path)

    def fake_helm(self, upgrade_body: str) -> str:
        """A helm that is the real one except for ``upgrade``."""
        return self.file("fake-helm", f"#!/bin/sh\nif [ \"$1\" = upgrade ]; then\n{upgrade_body}\nfi\nexec {self.helm} \"$@\"\n", 0o755)


@dataclass
class Case:
    id: str
    module: str
    args: t.Callable[[Ctx], dict[str, t.Any]]
    kind: str
    needle: str
    # The namespace the module is given, when it is the hostile input itself.
    hostile_namespace: str | None = None
    marks: tuple[t.Any, ...] = ()
    # helm major ("helm3"/"helm4") -> the reason this case is a known defect on it.
    xfail_on: dict[str, str] = field(default_factory=dict)


def deploy(ctx: Ctx, **extra: t.Any) -> dict[str, t.Any]:
    return dict(deploy_args(ctx.namespace), **extra)


def release(ctx: Ctx, **extra: t.Any) -> dict[str, t.Any]:
    return dict({"name": "web", "namespace": ctx.namespace}, **extra)


def hostile_ns(value: str) -> t.Callable[[Ctx], dict[str, t.Any]]:
    return lambda ctx: deploy(ctx, namespace=value)


def chart_with(ctx: Ctx, path: str, content: str) -> str:
    chart = ctx.chart_copy("sample")
    (chart / path).write_text(content)
    return str(chart)


def broken_chart_yaml(ctx: Ctx) -> str:
    return chart_with(ctx, "Chart.yaml", "apiVersion: v2\nname: [broken\nversion: 0.1.0\n")


def empty_chart_dir(ctx: Ctx) -> str:
    path = ctx.tmp_path / "empty-chart"
    path.mkdir()
    return str(path)


def schema_violation(ctx: Ctx) -> dict[str, t.Any]:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
              "properties": {"replicaCount": {"type": "integer", "minimum": 0}}}
    return deploy(ctx, chart_ref=chart_with(ctx, "values.schema.json", json.dumps(schema)), release_values={"replicaCount": "three"})


def incompressible_values() -> dict[str, t.Any]:
    return {"blob": base64.b64encode(os.urandom(900 * 1024)).decode("ascii")}  # about 1.2 MB of text


def nested(depth: int) -> dict[str, t.Any]:
    tree: t.Any = "leaf"
    for _level in range(depth):
        tree = {"k": tree}
    return tree


def nested_json(depth: int) -> str:
    """Written, not json.dumps'ed: Python's encoder recurses and stops at about 1,000 levels."""
    return '{"k": ' * depth + '"leaf"' + "}" * depth


def nested_yaml(depth: int) -> str:
    return "\n".join("  " * level + "k:" for level in range(depth)) + " leaf\n"


def never_answers(ctx: Ctx) -> str:
    """A binary_path that starts and then never answers, not even ``helm version``."""
    return ctx.file("helm-never-answers", "#!/bin/sh\nexec sleep 3600\n", 0o755)


def kubeconfig_text(ctx: Ctx) -> str:
    return Path(ctx.kubeconfig).read_text()


NOT_A_NAMESPACE = "is not a valid namespace"
NOT_A_NAME = "is not a valid release name"
TOO_DEEP = "nests mappings and lists more than 100 levels deep"
NEVER_ANSWERS = "did not answer 'helm version' within 5s and was stopped"

CASES: list[Case] = [
    # ---- namespaces: Kubernetes' DNS-1123 label; never part of a URL path or a new namespace
    Case("ns-empty", "helm_deploy", hostile_ns(""), "invalid_arguments", "namespace is empty", ""),
    Case("ns-dotdot", "helm_deploy", hostile_ns("ns/../other"), "invalid_arguments", NOT_A_NAMESPACE, "ns/../other"),
    Case("ns-hash", "helm_deploy", hostile_ns("ns/secrets#"), "invalid_arguments", NOT_A_NAMESPACE, "ns/secrets#"),
    Case("ns-upper", "helm_deploy", hostile_ns("UPPER"), "invalid_arguments", NOT_A_NAMESPACE, "UPPER"),
    Case("ns-64", "helm_deploy", hostile_ns("n" * 64), "invalid_arguments", NOT_A_NAMESPACE, "n" * 64),
    Case("ns-dash", "helm_deploy", hostile_ns("-lead"), "invalid_arguments", NOT_A_NAMESPACE, "-lead"),
    Case("ns-newline", "helm_deploy", hostile_ns("ns\nother"), "invalid_arguments", "control character", "ns\nother"),
    Case("ns-space", "helm_deploy", hostile_ns(" spaced "), "invalid_arguments", "leading or trailing spaces", " spaced "),
    Case("status-ns-dotdot", "helm_status", lambda ctx: release(ctx, namespace="ns/../kube-system"),
         "invalid_arguments", NOT_A_NAMESPACE, "ns/../kube-system"),
    Case("rollback-ns-query", "helm_rollback", lambda ctx: release(ctx, namespace="ns?labelSelector=x"),
         "invalid_arguments", NOT_A_NAMESPACE, "ns?labelSelector=x"),
    # ---- release names: helm's DNS-1123 subdomain of at most 53 characters
    Case("name-empty", "helm_deploy", lambda ctx: deploy(ctx, name=""), "invalid_arguments", "name is empty"),
    Case("name-selector", "helm_deploy", lambda ctx: deploy(ctx, name="name,name!=x"), "invalid_arguments", NOT_A_NAME),
    Case("name-54", "helm_deploy", lambda ctx: deploy(ctx, name="n" * 54), "invalid_arguments", "is 54 characters long"),
    Case("name-underscore", "helm_deploy", lambda ctx: deploy(ctx, name="a_b"), "invalid_arguments", NOT_A_NAME),
    Case("name-dash", "helm_deploy", lambda ctx: deploy(ctx, name="-x"), "invalid_arguments", NOT_A_NAME),
    Case("status-name-selector", "helm_status", lambda ctx: release(ctx, name="web,owner!=helm"), "invalid_arguments", NOT_A_NAME),
    Case("rollback-name-underscore", "helm_rollback", lambda ctx: release(ctx, name="a_b"), "invalid_arguments", NOT_A_NAME),
    # ---- charts
    Case("chart-flag", "helm_deploy", lambda ctx: deploy(ctx, chart_ref="--post-renderer=/bin/true"),
         "invalid_arguments", "starts with '-'"),
    Case("chart-empty", "helm_deploy", lambda ctx: deploy(ctx, chart_ref=""), "invalid_arguments", "chart_ref is empty"),
    Case("chart-missing", "helm_deploy", lambda ctx: deploy(ctx, chart_ref=str(ctx.tmp_path / "no-such-chart")),
         "chart_not_found", "does not exist"),
    Case("chart-not-a-chart", "helm_deploy", lambda ctx: deploy(ctx, chart_ref=ctx.file("notes.txt", "hello\n")),
         "chart_invalid", "gzipped archive"),
    Case("chart-no-chart-yaml", "helm_deploy", lambda ctx: deploy(ctx, chart_ref=empty_chart_dir(ctx)),
         "chart_invalid", "Chart.yaml"),
    Case("chart-yaml-malformed", "helm_deploy", lambda ctx: deploy(ctx, chart_ref=broken_chart_yaml(ctx)),
         "chart_invalid", "Chart.yaml"),
    Case("template-syntax", "helm_deploy",
         lambda ctx: deploy(ctx, chart_ref=chart_with(ctx, "templates/broken.yaml", "data: {{ .Values.message \n")),
         "render_failed", "parse error"),
    # ---- values
    Case("set-bad-index", "helm_deploy", lambda ctx: deploy(ctx, set_values=[{"value": "a[x]=1"}]),
         "invalid_values", "failed parsing --set"),
    # helm 4 installs these (it takes "error parsing index: EOF" for the end of the input); helm 3 refuses them.
    Case("set-unclosed-index", "helm_deploy", lambda ctx: deploy(ctx, set_values=[{"value": "a[=x"}]),
         "invalid_values", "failed parsing --set data: error parsing index: EOF (an index needs its closing ']')"),
    Case("set-string-unclosed-index", "helm_deploy", lambda ctx: deploy(ctx, set_values=[{"value": "a[0=x", "value_type": "string"}]),
         "invalid_values", "failed parsing --set-string data: error parsing index: EOF"),
    Case("set-literal-unclosed-index", "helm_deploy",
         lambda ctx: deploy(ctx, set_values=[{"value": "a[0][=x", "value_type": "literal"}]),
         "invalid_values", "failed parsing --set-literal data: error parsing index: EOF"),
    Case("set-json-object-without-key", "helm_deploy",
         lambda ctx: deploy(ctx, set_values=[{"value": '{"message":"a=b"}', "value_type": "json"}]),
         "invalid_values", "failed parsing --set-json data"),
    Case("set-no-equals", "helm_deploy", lambda ctx: deploy(ctx, set_values=[{"value": "message"}]),
         "invalid_arguments", "key=value"),
    Case("schema-violation", "helm_deploy", lambda ctx: schema_violation(ctx), "invalid_values", "schema"),
    Case("schema-violation-names-the-value", "helm_deploy", lambda ctx: schema_violation(ctx), "invalid_values",
         "/replicaCount"),
    Case("values-file-missing", "helm_deploy", lambda ctx: deploy(ctx, values_files=[str(ctx.tmp_path / "missing.yaml")]),
         "invalid_values", "does not exist"),
    Case("values-file-dir", "helm_deploy", lambda ctx: deploy(ctx, values_files=[str(ctx.tmp_path)]),
         "invalid_values", "is a directory"),
    Case("values-file-1500-deep", "helm_deploy", lambda ctx: deploy(ctx, values_files=[ctx.file("deep.json", nested_json(1500))]),
         "invalid_values", TOO_DEEP),
    Case("values-file-101-deep", "helm_deploy", lambda ctx: deploy(ctx, values_files=[ctx.file("deep.yaml", nested_yaml(101))]),
         "invalid_values", TOO_DEEP),
    Case("values-file-alias-loop", "helm_deploy", lambda ctx: deploy(ctx, values_files=[ctx.file("loop.yaml", "a: &a\n  b: [*a]\n")]),
         "invalid_values", TOO_DEEP),
    Case("release-values-101-deep", "helm_deploy", lambda ctx: deploy(ctx, release_values=nested(101)),
         "invalid_values", "release_values " + TOO_DEEP),
    Case("set-json-1500-deep", "helm_deploy",
         lambda ctx: deploy(ctx, set_values=[{"value": "a=" + nested_json(1500), "value_type": "json"}]),
         "invalid_values", "set_values[0] " + TOO_DEEP),
    Case("set-index-101-deep", "helm_deploy", lambda ctx: deploy(ctx, set_values=[{"value": "a" + "[0]" * 100 + "=x"}]),
         "invalid_values", "set_values[0] " + TOO_DEEP),
    Case("values-over-1mib", "helm_deploy", lambda ctx: deploy(ctx, release_values=incompressible_values()),
         "invalid_values", "a release Secret can hold"),
    # ---- durations and numbers
    Case("timeout-abc", "helm_deploy", lambda ctx: deploy(ctx, timeout="abc"), "invalid_arguments", "is not a duration"),
    Case("timeout-negative", "helm_deploy", lambda ctx: deploy(ctx, timeout="-5s"), "invalid_arguments", "must be positive"),
    Case("timeout-zero-wait", "helm_deploy", lambda ctx: deploy(ctx, timeout=0, wait=True), "invalid_arguments", "must be positive"),
    Case("timeout-empty", "helm_deploy", lambda ctx: deploy(ctx, timeout=""), "invalid_arguments", "timeout is empty"),
    Case("lock-wait-negative", "helm_deploy", lambda ctx: deploy(ctx, lock_wait=-1), "invalid_arguments", "lock_wait must be zero or positive"),
    Case("stale-x", "helm_deploy", lambda ctx: deploy(ctx, stale_pending_after="x"), "invalid_arguments", "stale_pending_after 'x' is not a duration"),
    Case("history-max-negative", "helm_deploy", lambda ctx: deploy(ctx, history_max=-1), "invalid_arguments", "history_max must be 0 or more"),
    Case("status-poll-zero", "helm_status", lambda ctx: release(ctx, wait_for="deployed", poll_interval=0),
         "invalid_arguments", "poll_interval must be between"),
    Case("status-poll-negative", "helm_status", lambda ctx: release(ctx, poll_interval=-1),
         "invalid_arguments", "poll_interval must be between"),
    Case("status-timeout-zero", "helm_status", lambda ctx: release(ctx, wait_for="healthy", timeout="0"),
         "invalid_arguments", "timeout must be positive"),
    Case("rollback-revision-zero", "helm_rollback", lambda ctx: release(ctx, revision=0), "invalid_arguments", "revision must be 1 or more"),
    Case("rollback-revision-negative", "helm_rollback", lambda ctx: release(ctx, revision=-1), "invalid_arguments", "revision must be 1 or more"),
    Case("rollback-timeout-abc", "helm_rollback", lambda ctx: release(ctx, timeout="soon"), "invalid_arguments", "is not a duration"),
    # ---- releases that are not there
    Case("rollback-missing-release", "helm_rollback", lambda ctx: release(ctx), "release_not_found", "does not exist"),
    Case("status-missing-release", "helm_status", lambda ctx: release(ctx, fail_on_missing=True), "release_not_found", "does not exist"),
    # ---- cluster access
    Case("kubeconfig-list", "helm_deploy", lambda ctx: deploy(ctx, kubeconfig=[ctx.kubeconfig, ctx.kubeconfig]),
         "invalid_arguments", "kubeconfig must be a path or a dictionary"),
    Case("kubeconfig-dir", "helm_deploy", lambda ctx: deploy(ctx, kubeconfig=str(ctx.tmp_path)), "kubeconfig_invalid", "is a directory"),
    Case("kubeconfig-not-yaml", "helm_deploy", lambda ctx: deploy(ctx, kubeconfig=ctx.file("kc-bad", "clusters: [unclosed\n  - : :\n")),
         "kubeconfig_invalid", "is not valid YAML"),
    Case("kubeconfig-clusters-5", "helm_deploy", lambda ctx: deploy(ctx, kubeconfig=ctx.file("kc-5", "clusters: 5\n")),
         "kubeconfig_invalid", "'clusters' is a int, not a list"),
    Case("kubeconfig-missing", "helm_deploy", lambda ctx: deploy(ctx, kubeconfig=str(ctx.tmp_path / "no-kubeconfig")),
         "kubeconfig_invalid", "does not exist"),
    Case("status-kubeconfig-clusters-5", "helm_status", lambda ctx: release(ctx, kubeconfig=ctx.file("kc-5", "clusters: 5\n")),
         "kubeconfig_invalid", "'clusters' is a int, not a list"),
    Case("context-nope", "helm_deploy", lambda ctx: deploy(ctx, context="nope"), "invalid_arguments", "context 'nope' is not in the kubeconfig"),
    Case("host-not-url", "helm_deploy", lambda ctx: deploy(ctx, host="not a url"), "invalid_arguments", "is not a URL"),
    Case("host-port-1", "helm_deploy", lambda ctx: deploy(ctx, host="https://127.0.0.1:1"), "cluster_unreachable", "unreachable"),
    Case("status-host-port-1", "helm_status", lambda ctx: release(ctx, host="https://127.0.0.1:1"), "cluster_unreachable", "unreachable"),
    Case("rollback-host-port-1", "helm_rollback", lambda ctx: release(ctx, host="https://127.0.0.1:1"), "cluster_unreachable", "unreachable"),
    # ---- the helm binary
    Case("binary-passwd", "helm_deploy", lambda ctx: deploy(ctx, binary_path="/etc/passwd"), "helm_missing", "is not an executable file"),
    Case("binary-dir", "helm_deploy", lambda ctx: deploy(ctx, binary_path=str(ctx.tmp_path)), "helm_missing", "is not an executable file"),
    Case("binary-missing", "helm_deploy", lambda ctx: deploy(ctx, binary_path=str(ctx.tmp_path / "helm")), "helm_missing", "was not found"),
    Case("binary-never-answers", "helm_deploy", lambda ctx: deploy(ctx, binary_path=never_answers(ctx)), "helm_missing", NEVER_ANSWERS),
    Case("rollback-binary-never-answers", "helm_rollback", lambda ctx: release(ctx, binary_path=never_answers(ctx)),
         "helm_missing", NEVER_ANSWERS),
    Case("rollback-binary-passwd", "helm_rollback", lambda ctx: release(ctx, binary_path="/etc/passwd"), "helm_missing", "is not an executable file"),
    Case("helm-v2", "helm_deploy",
         lambda ctx: deploy(ctx, binary_path=ctx.file("helm-v2", "#!/bin/sh\necho v2.17.0\n", 0o755)),
         "helm_unsupported", "is not supported"),
    Case("helm-prints-empty-object", "helm_deploy",
         lambda ctx: deploy(ctx, binary_path=ctx.fake_helm("  echo '{}'\n  exit 0")),
         "helm_output_invalid", "not a release"),
]


def _helm_secrets(kubectl, namespaces: set[str]) -> set[tuple[str, str, str]]:
    items = json.loads(kubectl("get", "secrets", "-A", "-l", "owner=helm", "-o", "json").stdout)["items"]
    return {(i["metadata"]["namespace"], i["metadata"]["name"], i["metadata"]["resourceVersion"])
            for i in items if i["metadata"]["namespace"] in namespaces}


def _namespaces(kubectl) -> set[str]:
    return {n.split("/", 1)[1] for n in kubectl("get", "namespaces", "-o", "name").stdout.split()}


def _candidates(value: str | None) -> set[str]:
    """Namespaces a careless implementation could have made of a hostile namespace input."""
    if value is None:
        return set()
    lowered = value.lower()
    parts = {p.strip("-") for p in re.split(r"[^a-z0-9-]+", lowered)}
    return {value, lowered, lowered.strip(), lowered.strip("-")} | {p for p in parts if len(p) >= 2}


@pytest.fixture
def unchanged(kubectl, namespace):
    """Snapshot, then a check that nothing a case could touch changed."""
    state: dict[str, t.Any] = {}

    def before(hostile_namespace: str | None, extra: t.Sequence[str] = ()) -> None:
        state["watched"] = {namespace, *extra} | (_candidates(hostile_namespace) & _namespaces(kubectl))
        state["hostile"] = _candidates(hostile_namespace)
        state["namespaces"] = _namespaces(kubectl)
        state["secrets"] = _helm_secrets(kubectl, state["watched"])
        state["namespace_existed"] = namespace in state["namespaces"]

    def after() -> None:
        now = _namespaces(kubectl)
        created = now - state["namespaces"]
        assert not created & (state["hostile"] | {namespace} if not state["namespace_existed"] else state["hostile"]), created
        assert _helm_secrets(kubectl, state["watched"]) == state["secrets"]

    return before, after


def run_hostile(run_module, module: str, args: dict[str, t.Any], kind: str, needle: str) -> dict[str, t.Any]:
    started = time.monotonic()
    result = run_module(module, args, expect_failure=True)
    elapsed = time.monotonic() - started
    assert elapsed < HANG_GUARD_SECONDS, f"{module} took {elapsed:.0f}s"
    assert result["failed"] is True
    assert result["error"]["kind"] == kind, result["error"]
    assert needle in result["msg"], result["msg"]
    assert result["error"]["message"] == result["msg"]
    assert result.get("changed") is False, result
    assert "Traceback" not in result["_stdout"] and "Traceback" not in result["_stderr"]
    return result


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_hostile_input(case: Case, request, run_module, namespace, tmp_path, helm, kubeconfig, chart_copy, unchanged):
    major = "helm3" if "helm3" in Path(helm).name else "helm4"
    if major in case.xfail_on:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=case.xfail_on[major]))
    before, after = unchanged
    ctx = Ctx(namespace, tmp_path, helm, kubeconfig, chart_copy)
    args = case.args(ctx)
    before(case.hostile_namespace)
    result = run_hostile(run_module, case.module, args, case.kind, case.needle)
    after()
    if case.kind in ("invalid_arguments", "invalid_values", "kubeconfig_invalid", "helm_missing") \
            and case.id not in ("schema-violation", "schema-violation-names-the-value"):
        # Refused before anything ran: no API request, and no helm process but the version probe
        # of a binary that never answers it.
        probes = 1 if case.needle == NEVER_ANSWERS else 0
        assert (result.get("helm_processes", 0), result.get("kube_requests", 0)) == (probes, 0), result.get("commands")


def test_values_over_1mib_never_reach_the_api_server(run_module, namespace, unchanged):
    before, after = unchanged
    before(None)
    result = run_hostile(run_module, "helm_deploy", deploy_args(namespace, release_values=incompressible_values()),
                         "invalid_values", "more than the 1048576 bytes")
    after()
    assert (result["helm_processes"], result["kube_requests"], result["commands"]) == (0, 0, [])


def test_hung_helm_is_stopped_at_its_deadline(run_module, namespace, tmp_path, helm, kubeconfig, chart_copy, unchanged):
    ctx = Ctx(namespace, tmp_path, helm, kubeconfig, chart_copy)
    pid_file = tmp_path / "hung.pid"
    fake = ctx.fake_helm(f"  echo $$ > {pid_file}\n  exec sleep 3600")
    before, after = unchanged
    before(None)
    # timeout 1 s: the deadline is 3 * 1 + 30 = 33 s.
    result = run_hostile(run_module, "helm_deploy", deploy_args(namespace, binary_path=fake, wait=False, timeout=1),
                         "timeout", "did not finish within 33s")
    after()
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() or "sleep" not in Path(f"/proc/{pid}/cmdline").read_text(), "the hung helm outlived the task"
    assert result["error"]["deadline_seconds"] == 33


def test_server_side_on_helm3_is_refused_before_anything_changes(run_module, namespace, helm, unchanged):
    if "helm3" not in Path(helm).name:
        pytest.skip("server_side is a helm 4 option")
    before, after = unchanged
    before(None)
    result = run_hostile(run_module, "helm_deploy", deploy_args(namespace, server_side="true"), "helm_unsupported", "needs helm 4")
    after()
    assert helm_work(result) == []  # at most `helm version`


def test_a_set_value_that_looks_like_a_flag_is_data(run_module, namespace, kubectl):
    """``--set=message=--no-hooks`` is one argument: helm reads a value, not a flag."""
    args = deploy_args(namespace, set_values=[{"value": "message=--no-hooks"}, {"value": "extraConfig.FLAG=-x", "value_type": "string"}])
    result = run_module("helm_deploy", args)
    assert result["changed"] is True
    data = configmap(kubectl, namespace)
    assert data["MESSAGE"] == "--no-hooks" and data["FLAG"] == "-x"
    # The pre-install hook ran: --no-hooks was not taken as a flag.
    assert [(h["name"], h["phase"]) for h in result["hooks"]] == [("web-pre-install", "Succeeded")]


def test_values_nested_to_the_limit_deploy(run_module, namespace, tmp_path, kubectl):
    """The depth limit refuses nothing a chart could need: 100 levels from each source install."""
    values_file = tmp_path / "deep.yaml"
    values_file.write_text(nested_yaml(100))
    args = deploy_args(namespace, values_files=[str(values_file)], release_values={"message": "deep", "extra": nested(99)},
                       set_values=[{"value": "more" + "[0]" * 99 + "=x"}, {"value": "json=" + nested_json(99), "value_type": "json"}])
    result = run_module("helm_deploy", args)
    assert result["changed"] is True and result["release"]["status"] == "deployed"
    assert configmap(kubectl, namespace)["MESSAGE"] == "deep"


def test_a_helm_that_never_answers_fails_within_a_task_timeout_of_20s(namespace, tmp_path, helm, kubeconfig, unchanged):
    """Through ansible-playbook, with the task keyword ``timeout: 20``: the version probe's own
    deadline ends the task first, with a kind and the binary's name, for deploy and rollback."""
    binary = tmp_path / "helm-never-answers"
    binary.write_text(f"#!/bin/sh\necho $$ >> {tmp_path}/pids\nexec sleep 3600\n")
    binary.chmod(0o755)
    before, after = unchanged
    before(None)
    results = tmp_path / "results.json"
    common = f"name: web\n        namespace: {namespace}\n        binary_path: {binary}\n        kubeconfig: {kubeconfig}"
    playbook = f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: deploy
      ai_mesh.helm_engine.helm_deploy:
        {common}
        chart_ref: {SAMPLE}
      timeout: 20
      ignore_errors: true
      register: deploy
    - name: rollback
      ai_mesh.helm_engine.helm_rollback:
        {common}
      timeout: 20
      ignore_errors: true
      register: rollback
    - name: keep the results
      ansible.builtin.copy:
        content: "{{{{ {{'deploy': deploy, 'rollback': rollback}} | to_json }}}}"
        dest: {results}
        mode: "0600"
"""
    started = time.monotonic()
    proc = run_playbook(playbook, tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    after()
    for name, result in json.loads(results.read_text()).items():
        assert result["failed"] is True and result["error"]["kind"] == "helm_missing", (name, result)
        assert result["msg"].startswith(f"{binary} did not answer 'helm version' within 5s"), result["msg"]
        # ansible-core 2.19 registers "(traceback unavailable)" for any failed task.
        assert "Timed out after" not in result["msg"] and "Traceback" not in result.get("exception", "")
        assert result["duration"] < 10, (name, result["duration"])  # the probe's 5 s, not the task's 20 s
    assert "Traceback" not in output
    assert elapsed < 2 * 20, f"two tasks took {elapsed:.0f}s"
    for pid in (tmp_path / "pids").read_text().split():
        assert not Path(f"/proc/{pid}").exists() or "sleep" not in Path(f"/proc/{pid}/cmdline").read_text(), \
            "the never-answering binary outlived its task"


def test_deep_values_through_ansible_playbook(namespace, tmp_path, helm, kubeconfig, unchanged):
    """What the controller passes on: a 1,500-level values file and --set-json value (files and
    strings), and release_values past the limit but shallow enough for ansible-core's own
    templating (it refuses about 190 levels and more before any module runs)."""
    deep_file = tmp_path / "deep.yaml"
    deep_file.write_text(nested_yaml(1500))
    (tmp_path / "vars.yml").write_text("deep_values:\n" + "".join("  " * (level + 1) + "k:\n" for level in range(150))
                                       + "  " * 151 + "k: leaf\n")
    common = (f"name: web\n        namespace: {namespace}\n        create_namespace: true\n        chart_ref: {SAMPLE}\n"
              f"        binary_path: {helm}\n        kubeconfig: {kubeconfig}")
    tasks = {
        "values_file": f"values_files: [{deep_file}]",
        "release_values": "release_values: \"{{ deep_values }}\"",
        "set_json": f"set_values: [{{value: 'a={nested_json(1500)}', value_type: json}}]",
        "unclosed_index": "set_values: [{value: 'a[=x'}]",
    }
    results = tmp_path / "results.json"
    body = "".join(f"""
    - name: {name}
      ai_mesh.helm_engine.helm_deploy:
        {common}
        {line}
      ignore_errors: true
      register: {name}
""" for name, line in tasks.items())
    playbook = f"""
- hosts: localhost
  gather_facts: false
  vars_files: [{tmp_path / 'vars.yml'}]
  tasks:{body}
    - name: keep the results
      ansible.builtin.copy:
        content: "{{{{ {{{', '.join(f"'{name}': {name}" for name in tasks)}}} | to_json }}}}"
        dest: {results}
        mode: "0600"
"""
    before, after = unchanged
    before(None)
    proc = run_playbook(playbook, tmp_path=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    after()
    found = json.loads(results.read_text())
    expected = {
        # The whole path: a user needs all of it to find the file (only a hostile one is cut).
        "values_file": f"values file '{deep_file}' {TOO_DEEP}",
        "release_values": f"release_values {TOO_DEEP}",
        "set_json": f"set_values[0] {TOO_DEEP}",
        "unclosed_index": "set_values[0] (--set, key 'a['): failed parsing --set data: error parsing index: EOF",
    }
    for name, needle in expected.items():
        result = found[name]
        assert result["failed"] is True and result["error"]["kind"] == "invalid_values", (name, result.get("msg"))
        assert result["msg"].startswith(needle), (name, result["msg"])
        assert name == "unclosed_index" or TOO_DEEP in result["msg"], (name, result["msg"])
        assert (result["commands"], result["kube_requests"]) == ([], 0)
    assert "Traceback" not in output and "recursion" not in output
