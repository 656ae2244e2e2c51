"""Fixtures for the packaging tests: the collection tarball, built once per session from a fresh
clone of the committed tree (what a release builds), and an empty collections path it installs to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no collections path of the checkout, no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "PYTHONPATH")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    env.update(extra)
    return env


def build(source: Path, output: Path) -> Path:
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(output), str(source)],
                   check=True, capture_output=True, text=True, env=clean_env(ANSIBLE_HOME=str(output / ".ansible-home")))
    (tarball,) = output.glob("ai_mesh-helm_engine-*.tar.gz")
    return tarball


def fresh_clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest)], check=True)
    return dest


@pytest.fixture(scope="session")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tarball")
    return build(fresh_clone(root / "clone"), root / "dist")


@pytest.fixture(scope="session")
def installed(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty collections path with only the tarball installed; returns the path."""
    path = tmp_path_factory.mktemp("collections")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(path), str(tarball)],
                   check=True, capture_output=True, text=True, env=clean_env(ANSIBLE_HOME=str(path / ".ansible-home")))
    assert (path / "ansible_collections" / "ai_mesh" / "helm_engine" / "MANIFEST.json").is_file()
    return path
