"""ansible-builder turns execution-environment.yml into a build context (no container engine
needed for that step), and the installed collection tells it its requirements."""

from __future__ import annotations

import shutil
import subprocess

from conftest import BIN, REPO, clean_env


def test_ansible_builder_creates_a_context_with_the_collection_and_helm(tarball, tmp_path):
    project = tmp_path / "project"
    (project / "build" / "ee").mkdir(parents=True)
    shutil.copy(REPO / "execution-environment.yml", project)
    shutil.copy(tarball, project / "build" / "ee" / "ai_mesh-helm_engine.tar.gz")
    context = tmp_path / "context"
    subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(project / "execution-environment.yml"),
                    "-c", str(context), "--output-filename", "Containerfile"],
                   check=True, capture_output=True, text=True, env=clean_env())
    assert (context / "_build" / "collection" / "ai_mesh-helm_engine.tar.gz").read_bytes() == tarball.read_bytes()
    assert "/build/collection/ai_mesh-helm_engine.tar.gz" in (context / "_build" / "requirements.yml").read_text()
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile
    assert "introspect.py introspect" in containerfile
    assert "https://get.helm.sh/helm-${HELM_VERSION}-linux-${TARGETARCH}.tar.gz" in containerfile
    assert "sha256sum -c" in containerfile


def test_the_installed_collection_declares_its_python_and_system_requirements(installed, tmp_path):
    """What the builder stage runs on /usr/share/ansible/collections, on the installed tarball."""
    from ansible_builder import _target_scripts

    script = __import__("pathlib").Path(_target_scripts.__file__).parent / "introspect.py"
    out = subprocess.run([str(BIN / "python"), str(script), "introspect", str(installed)],
                         check=True, capture_output=True, text=True, env=clean_env()).stdout
    # PyYAML is left out on purpose: ansible-core brings it, so the builder excludes it.
    assert "kubernetes>=31.0.0" in out, out
    assert "helm [platform:fedora]" in out, out
