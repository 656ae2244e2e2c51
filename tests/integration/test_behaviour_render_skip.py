"""The render skipped on a no-op, on the local cluster, helm 3 and helm 4.

Each deploy stores the digest of its render inputs on the revision's storage Secret; a no-op
whose inputs match the deployed revision's digest is decided without rendering. These cases
prove that the shortcut never hides a change, that helm stores and copies the label as relied
on, and that the result says which way the decision was made.
"""

from __future__ import annotations

import json

from conftest import CHARTS, converge

SAMPLE = str(CHARTS / "sample")
LABEL = "helm-engine.ai-mesh.io/inputs"


def deploy_args(namespace: str, **extra) -> dict:
    args = {"name": "web", "namespace": namespace, "create_namespace": True, "chart_ref": SAMPLE,
            "wait": True, "timeout": "60s"}
    args.update(extra)
    return args


def stored_labels(kubectl, namespace: str) -> dict[int, str | None]:
    """revision -> the digest label of its storage Secret (None: no label)."""
    secrets = json.loads(kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm,name=web", "-o", "json").stdout)
    return {int(s["metadata"]["labels"]["version"]): s["metadata"]["labels"].get(LABEL) for s in secrets["items"]}


def test_a_no_op_is_decided_without_render_helm_or_lock(run_module, namespace, kubectl):
    result = converge(run_module, "helm_deploy", deploy_args(namespace, release_values={"message": "one"}), "install")
    real, again_check, again = result["real"], result["again_check"], result["again"]
    digest = real["inputs_digest"]
    assert digest and len(digest) == 40 and real["rendered"] is True
    assert stored_labels(kubectl, namespace) == {1: digest}
    for repeat in (again_check, again):
        assert repeat["rendered"] is False and repeat["inputs_digest"] == digest
        # helm's version came from the cache: no helm process at all.
        assert repeat["helm_processes"] == 0, repeat["commands"]
        # The server's version, the history and one read per kind of the release (Deployment,
        # Service, ConfigMap: the drift check); no Lease was created.
        assert repeat["kube_requests"] == 5
        assert repeat["values_digest"] == real["values_digest"]


def test_an_edited_template_a_values_file_and_the_values_still_change_the_release(run_module, namespace, chart_copy,
                                                                                   tmp_path, kubectl):
    chart = chart_copy()
    values = tmp_path / "values.yaml"
    values.write_text("message: from-file\n")
    args = deploy_args(namespace, chart_ref=str(chart), values_files=[str(values)])
    run_module("helm_deploy", args)
    template = chart / "templates" / "configmap.yaml"
    template.write_text(template.read_text().replace("\ndata:\n", "\ndata:\n  EDITED: \"yes\"\n"))
    edited = converge(run_module, "helm_deploy", args, "upgrade")
    assert edited["check"]["rendered"] is True and edited["again"]["rendered"] is False
    values.write_text("message: changed-in-file\n")
    by_file = converge(run_module, "helm_deploy", args, "upgrade")
    assert "values changed" in by_file["real"]["reasons"]  # helm stores a values file's content as user values
    assert by_file["real"]["rendered"] is True and by_file["again"]["rendered"] is False
    by_values = converge(run_module, "helm_deploy", dict(args, release_values={"message": "inline"}), "upgrade")
    assert "values changed" in by_values["real"]["reasons"]
    labels = stored_labels(kubectl, namespace)
    assert len(set(labels.values())) == len(labels) == 4  # each revision its own inputs


def test_a_render_that_proves_nothing_changed_stores_the_digest_for_next_time(run_module, namespace, chart_copy,
                                                                              kubectl):
    chart = chart_copy()
    run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    before = stored_labels(kubectl, namespace)[1]
    # A new file that renders nothing: the inputs changed, the release would not.
    (chart / "README.md").write_text("a chart\n")
    check = run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)), check=True)
    assert (check["changed"], check["rendered"]) == (False, True)
    assert stored_labels(kubectl, namespace) == {1: before}  # check mode writes nothing
    real = run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    assert (real["changed"], real["rendered"]) == (False, True)
    assert stored_labels(kubectl, namespace) == {1: real["inputs_digest"]} and real["inputs_digest"] != before
    again = run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    assert (again["changed"], again["rendered"]) == (False, False)


def test_a_rollback_carries_the_target_revision_digest(run_module, namespace, kubectl):
    one = deploy_args(namespace, release_values={"message": "one"})
    first = run_module("helm_deploy", one)
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "two"}))
    rollback = run_module("helm_rollback", {"name": "web", "namespace": namespace, "revision": 1, "wait": True})
    assert rollback["changed"] is True
    assert stored_labels(kubectl, namespace)[3] == first["inputs_digest"]
    # Revision 3 is revision 1's content: its inputs are a no-op, decided without a render.
    again = run_module("helm_deploy", one)
    assert (again["changed"], again["rendered"]) == (False, False)
    changed = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "two"}), check=True)
    assert (changed["changed"], changed["rendered"]) == (True, True)


def test_a_chart_that_reads_the_cluster_is_always_rendered_and_drops_an_old_digest(run_module, namespace, chart_copy,
                                                                                   kubectl):
    chart = chart_copy()
    run_module("helm_deploy", deploy_args(namespace, chart_ref=str(chart)))
    assert stored_labels(kubectl, namespace)[1]
    template = chart / "templates" / "configmap.yaml"
    template.write_text(template.read_text().replace(
        "\ndata:\n", "\ndata:\n  NAMESPACE_UID: {{ (lookup \"v1\" \"Namespace\" \"\" .Release.Namespace).metadata.uid | quote }}\n"))
    result = converge(run_module, "helm_deploy", deploy_args(namespace, chart_ref=str(chart)), "upgrade")
    for run in result.values():
        assert run["inputs_digest"] is None and run["rendered"] is True
    assert stored_labels(kubectl, namespace)[2] is None  # helm merged labels; the old digest was removed
