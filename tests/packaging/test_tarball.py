"""The collection tarball: what it ships, and that a used checkout builds the same one as a
fresh clone (galaxy.yml's build_ignore covers everything development leaves behind)."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

from conftest import build, fresh_clone

# What development leaves in a checkout (make venv/collection/test/lint/ee-context, molecule,
# pytest, ansible-lint, an editor), none of which may reach the tarball.
LEFT_BEHIND = [
    ".venv/bin/python", ".venv-2.17/bin/python", "build/collections/README", "build/ee/context/Dockerfile",
    "tests/output/junit/a.xml", ".pytest_cache/v/cache/nodeids", "plugins/modules/__pycache__/helm_deploy.cpython-311.pyc",
    "tests/unit/__pycache__/conftest.cpython-311.pyc", ".ansible/collections/x", "roles/.ansible/x",
    "ai_mesh-helm_engine-0.1.0.tar.gz", "changelogs/.plugin-cache.yaml", "molecule/default/.cache/x",
    ".cache/x", "playbooks/demo.retry", "plugins/modules/helm_deploy.py.swp", "docs/notes.md~", "audit.log",
]
DEV_ONLY = (".ci/", "tools/", "bench/", "tests/unit/", "tests/integration/", "tests/packaging/", "molecule/", "changelogs/fragments/",
            "Makefile", "requirements-dev.txt", "execution-environment.yml", ".gitignore", ".ansible-lint")


def files_of(tarball: Path) -> dict[str, str]:
    """Path -> sha256 of every file, from the tarball's FILES.json (checked against the members)."""
    with tarfile.open(tarball) as tar:
        listing = json.load(tar.extractfile("FILES.json"))
        members = {m.name for m in tar.getmembers() if m.isfile()}
    files = {f["name"]: f["chksum_sha256"] for f in listing["files"] if f["ftype"] == "file"}
    assert members == set(files) | {"MANIFEST.json", "FILES.json"}
    return files


def test_ships_what_users_need_and_nothing_for_development(tarball):
    files = files_of(tarball)
    for needed in ("meta/runtime.yml", "meta/execution-environment.yml", "requirements.txt", "bindep.txt",
                   "plugins/modules/helm_deploy.py", "plugins/callback/audit_log.py", "playbooks/demo.yml",
                   "playbooks/audit_verify.yml", "tests/charts/sample/Chart.yaml", "docs/README.md",
                   "changelogs/changelog.yaml", "CHANGELOG.md", "README.md", "COPYING",
                   "examples/monitoring-web-service/helm-chart/Chart.yaml"):
        assert needed in files, needed
    leaked = sorted(name for name in files if name.startswith(DEV_ONLY) or name in DEV_ONLY)
    assert not leaked


def test_a_used_checkout_builds_the_same_tarball_as_a_fresh_clone(tarball, tmp_path):
    used = fresh_clone(tmp_path / "used")
    for rel in LEFT_BEHIND:
        path = used / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("left behind\n")
    (used / "build/collections/ansible_collections/ai_mesh").mkdir(parents=True)
    (used / "build/collections/ansible_collections/ai_mesh/helm_engine").symlink_to(used)
    again = build(used, tmp_path / "dist")
    assert again.name == tarball.name
    assert files_of(again) == files_of(tarball)


def test_the_source_tree_builds_the_same_files_as_a_fresh_clone(tarball, tmp_path):
    """This checkout, as it is: only uncommitted edits may differ from the clone, never leftovers."""
    import subprocess

    from conftest import REPO

    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=normal"],
                           check=True, capture_output=True, text=True).stdout
    here = files_of(build(REPO, tmp_path / "dist"))
    clone = files_of(tarball)
    if not dirty.strip():
        assert here == clone
    else:
        changed = {name for name in set(here) | set(clone) if here.get(name) != clone.get(name)}
        edited = {line[3:].strip().split(" -> ")[-1] for line in dirty.splitlines()}
        assert all(any(name == e or name.startswith(e.rstrip("/") + "/") for e in edited) for name in changed), sorted(changed)
    shutil.rmtree(tmp_path / "dist")
