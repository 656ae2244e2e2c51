"""The render-inputs digest: what it covers, and when it refuses to pin a render."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._specs import ChartSource, DeploySpec, SetValue
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._inputs import inputs_digest


def spec_for(chart: str, **overrides) -> DeploySpec:
    fields = {"release": "web", "namespace": "apps", "chart": ChartSource(chart), "values": {"message": "hello"}}
    fields.update(overrides)
    return DeploySpec(**fields)


def digest_of(spec: DeploySpec, helm: str = "v4.3.1", kube: str = "v1.36.3") -> str | None:
    return inputs_digest(spec, spec.chart.positional(), helm_version=helm, kube_version=kube)


@pytest.fixture
def make_chart(chart_maker):
    return chart_maker


@pytest.fixture
def chart(tmp_path, make_chart) -> str:
    return make_chart(tmp_path)


def test_the_same_inputs_give_the_same_label_safe_digest(chart):
    first, second = digest_of(spec_for(chart)), digest_of(spec_for(chart))
    assert first == second and len(first) == 40 and all(c in "0123456789abcdef" for c in first)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda chart: {"values": {"message": "bye"}}, id="values"),
        pytest.param(lambda chart: {"set_values": [SetValue("replicas=2")]}, id="set-values"),
        pytest.param(lambda chart: {"release": "other"}, id="release"),
        pytest.param(lambda chart: {"namespace": "other"}, id="namespace"),
        pytest.param(lambda chart: {"disable_hooks": True}, id="disable-hooks"),
        pytest.param(lambda chart: {"skip_schema_validation": True}, id="skip-schema-validation"),
    ],
)
def test_every_render_input_is_covered(chart, change):
    assert digest_of(spec_for(chart, **change(chart))) != digest_of(spec_for(chart))


def test_helm_and_kubernetes_versions_are_covered(chart):
    base = digest_of(spec_for(chart))
    assert digest_of(spec_for(chart), helm="v3.22.0") != base
    assert digest_of(spec_for(chart), kube="v1.37.0") != base


def test_an_edited_template_a_new_file_and_a_values_file_change_the_digest(chart, tmp_path):
    base = digest_of(spec_for(chart))
    template = os.path.join(chart, "templates", "cm.yaml")
    with open(template, "a", encoding="utf-8") as handle:
        handle.write("# edited\n")
    edited = digest_of(spec_for(chart))
    assert edited != base
    with open(os.path.join(chart, "templates", "NOTES.txt"), "w", encoding="utf-8") as handle:
        handle.write("hello\n")
    assert digest_of(spec_for(chart)) not in (base, edited)
    values = tmp_path / "values.yaml"
    values.write_text("a: 1\n")
    with_file = digest_of(spec_for(chart, values_files=[str(values)]))
    values.write_text("a: 2\n")
    assert digest_of(spec_for(chart, values_files=[str(values)])) != with_file


def test_a_file_moved_between_directories_changes_the_digest(tmp_path, make_chart):
    one, two = make_chart(tmp_path / "a"), make_chart(tmp_path / "b")
    os.rename(os.path.join(two, "templates", "cm.yaml"), os.path.join(two, "cm.yaml"))
    assert digest_of(spec_for(one)) != digest_of(spec_for(two))


@pytest.mark.parametrize(
    "template",
    ['{{ (lookup "v1" "Secret" "apps" "db").data }}\n', "{{ if .Capabilities.APIVersions.Has \"x/v1\" }}{{ end }}\n"],
    ids=["lookup", "api-versions"],
)
def test_templates_that_read_the_cluster_are_never_pinned(tmp_path, template, make_chart):
    assert digest_of(spec_for(make_chart(tmp_path, template=template))) is None


def test_a_word_lookup_outside_templates_is_fine(tmp_path, make_chart):
    chart = make_chart(tmp_path)
    with open(os.path.join(chart, "values.yaml"), "w", encoding="utf-8") as handle:
        handle.write("lookup: true\n")
    assert digest_of(spec_for(chart)) is not None


def test_a_subchart_archive_that_reads_the_cluster_is_never_pinned(chart):
    content = b'{{ lookup "v1" "Secret" "apps" "db" }}\n'
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("sub/templates/cm.yaml")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    os.makedirs(os.path.join(chart, "charts"))
    with open(os.path.join(chart, "charts", "sub-0.1.0.tgz"), "wb") as handle:
        handle.write(buffer.getvalue())
    assert digest_of(spec_for(chart)) is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"dependency_update": True},
        {"post_renderer": "/usr/local/bin/render"},
        {"reuse_values": True},
        {"reset_then_reuse_values": True},
        {"set_values": [SetValue("cert=/etc/cert.pem", "file")]},
    ],
    ids=["dependency-update", "post-renderer", "reuse-values", "reset-then-reuse-values", "set-file"],
)
def test_inputs_beyond_the_task_are_never_pinned(chart, overrides):
    if "dependency_update" in overrides:
        spec = spec_for(chart)
        spec.chart.dependency_update = True
    else:
        spec = spec_for(chart, **overrides)
    assert digest_of(spec) is None


def test_remote_missing_symlinked_and_huge_charts_are_never_pinned(tmp_path, monkeypatch, chart, make_chart):
    assert digest_of(spec_for("oci://registry.example/charts/web")) is None
    assert digest_of(spec_for(str(tmp_path / "missing"))) is None
    os.symlink("/etc/hostname", os.path.join(chart, "templates", "linked.yaml"))
    assert digest_of(spec_for(chart)) is None
    big = make_chart(tmp_path / "big")
    monkeypatch.setattr("ansible_collections.ai_mesh.helm_engine.plugins.module_utils._inputs.MAX_CHART_BYTES", 16)
    assert digest_of(spec_for(big)) is None


def test_a_packaged_chart_is_hashed_as_a_file(tmp_path, chart):
    archive_path = tmp_path / "sample-0.1.0.tgz"
    with tarfile.open(archive_path, "w:gz") as archive:
        archive.add(chart, arcname="sample")
    first = digest_of(spec_for(str(archive_path)))
    assert first is not None and first == digest_of(spec_for(str(archive_path)))
    with tarfile.open(archive_path, "w:gz") as archive:
        archive.add(chart, arcname="other")
    assert digest_of(spec_for(str(archive_path))) not in (None, first)


def test_what_is_not_a_chart_or_not_a_plain_file_is_never_read(tmp_path, make_chart):
    """A directory without Chart.yaml (chart_ref: /) is not walked; a FIFO would block a read."""
    assert digest_of(spec_for(str(tmp_path))) is None
    chart = make_chart(tmp_path)
    os.mkfifo(os.path.join(chart, "templates", "pipe"))
    assert digest_of(spec_for(chart)) is None
    fifo = tmp_path / "values.fifo"
    os.mkfifo(fifo)
    other = make_chart(tmp_path / "other")
    assert digest_of(spec_for(other, values_files=[str(fifo)])) is None


def test_a_chart_with_too_many_files_is_rendered_instead(tmp_path, make_chart, monkeypatch):
    chart = make_chart(tmp_path)
    for index in range(5):
        with open(os.path.join(chart, f"file-{index}.txt"), "w", encoding="utf-8") as handle:
            handle.write("x")
    monkeypatch.setattr("ansible_collections.ai_mesh.helm_engine.plugins.module_utils._inputs.MAX_CHART_FILES", 4)
    assert digest_of(spec_for(chart)) is None
