# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Redaction of secrets: one place decides what is secret and how it is hidden.

Secrets are the leaves of user values under sensitive keys (or paths the user names), every
``set_values`` expression, the API token and the private parts of a kubeconfig. They must not
reach argv, results, diffs, logs or the audit log.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._nesting import MAX_VALUES_DEPTH, json_nesting

REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted: changed>"
TOO_DEEP = f"<not shown: nested more than {MAX_VALUES_DEPTH} levels deep>"
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
# Below this, a secret's base64 is too short to mask in free text without garbling other base64.
MIN_BASE64_MASK_LEN = 6

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
        self._forms: set[str] = set()
        self._longest_first: list[str] | None = None  # the forms in the order they are replaced
        self._sensitive_paths = [split_path(p) for p in sensitive_paths]
        self._lock = threading.Lock()

    @property
    def secrets(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._secrets)

    def add_secret(self, value: t.Any) -> None:
        if value is None or isinstance(value, bool):
            return
        text = value if isinstance(value, str) else str(value)
        if not text or text in self._secrets:
            return
        with self._lock:  # releases deployed in parallel share the task's redactor
            self._secrets.add(text)
            if len(text) >= MIN_TEXT_MASK_LEN:
                self._forms.update(text_forms(text))
                self._longest_first = None

    def add_set_value(self, expression: str, value_type: str = "raw", file_content: str | None = None) -> None:
        """Registers one ``set_values`` item: the expression, and each value as helm reads it.

        helm unescapes ``--set``/``--set-string`` values (``\\,`` is a comma) and splits them at
        unescaped commas, parses ``--set-json`` values, and reads ``--set-file`` values from a
        file; a chart or an error message shows what helm read, not what the task said. A
        piece with no ``=`` (an unescaped comma inside a value) is what helm quotes back in
        ``key "..." has no value``, so it is registered whatever its key."""
        self.add_secret(expression)
        key, sep, value = expression.partition("=")
        if not sep:
            return
        path = split_path(key)
        sensitive = self.is_sensitive(path)
        if value_type in ("literal", "file"):
            if sensitive:
                self.add_secret(value)
                if value_type == "file":
                    self.add_secret(file_content)
            return
        if value_type == "json":
            if sensitive:
                self.add_secret(value)
            if json_nesting(value) > MAX_VALUES_DEPTH:
                return  # refused by validate.set_values; parsing it would recurse as deep
            try:
                parsed = json.loads(value)
            except ValueError:
                return  # helm refuses it, quoting the whole expression (registered above)
            self.add_values(parsed, path)
            return
        for raw, unescaped in _split_set_expression(expression):
            piece_key, piece_sep, raw_value = raw.partition("=")
            if not piece_sep:
                for text in (raw, unescaped, unescaped.strip("{}")):
                    self.add_secret(text)
            elif self.is_sensitive(split_path(piece_key)):
                read = unescaped.partition("=")[2]
                # strip: helm reads key={a,b} as a list of a and b.
                for text in (raw_value, read, read.strip("{}")):
                    self.add_secret(text)

    def is_sensitive(self, path: tuple[str, ...]) -> bool:
        return any(SENSITIVE_KEY.search(str(k)) for k in path) or _path_matches(path, self._sensitive_paths)

    def add_values(self, values: t.Any, path: tuple[str, ...] = ()) -> None:
        """Registers the sensitive leaves of a values tree as secrets."""
        for leaf_path, leaf in iter_leaves(values, path):
            if self.is_sensitive(leaf_path):
                self.add_secret(leaf)

    def redact_text(self, text: str | None) -> str | None:
        if not text or not self._forms:
            return text
        forms = self._longest_first
        if forms is None:
            with self._lock:
                # Longest first: a secret that contains another is masked whole.
                forms = self._longest_first = sorted(self._forms, key=len, reverse=True)
        for form in forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def redact_tree(self, data: t.Any) -> t.Any:
        """A copy of a result (dicts, lists, strings) with every known secret masked in every
        string: the last sweep over what a module returns, whatever built it."""
        if isinstance(data, str):
            return self.redact_text(data)
        if isinstance(data, dict):
            return {key: self.redact_tree(value) for key, value in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.redact_tree(value) for value in data]
        return data

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
        secret changed, without showing either value. Values nested deeper than MAX_VALUES_DEPTH
        (refused as input, or stored by another tool) are cut there.
        """
        if len(path) >= MAX_VALUES_DEPTH and isinstance(values, (dict, list)):
            return TOO_DEEP
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


def text_forms(secret: str) -> set[str]:
    """How a secret can be written in text a program printed: as is; quoted the way JSON, a
    chart's ``quote`` (Go's %q) or ``toJson`` (which also escapes <, > and &) quote it; and its
    base64 (a chart's ``b64enc`` outside a Secret's data)."""
    quoted = json.dumps(secret)[1:-1]
    forms = {
        secret,
        quoted,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quoted.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
    }
    if len(secret) >= MIN_BASE64_MASK_LEN:
        forms.add(base64.b64encode(secret.encode("utf-8")).decode("ascii"))
    return forms


def _split_set_expression(expression: str) -> list[tuple[str, str]]:
    """``--set`` pieces as (raw, unescaped): helm's parser splits at commas and reads a
    backslash as "the next character as is"."""
    pieces: list[tuple[str, str]] = []
    raw: list[str] = []
    unescaped: list[str] = []
    chars = iter(expression)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            raw.append(char + following)
            unescaped.append(following)
        elif char == ",":
            pieces.append(("".join(raw), "".join(unescaped)))
            raw, unescaped = [], []
        else:
            raw.append(char)
            unescaped.append(char)
    pieces.append(("".join(raw), "".join(unescaped)))
    return pieces


def redact_set_expression(expression: str) -> str:
    """``a=1,b.c=x`` -> ``a=********,b.c=********``; escaped commas stay inside a value."""
    parts = re.split(r"(?<!\\),", expression)
    redacted = []
    for part in parts:
        key, sep, _value = part.partition("=")
        redacted.append(f"{key}={MASK}" if sep else MASK)
    return ",".join(redacted)
