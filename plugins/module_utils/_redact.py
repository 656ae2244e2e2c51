# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Redaction of secrets: one place decides what is secret and how it is hidden.

Secrets are the leaves of user values under sensitive keys (or paths the user names), every
``set_values`` expression, the API token and the private parts of a kubeconfig. They must not
reach argv, results, diffs, logs or the audit log.
"""

from __future__ import annotations

import re
import typing as t

REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted: changed>"
MASK = "********"

# Keys whose values are treated as secret wherever they appear in user values or kubeconfigs.
SENSITIVE_KEY = re.compile(
    r"(passw(or)?d|secret|token|api[_-]?key|private[_-]?key|credential|client[_-]?key|certificate[_-]?key|"
    r"access[_-]?key|auth[_-]?key|bearer|session[_-]?key|salt|dsn|connection[_-]?string)",
    re.IGNORECASE,
)

# Strings shorter than this are not masked inside free text: masking "on" or "12" everywhere
# would garble output and protects nothing. They are still redacted structurally.
MIN_TEXT_MASK_LEN = 3

SET_FLAGS = ("--set", "--set-string", "--set-json", "--set-literal", "--set-file")


def _path_matches(path: tuple[str, ...], patterns: t.Iterable[tuple[str, ...]]) -> bool:
    for pattern in patterns:
        if len(pattern) <= len(path) and all(p in ("*", k) for p, k in zip(pattern, path)):
            return True
    return False


def split_path(dotted: str) -> tuple[str, ...]:
    return tuple(part for part in dotted.split(".") if part)


class Redactor:
    """Collects secret strings and hides them in text, argv and data structures."""

    def __init__(self, sensitive_paths: t.Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._sensitive_paths = [split_path(p) for p in sensitive_paths]

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def add_secret(self, value: t.Any) -> None:
        if value is None or isinstance(value, bool):
            return
        text = value if isinstance(value, str) else str(value)
        if text:
            self._secrets.add(text)

    def is_sensitive(self, path: tuple[str, ...]) -> bool:
        return any(SENSITIVE_KEY.search(str(k)) for k in path) or _path_matches(path, self._sensitive_paths)

    def add_values(self, values: t.Any, path: tuple[str, ...] = ()) -> None:
        """Registers the sensitive leaves of a values tree as secrets."""
        for leaf_path, leaf in iter_leaves(values, path):
            if self.is_sensitive(leaf_path):
                self.add_secret(leaf)

    def redact_text(self, text: str | None) -> str | None:
        if not text:
            return text
        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= MIN_TEXT_MASK_LEN and secret in text:
                text = text.replace(secret, MASK)
        return text

    def redact_argv(self, argv: t.Sequence[str]) -> list[str]:
        """Keeps the keys of --set* expressions and hides their values."""
        out: list[str] = []
        hide_next = False
        for arg in argv:
            if hide_next:
                out.append(redact_set_expression(arg))
                hide_next = False
                continue
            flag, sep, value = arg.partition("=")
            if flag in SET_FLAGS and sep:
                out.append(f"{flag}={redact_set_expression(value)}")
                continue
            if arg in SET_FLAGS:
                hide_next = True
            out.append(self.redact_text(arg) or arg)
        return out

    def redact_values(self, values: t.Any, other: t.Any = None, path: tuple[str, ...] = ()) -> t.Any:
        """Returns a copy of a values tree with sensitive leaves replaced by a marker.

        With ``other`` (the tree on the other side of a diff) the marker says whether the
        secret changed, without showing either value.
        """
        if isinstance(values, dict):
            other_map = other if isinstance(other, dict) else {}
            return {k: self.redact_values(v, other_map.get(k, _MISSING), path + (str(k),)) for k, v in values.items()}
        if isinstance(values, list):
            other_list = other if isinstance(other, list) else []
            return [
                self.redact_values(v, other_list[i] if i < len(other_list) else _MISSING, path + (str(i),))
                for i, v in enumerate(values)
            ]
        if path and self.is_sensitive(path):
            if other is _MISSING or other == values:
                return REDACTED
            return REDACTED_CHANGED
        if isinstance(values, str):
            return self.redact_text(values)
        return values


_MISSING = object()


def iter_leaves(tree: t.Any, path: tuple[str, ...] = ()) -> t.Iterator[tuple[tuple[str, ...], t.Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from iter_leaves(value, path + (str(key),))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from iter_leaves(value, path + (str(index),))
    else:
        yield path, tree


def redact_set_expression(expression: str) -> str:
    """``a=1,b.c=x`` -> ``a=********,b.c=********``; escaped commas stay inside a value."""
    parts = re.split(r"(?<!\\),", expression)
    redacted = []
    for part in parts:
        key, sep, _value = part.partition("=")
        redacted.append(f"{key}={MASK}" if sep else MASK)
    return ",".join(redacted)
