# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""helm 3's rules for ``--set``-family expressions, checked before helm runs.

A port of helm's ``pkg/strvals`` (``parser.go`` and ``literal_parser.go``, helm v3.21) that builds
the same structure helm builds and fails where helm 3 fails, with helm's own words. helm 4 runs
the same parser but takes any error that wraps ``io.EOF`` for the end of the input
(``errors.Is``): an unclosed index (``a[=x``) that helm 3 refuses is installed by helm 4. Checking
by helm 3's rules first gives one outcome on both majors.

The expressions of all ``set_values`` items are parsed into one map, in helm's order (every
``--set-json``, then ``--set``, ``--set-string``, ``--set-file``, ``--set-literal``), so a key used
as a map by one item and as a list by another fails as it does in helm. The values files are not
part of that map, so a conflict with them is left to helm (both majors report it). ``--set-file``
values are not read here: helm reads them, and a missing file fails on both majors.

Nesting is bounded while parsing (``max_depth``): the parser recurses once per level, and a
value tree deeper than the collection's limit is refused whatever helm would do.
"""

from __future__ import annotations

import json
import re
import typing as t

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._nesting import JSON_SPACE, json_nesting

# helm pkg/strvals: the largest list index, and the most '.'-separated levels of one name.
MAX_INDEX = 65536
MAX_NESTED_NAME_LEVEL = 30

# The order helm's values.Options.MergeValues applies the flags in, whatever the argv order.
APPLY_ORDER = ("json", "raw", "string", "file", "literal")

# Go's unicode.IsSpace (the parser's emptyVal), and JSON's whitespace (encoding/json).
_GO_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                      "\u2028\u2029\u202f\u205f\u3000")
_GO_INT = re.compile(r"[+-]?[0-9]+")


class SetSyntaxError(ValueError):
    """An expression helm 3 refuses; ``reason`` is helm's message."""

    def __init__(self, index: int, value_type: str, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.value_type = value_type
        self.reason = reason


class SetTooDeep(ValueError):
    """An expression whose value tree nests deeper than ``max_depth``."""

    def __init__(self, index: int, value_type: str, max_depth: int) -> None:
        super().__init__(f"nested more than {max_depth} levels deep")
        self.index = index
        self.value_type = value_type
        self.max_depth = max_depth


def check(items: t.Sequence[tuple[str, str]], max_depth: int) -> None:
    """Parses ``(value_type, expression)`` items as helm 3 does; raises SetSyntaxError for the
    first one helm 3 refuses, or SetTooDeep for one nesting deeper than ``max_depth``."""
    data: dict[str, t.Any] = {}
    for value_type in APPLY_ORDER:
        for index, (item_type, expression) in enumerate(items):
            if item_type != value_type:
                continue
            try:
                error = _Parser(expression, data, value_type, max_depth).parse()
            except _TooDeep:
                raise SetTooDeep(index, value_type, max_depth) from None
            if error is not None:
                raise SetSyntaxError(index, value_type, error.message)


# ---- the port ------------------------------------------------------------------------------


class _GoError:
    """A Go error value: compared by identity for the sentinels (io.EOF, ErrNotList)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return self.message


EOF = _GoError("EOF")
NOT_A_LIST = _GoError("not a list")


class _Panic(Exception):
    """A Go runtime panic (a failed type assertion), recovered by the nearest ``key``."""


class _TooDeep(Exception):
    pass


class _List:
    """A Go ``[]interface{}``: its length and the items set (helm's index can be 65536)."""

    def __init__(self, items: t.Iterable[t.Any] = ()) -> None:
        self.items: dict[int, t.Any] = dict(enumerate(items))
        self.length = len(self.items)

    def get(self, index: int) -> t.Any:
        return self.items.get(index)


def _go_type(value: t.Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, _List):
        return "[]interface {}"
    return "string"


def _as_list(value: t.Any) -> _List:
    if not isinstance(value, _List):
        raise _Panic(f"interface conversion: interface {{}} is {_go_type(value)}, not []interface {{}}")
    return value


def _as_map(value: t.Any) -> dict[str, t.Any]:
    if not isinstance(value, dict):
        raise _Panic(f"interface conversion: interface {{}} is {_go_type(value)}, not map[string]interface {{}}")
    return value


def _quote(text: str) -> str:
    """Go's %q, closely enough for a message."""
    return json.dumps(text, ensure_ascii=False)


def _atoi(text: str) -> tuple[int, _GoError | None]:
    """strconv.Atoi: an optional sign and ASCII digits, within int64."""
    if not _GO_INT.fullmatch(text):
        return 0, _GoError(f"strconv.Atoi: parsing {_quote(text)}: invalid syntax")
    value = int(text)
    if not -(2 ** 63) <= value < 2 ** 63:
        return 0, _GoError(f"strconv.Atoi: parsing {_quote(text)}: value out of range")
    return value, None


def _set(data: dict[str, t.Any], key: str, value: t.Any) -> None:
    if key:
        data[key] = value


def _set_index(items: _List, index: int, value: t.Any) -> tuple[_List, _GoError | None]:
    if index < 0:
        return items, _GoError(f"negative {index} index not allowed")
    if index > MAX_INDEX:
        return items, _GoError(f"index of {index} is greater than maximum supported index of {MAX_INDEX}")
    items.length = max(items.length, index + 1)
    items.items[index] = value
    return items, None


def _typed(text: str) -> t.Any:
    """helm's typedVal for --set: booleans, null, int64, else the string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if text == "0":
        return 0
    if text and text[0] != "0":
        value, error = _atoi(text)
        if error is None:
            return value
    return text


def _from_json(value: t.Any) -> t.Any:
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return _List(_from_json(v) for v in value)
    return value


def _refuse_constant(name: str) -> t.NoReturn:
    raise ValueError(f"invalid character {_quote(name[0])} looking for beginning of value")


# Go's encoding/json: NaN and Infinity are not JSON; numbers are float64.
_JSON = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=float)


class _Parser:
    def __init__(self, text: str, data: dict[str, t.Any], value_type: str, max_depth: int) -> None:
        self.text = text
        self.pos = 0
        self.data = data
        self.value_type = value_type
        self.literal = value_type == "literal"
        self.max_depth = max_depth
        self.key_stop = frozenset("=[." if self.literal else "=[,.")

    # -- the scanner (a bytes.Buffer of runes) --

    def read(self) -> str | None:
        if self.pos >= len(self.text):
            return None
        self.pos += 1
        return self.text[self.pos - 1]

    def unread(self) -> None:
        self.pos -= 1

    def until(self, stop: t.Collection[str]) -> tuple[str, str, _GoError | None]:
        """runesUntil (a backslash takes the next rune as is), or runesUntilLiteral (no escapes)."""
        out = []
        while True:
            char = self.read()
            if char is None:
                return "".join(out), "", EOF
            if char in stop:
                return "".join(out), char, None
            if char == "\\" and not self.literal:
                char = self.read()
                if char is None:
                    return "".join(out), "", EOF
            out.append(char)

    def deeper(self, depth: int) -> int:
        if depth > self.max_depth:
            raise _TooDeep
        return depth

    # -- the grammar --

    def parse(self) -> _GoError | None:
        while True:
            error = self.key(self.data, 0, 1)
            if error is None:
                continue
            return None if error is EOF else error

    def key(self, data: dict[str, t.Any], level: int, depth: int) -> _GoError | None:
        """A name (``data`` is the map at ``depth``); a failed type assertion is recovered here."""
        try:
            return self._key(data, level, depth)
        except _Panic as panic:
            return _GoError(f"unable to parse key: {panic}")

    def _key(self, data: dict[str, t.Any], level: int, depth: int) -> _GoError | None:
        name, last, error = self.until(self.key_stop)
        if error is not None:
            return error if not name else _GoError(f"key {_quote(name)} has no value")
        if last == "[":
            index, error = self.index()
            if error is not None:
                return _GoError(f"error parsing index: {error}")
            items = _as_list(data[name]) if name in data else _List()
            items, error = self.list_item(items, index, level, self.deeper(depth + 1))
            _set(data, name, items)
            return error
        if last == "=":
            return self.assign(data, name, depth)
        if last == ",":
            _set(data, name, "")
            return _GoError(f"key {_quote(name)} has no value (cannot end with ,)")
        # last == "."
        level += 1
        if level > MAX_NESTED_NAME_LEVEL:
            return _GoError(f"value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}")
        inner = _as_map(data[name]) if name in data else {}
        error = self.key(inner, level, self.deeper(depth + 1))
        if error is None and not inner:
            return _GoError(f"key map {_quote(name)} has no value")
        if inner:
            _set(data, name, inner)
        return error

    def assign(self, data: dict[str, t.Any], name: str, depth: int) -> _GoError | None:
        """What follows ``name=``."""
        if self.literal:
            _set(data, name, self.rest())
            return None
        if self.value_type == "json":
            if self.empty():
                _set(data, name, None)
                return None
            value, error = self.json_value(depth)
            if error is not None:
                return error
            _set(data, name, value)
            self.empty()
            return None
        items, error = self.value_list(depth)
        if error is None:
            _set(data, name, items)
            return None
        if error is EOF:
            _set(data, name, "")
            return error
        if error is NOT_A_LIST:
            text, _error = self.value()  # only ever io.EOF, which ends the expression anyway
            _set(data, name, self.convert(text))
            return None
        return error

    def list_item(self, items: _List, index: int, level: int, depth: int) -> tuple[_List, _GoError | None]:
        """What follows ``[index]``; ``items`` is the list at ``depth``."""
        if index < 0:
            return items, _GoError(f"negative {index} index not allowed")
        rest, last, error = self.until("[.=")
        if rest:
            # helm formats the runes with %q: ['x' 'y'].
            shown = " ".join("'" + _quote(char)[1:-1].replace("'", "\\'") + "'" for char in rest)
            return items, _GoError(f"unexpected data at end of array index: [{shown}]")
        if error is not None:
            return items, error
        if last == "=":
            return self.assign_item(items, index, depth)
        if last == "[":
            next_index, error = self.index()
            if error is not None:
                return items, _GoError(f"error parsing index: {error}")
            existing = items.get(index) if items.length > index else None
            nested = _as_list(existing) if existing is not None else _List()
            nested, error = self.list_item(nested, next_index, level, self.deeper(depth + 1))
            if error is not None:
                return items, error
            return _set_index(items, index, nested)
        # last == "."
        inner: dict[str, t.Any] = {}
        if items.length > index:
            if isinstance(items.get(index), dict):
                inner = items.get(index)
            else:  # indices out of order: helm starts an empty map there
                items.items[index] = inner
        error = self.key(inner, level, self.deeper(depth + 1))
        if error is not None:
            return items, error
        return _set_index(items, index, inner)

    def assign_item(self, items: _List, index: int, depth: int) -> tuple[_List, _GoError | None]:
        """What follows ``[index]=``."""
        if self.literal:
            return _set_index(items, index, self.rest())
        if self.value_type == "json":
            if self.empty():
                return _set_index(items, index, None)
            value, error = self.json_value(depth)
            if error is not None:
                return items, error
            items, error = _set_index(items, index, value)
            if error is None:
                self.empty()
            return items, error
        values, error = self.value_list(depth)
        if error is None:
            return _set_index(items, index, values)
        if error is EOF:
            return _set_index(items, index, "")
        if error is NOT_A_LIST:
            text, error = self.value()
            if error is not None and error is not EOF:
                return items, error
            return _set_index(items, index, self.convert(text))
        return items, error

    def index(self) -> tuple[int, _GoError | None]:
        text, _last, error = self.until("]")
        if error is not None:
            return 0, error
        return _atoi(text)

    def value(self) -> tuple[str, _GoError | None]:
        text, _last, error = self.until(",")
        return text, error

    def rest(self) -> str:
        text = self.text[self.pos:]
        self.pos = len(self.text)
        return text

    def convert(self, text: str) -> t.Any:
        return _typed(text) if self.value_type == "raw" else text

    def value_list(self, depth: int) -> tuple[_List, _GoError | None]:
        """``{a,b}``: a list, one level below ``depth``."""
        char = self.read()
        if char is None:
            return _List(), EOF
        if char != "{":
            self.unread()
            return _List(), NOT_A_LIST
        self.deeper(depth + 1)
        values = []
        while True:
            text, last, error = self.until(",}")
            if error is not None:
                return _List(values), _GoError("list must terminate with '}'") if error is EOF else error
            values.append(self.convert(text))
            if last == "}":
                following = self.read()
                if following is not None and following != ",":
                    self.unread()
                return _List(values), None

    def empty(self) -> bool:
        """emptyVal: skips spaces; True at a comma (consumed) or the end."""
        while True:
            char = self.read()
            if char is None or char == ",":
                return True
            if char not in _GO_SPACE:
                self.unread()
                return False

    def json_value(self, depth: int) -> tuple[t.Any, _GoError | None]:
        """One JSON value, as Go's json.Decoder reads it from the rest of the expression."""
        start = self.pos
        while start < len(self.text) and self.text[start] in JSON_SPACE:
            start += 1
        self.deeper(depth + json_nesting(self.text, start))
        try:
            value, end = _JSON.raw_decode(self.text, start)
        except ValueError as exc:
            return None, _GoError(str(exc))
        if isinstance(value, float) and self.text[end:end + 1] in (".", "e", "E"):
            # Python stops before a dangling "." or exponent ("1.", "1e"); Go reads on and fails.
            return None, _GoError(f"invalid character after numeric literal {_quote(self.text[start:end + 1])}")
        self.pos = end
        return _from_json(value), None
