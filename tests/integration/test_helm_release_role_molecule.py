"""The role's molecule scenarios against the local cluster, one test per scenario so a failure
names it. Each run gets its own namespace; molecule's ephemeral files, caches and Ansible's
state stay in tmp_path, and the run leaves nothing in the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import COLLECTIONS, REPO

SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, cluster: dict[str, str], tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, **cluster)
    env.update(
        PATH=str(bindir) + os.pathsep + env.get("PATH", ""),
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_NOCOLOR="1",
        MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "ephemeral"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        HELM_ENGINE_MOLECULE_NAMESPACE=f"mol-{scenario.replace('_', '-')}-{uuid.uuid4().hex[:8]}",
        HELM_ENGINE_MOLECULE_PYTHON=sys.executable,
        # The helm binaries live in the real cache; XDG_CACHE_HOME above is molecule's only.
        HELM_ENGINE_CACHE=str(Path(cluster["HELM_ENGINE_HELM4"]).parents[2]),
    )
    leftovers = [REPO / ".ansible", REPO / "molecule" / scenario / ".molecule"]
    existed = {p for p in leftovers if p.exists()}
    proc = subprocess.run([str(bindir / "molecule"), "test", "-s", scenario], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"molecule test -s {scenario} failed:\n{_failure_lines(proc.stdout + proc.stderr)}\n{proc.stderr[-3000:]}"
    assert {p for p in leftovers if p.exists()} == existed, "molecule left files in the checkout"


def _failure_lines(output: str) -> str:
    """The lines that say why a play failed (molecule's tail is mostly its clean-up)."""
    lines = output.splitlines()
    marks = [i for i, line in enumerate(lines) if any(m in line for m in ("fatal:", "ERROR!", "FAILED!", "failed:"))]
    shown = sorted({j for i in marks for j in range(max(0, i - 3), min(len(lines), i + 12))})
    return "\n".join(lines[j] for j in shown)[-8000:] or output[-6000:]
