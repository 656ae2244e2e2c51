# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""How deep values nest, measured without recursion: what parsing, redaction, the inputs digest
and the diff may be given. A leaf: it imports nothing of the collection."""

from __future__ import annotations

import typing as t

# How deep values may nest mappings and lists. Charts need far fewer levels (a Kubernetes object
# embedded in values is about 15 deep); parsing, redaction, the inputs digest and the diff
# recurse once per level, and Python ends a recursion at about 1,000 (libyaml's C composer
# crashes the process at about 100,000). Through ansible-playbook, release_values deeper than
# about 190 levels never reach a module: ansible-core's templating refuses them.
MAX_VALUES_DEPTH = 100

JSON_SPACE = " \t\r\n"


def nesting_depth(tree: t.Any, limit: int = MAX_VALUES_DEPTH) -> int:
    """How deep dicts and lists nest (a scalar: 0, ``{"k": "v"}``: 1), without recursion;
    the walk stops once deeper than ``limit``."""
    deepest = 0
    stack = [(tree, 1)] if isinstance(tree, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def json_nesting(text: str, start: int = 0) -> int:
    """How deep the JSON value at ``start`` nests its objects and arrays (a scalar: 0), read
    without recursion: a parser recurses once per level. Unterminated input counts what it opened."""
    while start < len(text) and text[start] in JSON_SPACE:
        start += 1
    if start >= len(text) or text[start] not in "[{":
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for char in text[start:]:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
            if depth == 0:
                break
    return deepest
