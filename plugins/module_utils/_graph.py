# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""The order of several releases deployed in one task, from what each ``needs``.

Releases to be present go in groups: each group only after every release its members need, the
members of a group at once. Releases to be absent go after all of those, in the reverse order:
a release is removed only after every release that needs it. Everything wrong with the list is
refused before anything runs: a release named twice, a need that names no release of the list,
a cycle (named), a present release that needs one to be removed.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import InputError

Key = t.Tuple[str, str]  # (namespace, name)


@dataclass
class Node:
    """One release of the list: where it is, whether it should exist, what it needs."""

    index: int
    namespace: str
    name: str
    present: bool
    needs: list[Key] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_need(text: str, namespace: str) -> Key:
    """``name`` (in the release's own namespace) or ``namespace/name``."""
    space, sep, name = text.rpartition("/")
    return (space, name) if sep else (namespace, text)


def groups(nodes: t.Sequence[Node]) -> list[list[Node]]:
    """The groups to run one after the other; refuses a list that cannot be ordered."""
    by_key: dict[Key, Node] = {}
    for node in nodes:
        if node.key in by_key:
            raise InputError(f"releases[{node.index}]: {node.label} is already releases[{by_key[node.key].index}]; "
                             "each release may appear once.", option="releases")
        by_key[node.key] = node
    for node in nodes:
        for need in node.needs:
            if need not in by_key:
                raise InputError(f"releases[{node.index}] ({node.label}) needs {need[0]}/{need[1]}, which is not in "
                                 "releases.", option="releases")
            if need == node.key:
                raise InputError(f"releases[{node.index}] ({node.label}) needs itself.", option="releases")
            if node.present and not by_key[need].present:
                raise InputError(f"releases[{node.index}] ({node.label}) is to be present but needs {need[0]}/{need[1]}, "
                                 "which is to be absent.", option="releases")
    cycle = find_cycle(nodes, by_key)
    if cycle:
        raise InputError("releases need each other in a cycle: " + " -> ".join(f"{n}/{m}" for n, m in cycle) + ".",
                         option="releases")
    present = _layers([n for n in nodes if n.present], by_key)
    absent = list(reversed(_layers([n for n in nodes if not n.present], by_key)))
    return present + absent


def _layers(nodes: list[Node], by_key: dict[Key, Node]) -> list[list[Node]]:
    """Kahn's layering over the needs among ``nodes``, each layer in the list's order."""
    members = {n.key for n in nodes}
    depth: dict[Key, int] = {}

    def level(node: Node) -> int:
        if node.key not in depth:
            needs = [by_key[k] for k in node.needs if k in members]
            depth[node.key] = 1 + max((level(n) for n in needs), default=-1)
        return depth[node.key]

    layers: dict[int, list[Node]] = {}
    for node in nodes:
        layers.setdefault(level(node), []).append(node)
    return [layers[i] for i in sorted(layers)]


def find_cycle(nodes: t.Sequence[Node], by_key: dict[Key, Node]) -> list[Key] | None:
    """A cycle of needs as the keys along it (first repeated last), or None."""
    state: dict[Key, str] = {}
    for start in nodes:
        if start.key in state:
            continue
        stack: list[tuple[Key, t.Iterator[Key]]] = [(start.key, iter(start.needs))]
        path = [start.key]
        state[start.key] = "open"
        while stack:
            key, needs = stack[-1]
            following = next(needs, None)
            if following is None:
                state[key] = "done"
                stack.pop()
                path.pop()
            elif state.get(following) == "open":
                return path[path.index(following):] + [following]
            elif following not in state:
                state[following] = "open"
                path.append(following)
                stack.append((following, iter(by_key[following].needs)))
    return None


def blocked_by(node: Node, nodes: t.Sequence[Node], stopped: set[Key]) -> list[Key]:
    """What keeps ``node`` from running, of the releases that failed or were skipped: for a
    release to be present, one it needs; for one to be removed, one to be removed that needs it
    (it must go first)."""
    if node.present:
        return [need for need in node.needs if need in stopped]
    return [other.key for other in nodes if not other.present and node.key in other.needs and other.key in stopped]
