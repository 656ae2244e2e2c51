"""A playbook written for kubernetes.core 6.6.0 runs here with only the module names changed.

``data/kubernetes_core_playbook.yml`` is a genuine kubernetes.core playbook: the same file also
runs against the real kubernetes.core 6.6.0 (from the ``ansible`` 14.5.0 package), on helm 3 and
helm 4, so it proves nothing that only our modules would accept.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from conftest import CHARTS, COLLECTIONS

PLAYBOOK = Path(__file__).parent / "data" / "kubernetes_core_playbook.yml"
SAMPLE = str(CHARTS / "sample")

KUBERNETES_CORE_VERSION = "6.6.0"
ANSIBLE_PACKAGE = "ansible==14.5.0"  # the first ansible package that ships kubernetes.core 6.6.0
CACHE = Path(os.environ.get("HELM_ENGINE_CACHE") or Path.home() / ".cache" / "helm-engine")
CORE_COLLECTIONS = CACHE / "collections"
CORE_DIR = CORE_COLLECTIONS / "ansible_collections" / "kubernetes" / "core"

RENAMES = {
    "kubernetes.core.helm": "ai_mesh.helm_engine.helm_deploy",
    "kubernetes.core.helm_info": "ai_mesh.helm_engine.helm_status",
}
# A task's module key: the FQCN alone on its line, followed by a colon.
MODULE_KEY = re.compile(r"^(?P<indent>\s*)(?P<fqcn>kubernetes\.core\.helm(?:_info)?):[ \t]*$", re.M)

# 17 tasks; changed: tempfile, copy, install, upgrade, uninstall, removing the tempdir.
RECAP = re.compile(r"localhost\s+:\s+ok=17\s+changed=6\s+unreachable=0\s+failed=0\s+skipped=0\s+rescued=0\s+ignored=0")


def to_helm_engine(text: str) -> str:
    return MODULE_KEY.sub(lambda m: f"{m['indent']}{RENAMES[m['fqcn']]}:", text)


def run_playbook(text: str, *, tmp_path: Path, collections_paths: list[Path], extra_vars: dict[str, str],
                 python: str = sys.executable) -> subprocess.CompletedProcess:
    """ansible-playbook with exactly these collection roots (the shared runner fixes its own),
    from the virtualenv of ``python`` (another ansible-core than the suite's)."""
    path = tmp_path / "playbook.yml"
    path.write_text(text)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={python}\n")
    bindir = str(Path(python).parent)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(str(p) for p in collections_paths),
        # Only the roots above: no collection installed next to ansible-core may stand in.
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
    )
    return subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), "-i", str(inventory), str(path), "-e", json.dumps(extra_vars)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )


def playbook_vars(helm: str, kubeconfig: str, namespace: str) -> dict[str, str]:
    return {"helm_binary": helm, "kubeconfig_path": kubeconfig, "chart_path": SAMPLE, "release_namespace": namespace}


def assert_ran_to_the_end(proc: subprocess.CompletedProcess) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert RECAP.search(proc.stdout), proc.stdout[-2000:]


def installed_version(collection_dir: Path) -> str | None:
    manifest = collection_dir / "MANIFEST.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())["collection_info"]["version"]


def ensure_kubernetes_core() -> Path:
    """kubernetes.core 6.6.0 under the cache, extracted from the ansible package's wheel the
    first time (pip download, no install). Returns the collections root to put on the path."""
    if installed_version(CORE_DIR) == KUBERNETES_CORE_VERSION:
        return CORE_COLLECTIONS
    if os.environ.get("HELM_ENGINE_OFFLINE") == "1":
        pytest.skip(f"kubernetes.core {KUBERNETES_CORE_VERSION} is not in {CORE_DIR} and HELM_ENGINE_OFFLINE=1")
    with tempfile.TemporaryDirectory(prefix="kubernetes-core-") as download:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--python-version", "3.12",
             "--only-binary=:all:", ANSIBLE_PACKAGE, "-d", download],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"Could not download {ANSIBLE_PACKAGE} to get kubernetes.core {KUBERNETES_CORE_VERSION} "
                f"(is PyPI reachable? set HELM_ENGINE_OFFLINE=1 to skip this test):\n{proc.stderr[-3000:]}",
                pytrace=False,
            )
        wheel = next(Path(download).glob("ansible-*.whl"))
        # Extract next to the target, then rename: a concurrent or interrupted run never
        # leaves a half-extracted collection where the next run would trust it.
        staging = Path(tempfile.mkdtemp(prefix=".kubernetes-core-", dir=CACHE))
        try:
            prefix = "ansible_collections/kubernetes/core/"
            with zipfile.ZipFile(wheel) as archive:
                members = [m for m in archive.namelist() if m.startswith(prefix)]
                archive.extractall(staging, members)
            extracted = staging / "ansible_collections" / "kubernetes" / "core"
            assert installed_version(extracted) == KUBERNETES_CORE_VERSION, f"{ANSIBLE_PACKAGE} does not ship kubernetes.core {KUBERNETES_CORE_VERSION}"
            CORE_DIR.parent.mkdir(parents=True, exist_ok=True)
            if CORE_DIR.exists():
                shutil.rmtree(CORE_DIR)
            os.rename(extracted, CORE_DIR)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return CORE_COLLECTIONS


def test_the_only_change_is_the_module_names():
    original = PLAYBOOK.read_text()
    replaced = to_helm_engine(original)
    assert "kubernetes.core" not in re.sub(r"#.*", "", replaced), "a kubernetes.core module was left"
    before, after = original.splitlines(), replaced.splitlines()
    assert len(before) == len(after)
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    for old, new in changed:
        fqcn = old.strip().rstrip(":")
        assert new == old.replace(fqcn, RENAMES[fqcn]), (old, new)
    # Every kubernetes.core task was renamed: 5 helm, 3 helm_info.
    renamed = sorted(new.strip() for _, new in changed)
    assert renamed == ["ai_mesh.helm_engine.helm_deploy:"] * 5 + ["ai_mesh.helm_engine.helm_status:"] * 3
    # And the unified diff shows exactly those lines and nothing else.
    diff = [line for line in difflib.unified_diff(before, after, lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(diff) == 2 * len(changed)


def test_kubernetes_core_playbook_runs_with_module_names_replaced(helm, kubeconfig, namespace, tmp_path):
    proc = run_playbook(to_helm_engine(PLAYBOOK.read_text()), tmp_path=tmp_path, collections_paths=[COLLECTIONS],
                        extra_vars=playbook_vars(helm, kubeconfig, namespace))
    assert_ran_to_the_end(proc)


# The oldest ansible-core in requires_ansible; `make test` creates this virtualenv.
OLDEST_ANSIBLE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-2.17" / "bin" / "python"


def test_the_playbook_runs_on_the_oldest_supported_ansible_core(helm, kubeconfig, namespace, tmp_path):
    if not OLDEST_ANSIBLE_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{OLDEST_ANSIBLE_PYTHON} is missing: make test creates it (make venv-2.17)")
        pytest.skip("no .venv-2.17 (make venv-2.17 creates it)")
    version = subprocess.run([str(OLDEST_ANSIBLE_PYTHON), "-c", "import ansible; print(ansible.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version.startswith("2.17."), version
    proc = run_playbook(to_helm_engine(PLAYBOOK.read_text()), tmp_path=tmp_path, collections_paths=[COLLECTIONS],
                        extra_vars=playbook_vars(helm, kubeconfig, namespace), python=str(OLDEST_ANSIBLE_PYTHON))
    assert_ran_to_the_end(proc)


def test_the_playbook_is_a_genuine_kubernetes_core_playbook(helm, kubeconfig, namespace, tmp_path):
    """The original, unchanged, against kubernetes.core 6.6.0 itself."""
    core = ensure_kubernetes_core()
    proc = run_playbook(PLAYBOOK.read_text(), tmp_path=tmp_path, collections_paths=[core, COLLECTIONS],
                        extra_vars=playbook_vars(helm, kubeconfig, namespace))
    assert_ran_to_the_end(proc)
    # kubernetes.core itself ran (it warns that its default idempotency check lacks helm-diff).
    assert "Install helm diff" in proc.stdout + proc.stderr


# ---- options that cannot apply, and purge ------------------------------------------------


def deploy_args(namespace: str, **extra) -> dict:
    args = {"name": "web", "namespace": namespace, "create_namespace": True, "chart_ref": SAMPLE, "wait": True, "timeout": "60s"}
    args.update(extra)
    return args


def test_missing_post_renderer_fails_and_changes_nothing(run_module, namespace, kubectl, tmp_path):
    failed = run_module("helm_deploy", deploy_args(namespace, post_renderer=str(tmp_path / "no-such-renderer")),
                        expect_failure=True)
    assert failed["changed"] is False
    assert "post-renderer" in failed["msg"], failed["msg"]
    assert str(tmp_path / "no-such-renderer") in failed["msg"]
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0, "nothing may be created"


def test_missing_post_renderer_is_invalid_arguments(run_module, namespace, tmp_path):
    failed = run_module("helm_deploy", deploy_args(namespace, post_renderer=str(tmp_path / "no-such-renderer")),
                        expect_failure=True)
    assert failed["error"]["kind"] == "invalid_arguments", failed["error"]
    assert failed["error"].get("option") == "post_renderer", failed["error"]


def test_replace_with_history_max_is_refused_as_in_kubernetes_core(run_module, namespace, kubectl):
    failed = run_module("helm_deploy", deploy_args(namespace, replace=True, history_max=3), expect_failure=True)
    assert failed["error"]["kind"] == "invalid_arguments", failed["error"]
    assert "mutually exclusive" in failed["msg"] and "replace" in failed["msg"] and "history_max" in failed["msg"]
    assert failed.get("helm_processes", 0) == 0, "refused before helm runs"
    assert kubectl("get", "namespace", namespace, check=False).returncode != 0, "nothing may be created"


def release_secrets(kubectl, namespace: str) -> list[dict]:
    out = kubectl("-n", namespace, "get", "secrets", "-l", "owner=helm,name=web", "-o", "json").stdout
    return sorted(json.loads(out)["items"], key=lambda s: int(s["metadata"]["labels"]["version"]))


def test_purge_false_keeps_the_history(run_module, namespace, kubectl):
    run_module("helm_deploy", deploy_args(namespace))
    removed = run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent", "purge": False})
    assert removed["changed"] is True and removed["action"] == "uninstall"
    assert "--keep-history" in removed["commands"][-1]
    kept = release_secrets(kubectl, namespace)
    assert [(s["metadata"]["labels"]["version"], s["metadata"]["labels"]["status"]) for s in kept] == [("1", "uninstalled")]
    assert kubectl("-n", namespace, "get", "deployment", "web-web", check=False).returncode != 0
    # As helm_info: no status by default, and the uninstalled release with release_state=uninstalled.
    assert "status" not in run_module("helm_status", {"name": "web", "namespace": namespace})
    shown = run_module("helm_status", {"name": "web", "namespace": namespace, "release_state": ["uninstalled"]})
    assert shown["status"]["status"] == "uninstalled" and shown["release_status"] == "uninstalled"
    again = run_module("helm_deploy", {"name": "web", "namespace": namespace, "state": "absent", "purge": False})
    assert again["changed"] is False
    # The name can be reused without kubernetes.core's replace: the kept history goes on.
    reinstalled = run_module("helm_deploy", deploy_args(namespace))
    assert reinstalled["changed"] is True and reinstalled["status"]["status"] == "deployed"
    assert [s["metadata"]["labels"]["status"] for s in release_secrets(kubectl, namespace)][-1] == "deployed"


def test_force_upgrades_as_in_kubernetes_core(run_module, namespace):
    """kubernetes.core's force on helm 4 adds --server-side=false to --force-replace, because helm 4
    refuses to force-replace with server-side apply, its default for a new install."""
    run_module("helm_deploy", deploy_args(namespace, release_values={"message": "one"}))
    check = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "two"}, force=True), check=True)
    assert check["changed"] is True and check["action"] == "upgrade"
    forced = run_module("helm_deploy", deploy_args(namespace, release_values={"message": "two"}, force=True))
    assert forced["changed"] is True and forced["status"]["revision"] == "2"
