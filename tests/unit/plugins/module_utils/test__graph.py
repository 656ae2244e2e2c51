# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The order of several releases from what each needs."""

from __future__ import annotations

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import INVALID_ARGUMENTS, InputError
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._graph import Node, blocked_by, groups, parse_need


def node(index: int, name: str, *needs: str, present: bool = True, namespace: str = "apps") -> Node:
    return Node(index, namespace, name, present, [parse_need(n, namespace) for n in needs])


def labels(ordered: list[list[Node]]) -> list[list[str]]:
    return [[n.name for n in group] for group in ordered]


def test_a_chain_and_a_fan_out_become_groups_in_list_order():
    nodes = [node(0, "c", "b"), node(1, "a"), node(2, "d", "b"), node(3, "b", "a"), node(4, "e")]
    assert labels(groups(nodes)) == [["a", "e"], ["b"], ["c", "d"]]


def test_releases_to_remove_go_last_in_reverse_order():
    nodes = [node(0, "db", present=False), node(1, "web", "db", present=False), node(2, "exporter", "web", present=False),
             node(3, "other")]
    assert labels(groups(nodes)) == [["other"], ["exporter"], ["web"], ["db"]]


def test_a_need_in_another_namespace():
    nodes = [node(0, "web", "data/db"), node(1, "db", namespace="data")]
    assert labels(groups(nodes)) == [["db"], ["web"]]
    assert parse_need("db", "apps") == ("apps", "db") and parse_need("data/db", "apps") == ("data", "db")


@pytest.mark.parametrize("nodes, message", [
    ([node(0, "a"), node(1, "a")], "releases[1]: apps/a is already releases[0]"),
    ([node(0, "a", "nope")], "releases[0] (apps/a) needs apps/nope, which is not in releases."),
    ([node(0, "a", "a")], "releases[0] (apps/a) needs itself."),
    ([node(0, "a", "b"), node(1, "b", present=False)], "is to be present but needs apps/b, which is to be absent"),
    ([node(0, "a", "c"), node(1, "b", "a"), node(2, "c", "b")], "a cycle: apps/a -> apps/c -> apps/b -> apps/a."),
])
def test_what_cannot_be_ordered_is_refused(nodes, message):
    with pytest.raises(InputError) as caught:
        groups(nodes)
    assert caught.value.kind == INVALID_ARGUMENTS and caught.value.details == {"option": "releases"}
    assert message in caught.value.msg


def test_what_a_failure_blocks():
    nodes = [node(0, "a"), node(1, "b", "a"), node(2, "x", present=False), node(3, "y", "x", present=False)]
    assert blocked_by(nodes[1], nodes, {("apps", "a")}) == [("apps", "a")]
    assert blocked_by(nodes[1], nodes, set()) == []
    # x is removed after y, which needs it: a y that could not be removed keeps x.
    assert blocked_by(nodes[2], nodes, {("apps", "y")}) == [("apps", "y")]
    assert blocked_by(nodes[3], nodes, {("apps", "x")}) == []
