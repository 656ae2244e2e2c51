"""kubernetes.core 6.6.0 for the benchmark: the same cache and the same steps as the
integration suite (tests/integration/test_behaviour_kubernetes_core_compat.py): the collection
extracted from the ``ansible`` 14.5.0 wheel (pip download, no install) into
<cache>/collections/ansible_collections/kubernetes/core, reused by every later run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

KUBERNETES_CORE_VERSION = "6.6.0"
ANSIBLE_PACKAGE = "ansible==14.5.0"  # the first ansible package that ships kubernetes.core 6.6.0
CACHE = Path(os.environ.get("HELM_ENGINE_CACHE") or Path.home() / ".cache" / "helm-engine")
CORE_COLLECTIONS = CACHE / "collections"
CORE_DIR = CORE_COLLECTIONS / "ansible_collections" / "kubernetes" / "core"


def installed_version(collection_dir: Path) -> str | None:
    manifest = collection_dir / "MANIFEST.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())["collection_info"]["version"]


def ensure() -> Path:
    """The collections root that holds kubernetes.core 6.6.0, downloaded the first time."""
    if installed_version(CORE_DIR) == KUBERNETES_CORE_VERSION:
        return CORE_COLLECTIONS
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubernetes-core-") as download:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--python-version", "3.12",
             "--only-binary=:all:", ANSIBLE_PACKAGE, "-d", download],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"could not download {ANSIBLE_PACKAGE} for kubernetes.core {KUBERNETES_CORE_VERSION}:\n"
                               f"{proc.stderr[-3000:]}")
        wheel = next(Path(download).glob("ansible-*.whl"))
        # Extracted next to the target, then renamed: an interrupted run never leaves a
        # half-extracted collection that the next run would trust.
        staging = Path(tempfile.mkdtemp(prefix=".kubernetes-core-", dir=CACHE))
        try:
            prefix = "ansible_collections/kubernetes/core/"
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(staging, [m for m in archive.namelist() if m.startswith(prefix)])
            extracted = staging / "ansible_collections" / "kubernetes" / "core"
            if installed_version(extracted) != KUBERNETES_CORE_VERSION:
                raise RuntimeError(f"{ANSIBLE_PACKAGE} does not ship kubernetes.core {KUBERNETES_CORE_VERSION}")
            CORE_DIR.parent.mkdir(parents=True, exist_ok=True)
            if CORE_DIR.exists():
                shutil.rmtree(CORE_DIR)
            os.rename(extracted, CORE_DIR)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return CORE_COLLECTIONS
