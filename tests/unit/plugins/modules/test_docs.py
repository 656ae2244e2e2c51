"""Each module's DOCUMENTATION renders with ansible-doc and matches its argument spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
# The modules that act on releases share the error kinds; audit_verify reads a local file only.
RELEASE_MODULES = ["helm_deploy", "helm_preflight", "helm_releases", "helm_rollback", "helm_status", "helm_test"]
MODULES = RELEASE_MODULES + ["audit_verify"]


def ansible_doc(module: str) -> dict:
    bindir = Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"))
    # Under ansible-test units, PYTHONPATH holds a module-only stub of ansible; the CLI needs the real one.
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(bindir / "ansible-doc"), "--json", f"ai_mesh.helm_engine.{module}"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)[f"ai_mesh.helm_engine.{module}"]


def argument_spec_of(module: str, monkeypatch) -> dict:
    """The spec main() passes to AnsibleModule, captured without running the module."""
    import importlib

    mod = importlib.import_module(f"ansible_collections.ai_mesh.helm_engine.plugins.modules.{module}")
    captured = {}

    class Capture(Exception):
        pass

    def fake_module(**kwargs):
        captured.update(kwargs)
        raise Capture()

    monkeypatch.setattr(mod, "EngineModule" if hasattr(mod, "EngineModule") else "AnsibleModule", fake_module)
    with pytest.raises(Capture):
        mod.main()
    return captured["argument_spec"]


@pytest.mark.parametrize("module", MODULES)
def test_docs_render_and_match_the_argument_spec(module, monkeypatch):
    doc = ansible_doc(module)
    options = doc["doc"]["options"]
    spec = argument_spec_of(module, monkeypatch)
    assert set(options) == set(spec), f"documented but not in spec: {set(options) - set(spec)}; in spec, undocumented: {set(spec) - set(options)}"
    for name, option in spec.items():
        documented = options[name]
        assert documented.get("type", "str") == option.get("type", "str"), name
        assert sorted(documented.get("aliases", [])) == sorted(option.get("aliases", [])), name
        if "choices" in option:
            assert [str(c) for c in documented["choices"]] == [str(c) for c in option["choices"]], name
        if "default" in option and option["default"] not in ([], {}):
            assert documented.get("default") == option["default"], name
    assert doc["examples"].strip()
    assert doc["return"]


def documented_kinds(doc: dict) -> list[str]:
    return doc["return"]["error"]["contains"]["kind"]["choices"]


@pytest.mark.parametrize("module", RELEASE_MODULES)
def test_every_error_kind_is_documented_in_return(module):
    """The code can raise only kinds in KINDS (EngineError refuses others); each module's RETURN
    lists exactly those, so a new kind cannot ship undocumented and a removed one cannot linger."""
    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import KINDS

    assert sorted(documented_kinds(ansible_doc(module))) == sorted(KINDS)


def test_every_error_kind_is_documented_in_the_readme():
    import re

    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import KINDS

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Error kinds", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
    assert sorted(listed) == sorted(KINDS)


def test_every_kind_constant_used_in_plugins_is_a_known_kind():
    """A kind spelled as a string literal somewhere would bypass the constants."""
    import re

    from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import KINDS

    for path in (REPO / "plugins").rglob("*.py"):
        for literal in re.findall(r"EngineError\(\s*\"([a-z_]+)\"", path.read_text()):
            assert literal in KINDS, f"{path}: {literal}"
