# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The layers of the collection's code (docs/architecture.md), enforced.

module -> task runtime -> clients and store -> base -> leaves: a file imports only from its own
layer or a lower one, leaves import nothing of the collection, no two files import each other
even for type checking only, and every module_util has a layer (a new file must be placed).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
MODULE_UTILS = "ansible_collections.ai_mesh.helm_engine.plugins.module_utils"

# Lowest first. Within a layer, files may import each other (without a cycle).
LAYERS: dict[str, tuple[str, ...]] = {
    # Import nothing of the collection.
    "leaves": ("_errors", "_release", "_audit", "_objects", "_workspace", "_nesting"),
    # Data and pure functions over it: secrets, inputs and their rules; run a process; read a kubeconfig.
    "base": ("_redact", "_strvals", "_validate", "_manifest", "_specs", "_inputs", "_process", "_helm_version",
             "_kubeconfig", "_rendered", "_plan", "_graph"),
    # The helm and Kubernetes clients, the release store, and what works through them.
    "clients and store": ("_kube", "_helm", "_storage", "_resources", "_rollout", "_lock", "_recovery", "_preflight",
                          "_outcome", "_drift", "_cleanup"),
    # A task's parameters and runtime, what every module builds on.
    "task runtime": ("_args", "_task", "_deploy", "_releases"),
}
RANK = {name: rank for rank, names in enumerate(LAYERS.values()) for name in names}
LAYER_OF = {name: layer for layer, names in LAYERS.items() for name in names}


def collection_imports(path: Path) -> set[str]:
    """The module_utils a file imports, anywhere in it (type-checking and function-level too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(MODULE_UTILS + "."):
                found.add(node.module.split(".")[-1])
            elif node.module == MODULE_UTILS:
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("ansible_collections.ai_mesh.helm_engine."):
                found.add(node.module)  # anything else of the collection (a module, a plugin)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ansible_collections.ai_mesh.helm_engine."))
    return found


def module_utils() -> dict[str, set[str]]:
    return {path.stem: collection_imports(path) for path in sorted((PLUGINS / "module_utils").glob("_*.py"))}


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for name, imports in sorted(graph.items()):
        if name not in RANK:
            problems.append(f"{name} has no layer: add it to LAYERS here and to docs/architecture.md")
            continue
        for imported in sorted(imports):
            if imported not in RANK:
                problems.append(f"{name} imports {imported}, which is not a layered module_util")
            elif LAYER_OF[name] == "leaves":
                problems.append(f"{name} is a leaf but imports {imported}")
            elif RANK[imported] > RANK[name]:
                problems.append(f"{name} ({LAYER_OF[name]}) imports {imported} ({LAYER_OF[imported]}), a higher layer")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return found


def test_every_module_util_has_a_layer_and_imports_only_downward():
    assert layering_violations(module_utils()) == []


def test_no_module_util_imports_another_that_imports_it_back():
    assert cycles(module_utils()) == []


def test_the_layers_name_no_file_that_is_gone():
    present = set(module_utils())
    assert sorted(set(RANK) - present) == []


@pytest.mark.parametrize("path", sorted((PLUGINS / "modules").glob("*.py")), ids=lambda p: p.name)
def test_modules_build_on_module_utils_only(path):
    """A module never imports another module; it builds on the task runtime and below."""
    assert all(name in RANK for name in collection_imports(path)), collection_imports(path)


@pytest.mark.parametrize("path", sorted((PLUGINS / "callback").glob("*.py")), ids=lambda p: p.name)
def test_the_controller_side_imports_no_client(path):
    """The audit callback runs in ansible-playbook, not in a module: nothing that talks to helm
    or the cluster belongs there."""
    assert {LAYER_OF.get(name) for name in collection_imports(path)} <= {"leaves", "base"}


# ---- the checks themselves ------------------------------------------------------------------


def test_the_checks_catch_an_upward_import_a_leaf_import_and_a_cycle():
    graph = dict(module_utils())
    graph["_errors"] = {"_task"}                       # a leaf that imports anything
    graph["_specs"] = graph["_specs"] | {"_helm"}      # base importing a client
    graph["_kube"] = graph["_kube"] | {"_storage"}     # _storage imports _kube: a cycle
    problems = layering_violations(graph)
    assert "_errors is a leaf but imports _task" in problems
    assert "_specs (base) imports _helm (clients and store), a higher layer" in problems
    assert any(set(cycle) >= {"_kube", "_storage"} for cycle in cycles(graph))
    assert "_new has no layer" in layering_violations({"_new": set()})[0]
