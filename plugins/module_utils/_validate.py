# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this module_util is internal to ai_mesh.helm_engine and can change without notice.

"""Input validation with no side effect: every manager calls these before helm or the cluster
is touched, so a rejected input never follows a change.

Each check names the rule it enforces, so the message says how to fix the input.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import re
import typing as t
from urllib.parse import urlparse

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils import _strvals as strvals
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._nesting import MAX_VALUES_DEPTH, nesting_depth
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._errors import (
    CHART_NOT_FOUND,
    HELM_MISSING,
    INVALID_VALUES,
    TIMEOUT,
    HelmError,
    InputError,
)

# helm's release name rule (pkg/chartutil ValidateReleaseName): a DNS-1123 subdomain of at most
# 53 characters, because helm appends suffixes to it in its storage Secret names.
RELEASE_NAME_MAX = 53
_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kubernetes namespace rule: a DNS-1123 label of at most 63 characters.
NAMESPACE_MAX = 63
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# A Kubernetes Secret holds at most 1 MiB; helm stores a release as base64(gzip(JSON)), so the
# values alone, stored that way, must fit.
RELEASE_SECRET_LIMIT = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Values files and chart refs beyond this are certainly mistakes (a value pasted as a path).
MAX_REF_LENGTH = 4096
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$")


def release_name(value: t.Any, option: str = "name") -> str:
    text = _text(value, option)
    if len(text) > RELEASE_NAME_MAX:
        raise InputError(f"{option} {_show(text)} is {len(text)} characters long; helm allows at most {RELEASE_NAME_MAX}.", option=option)
    if not _RELEASE_NAME.match(text):
        raise InputError(
            f"{option} {_show(text)} is not a valid release name: use lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit (helm's DNS-1123 subdomain rule).",
            option=option,
        )
    return text


def namespace(value: t.Any, option: str = "namespace") -> str:
    text = _text(value, option)
    if len(text) > NAMESPACE_MAX or not _DNS1123_LABEL.match(text):
        raise InputError(
            f"{option} {_show(text)} is not a valid namespace: at most {NAMESPACE_MAX} lowercase letters, digits "
            "and '-', starting and ending with a letter or digit (Kubernetes' DNS-1123 label rule).",
            option=option,
        )
    return text


def argument(value: t.Any, option: str) -> str:
    """A string that helm receives as a flag value or positional argument: never empty, never
    starting with '-' (helm would read a flag), no control characters (newlines)."""
    text = _text(value, option)
    if text.startswith("-"):
        raise InputError(f"{option} {_show(text)} starts with '-', which helm would read as a flag.", option=option)
    if len(text) > MAX_REF_LENGTH:
        raise InputError(f"{option} is {len(text)} characters long; at most {MAX_REF_LENGTH} are accepted.", option=option)
    return text


# RFC 6750's b64token, loosened to any visible ASCII character: what an HTTP Authorization
# header can carry. The kubernetes client cannot even send anything else (it encodes headers
# as latin-1) and would report an unreachable cluster.
_BEARER_TOKEN = re.compile(r"[\x21-\x7e]+")


def api_key(value: t.Any, option: str = "api_key") -> str:
    """A bearer token. The message never shows it."""
    text = value if isinstance(value, str) else ""
    if not _BEARER_TOKEN.fullmatch(text):
        raise InputError(f"{option} is not a bearer token: use visible ASCII characters only, no spaces (RFC 6750).",
                         option=option)
    return text


def optional_argument(value: t.Any, option: str) -> str | None:
    return None if value is None else argument(value, option)


def chart_ref(value: t.Any, option: str = "chart_ref") -> str:
    text = argument(value, option)
    if text.startswith(("/", "./", "../", "~")) and not os.path.exists(os.path.expanduser(text)):
        raise InputError(f"chart {_show(text)} does not exist on the host that runs the module.", kind=CHART_NOT_FOUND, option=option)
    return text


def url(value: t.Any, option: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    text = argument(value, option)
    parsed = urlparse(text)
    if parsed.scheme not in schemes or not parsed.hostname:
        raise InputError(f"{option} {_show(text)} is not a URL ({' or '.join(s + '://host' for s in schemes)}).", option=option)
    try:
        parsed.port  # noqa: B018 - raises on a non-numeric port
    except ValueError as exc:
        raise InputError(f"{option} {_show(text)} has an invalid port: {exc}.", option=option) from exc
    return text


def values_files(paths: t.Sequence[t.Any], option: str = "values_files") -> list[str]:
    checked = []
    for raw in paths:
        path = os.path.expanduser(argument(raw, option))
        if not os.path.isfile(path):
            what = "is a directory" if os.path.isdir(path) else "does not exist"
            raise InputError(f"values file {_show(str(raw), PATH_SHOWN)} {what} on the host that runs the module.", kind=INVALID_VALUES, option=option)
        if not os.access(path, os.R_OK):
            raise InputError(f"values file {_show(str(raw), PATH_SHOWN)} is not readable.", kind=INVALID_VALUES, option=option)
        checked.append(path)
    return checked


def values_size(values: dict[str, t.Any] | None, files: t.Sequence[str]) -> None:
    """Values that cannot fit in helm's release Secret, however the chart renders: the API
    server would reject the release only after hooks and resources were applied."""
    blobs = []
    if values:
        blobs.append(json.dumps(values, sort_keys=True).encode("utf-8"))
    for path in files:
        if os.path.getsize(path) > 8 * RELEASE_SECRET_LIMIT:
            raise InputError(f"values file {_show(path, PATH_SHOWN)} is larger than 8 MiB; a release holds at most 1 MiB.", kind=INVALID_VALUES)
        with open(path, "rb") as handle:
            blobs.append(handle.read())
    if not blobs:
        return
    stored = len(base64.b64encode(gzip.compress(b"\n".join(blobs), compresslevel=9)))
    if stored > RELEASE_SECRET_LIMIT:
        raise InputError(
            f"the values take {stored} bytes as helm stores them (gzip, base64), more than the {RELEASE_SECRET_LIMIT} bytes "
            "a release Secret can hold; move large data out of the values (a ConfigMap, a mounted file).",
            kind=INVALID_VALUES,
        )


def values_nesting(params: dict[str, t.Any], values_params: t.Sequence[str],
                   read_text: t.Callable[[str], str | None]) -> None:
    """Values that nest deeper than MAX_VALUES_DEPTH, refused before anything walks them: the
    task's values dicts (``values_params``) and its values files (read with ``read_text``, None
    for a file that cannot be read: values_files reports that). ``set_values`` nest by their
    syntax and are measured by set_values()."""
    for name in values_params:
        if nesting_depth(params.get(name)) > MAX_VALUES_DEPTH:
            raise InputError(_too_deep(name), kind=INVALID_VALUES, option=name)
    for path in params.get("values_files") or []:
        text = read_text(path) if isinstance(path, str) else None
        depth = yaml_nesting(text) if text is not None else None
        if depth is not None and depth > MAX_VALUES_DEPTH:
            raise InputError(_too_deep(f"values file {_show(path, PATH_SHOWN)}", " (an alias counts as what it repeats)"),
                             kind=INVALID_VALUES, option="values_files")


def yaml_nesting(text: str, limit: int = MAX_VALUES_DEPTH) -> int | None:
    """How deep a YAML stream nests mappings and sequences, an alias counting as the node it
    repeats (an alias inside its own anchor: without end), read from the parser's events,
    which libyaml produces without recursion. Stops once deeper than ``limit``; None when the
    text is not YAML (helm reports that)."""
    if yaml is None:  # pragma: no cover - PyYAML comes with ansible-core
        return None
    starts, ends = (yaml.MappingStartEvent, yaml.SequenceStartEvent), (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    open_nodes: list[list[t.Any]] = []  # [anchor, height of its deepest child]
    heights: dict[str, int] = {}  # anchor -> height of its node (a scalar: 0)
    deepest = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            height = None
            if isinstance(event, starts):
                open_nodes.append([event.anchor, 0])
                deepest = max(deepest, len(open_nodes))
            elif isinstance(event, ends):
                anchor, below = open_nodes.pop()
                height = below + 1
                if anchor is not None:
                    heights[anchor] = height
            elif isinstance(event, yaml.AliasEvent):
                if any(anchor == event.anchor for anchor, _below in open_nodes):
                    return limit + 1  # a node that contains itself
                height = heights.get(event.anchor, 0)
                deepest = max(deepest, len(open_nodes) + height)
            elif isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
                heights[event.anchor] = 0
            if height is not None and open_nodes:
                open_nodes[-1][1] = max(open_nodes[-1][1], height)
            if deepest > limit:
                return deepest
    except yaml.YAMLError:
        return None
    return deepest


def load_values_yaml(text: str) -> t.Any:
    """A values file's content as helm reads it (one YAML document), or None when it is not
    YAML or nests deeper than MAX_VALUES_DEPTH: measured first, because composing it recurses."""
    depth = yaml_nesting(text)
    if depth is None or depth > MAX_VALUES_DEPTH:
        return None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None


def set_values(items: t.Sequence[tuple[str, str]], option: str = "set_values") -> None:
    """``(value_type, expression)`` items refused as helm 3 refuses them (see _strvals), or
    nesting deeper than MAX_VALUES_DEPTH, before helm runs: helm 4 installs some that helm 3
    refuses (an unclosed index)."""
    try:
        strvals.check(items, MAX_VALUES_DEPTH)
    except strvals.SetTooDeep as exc:
        raise InputError(_too_deep(f"{option}[{exc.index}]"), kind=INVALID_VALUES, option=option) from None
    except strvals.SetSyntaxError as exc:
        flag = _SET_FLAGS[exc.value_type]
        key = items[exc.index][1].partition("=")[0]
        hint = " (an index needs its closing ']')" if exc.reason.endswith("error parsing index: EOF") else ""
        raise InputError(f"{option}[{exc.index}] ({flag}, key {_show(key)}): failed parsing {flag} data: {exc.reason}{hint}. "
                         "helm 3 refuses this syntax, so it is refused on every helm major.",
                         kind=INVALID_VALUES, option=option) from None


_SET_FLAGS = {"raw": "--set", "string": "--set-string", "json": "--set-json", "file": "--set-file", "literal": "--set-literal"}


def _too_deep(what: str, note: str = "") -> str:
    return (f"{what} nests mappings and lists more than {MAX_VALUES_DEPTH} levels deep{note}; at most "
            f"{MAX_VALUES_DEPTH} levels are accepted, far more than a chart needs.")


def unanswered_version_probe(exc: HelmError, binary: str, deadline: float) -> HelmError:
    """``helm version`` stopped at its (short) deadline: the binary is not a helm that works.
    A task would otherwise end in Ansible's own timeout, saying nothing about the binary."""
    if exc.kind != TIMEOUT:
        return exc
    return HelmError(
        HELM_MISSING,
        f"{binary} did not answer 'helm version' within {deadline:g}s and was stopped: binary_path must be "
        "helm 3.13+ or helm 4, and one that answers.",
        command=exc.command,
        details={"deadline_seconds": deadline},
    )


def duration_seconds(value: t.Any, option: str = "timeout", *, default: float | None = None, allow_zero: bool = False) -> float | None:
    """A Go duration (``5m``, ``1h30m``, ``90s``) or a number of seconds, as a float.

    Negative or zero durations are refused: with helm they mean "fail at once" or "never",
    neither of which a task asks for on purpose."""
    if value is None:
        return default
    if isinstance(value, str) and value.strip() == "":
        raise InputError(f"{option} is empty; give a duration such as 90s, 5m or 1h30m.", option=option)
    if isinstance(value, bool):
        raise InputError(f"{option} must be a duration, not a boolean.", option=option)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        if re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
            seconds = float(text)
        elif _GO_DURATION.match(text):
            seconds = _go_duration_seconds(text, option)
        elif text.startswith("-") and _GO_DURATION.match(text[1:]):
            raise InputError(f"{option} must be positive, got {_show(text)}.", option=option)
        else:
            raise InputError(f"{option} {_show(text)} is not a duration (examples: 90s, 5m, 1h30m, or a number of seconds).", option=option)
    if not math.isfinite(seconds):
        raise InputError(f"{option} must be a finite duration.", option=option)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise InputError(f"{option} must be {'zero or ' if allow_zero else ''}positive, got {_show(str(value))}.", option=option)
    if seconds > 7 * 24 * 3600:
        raise InputError(f"{option} {_show(str(value))} is longer than a week.", option=option)
    return seconds


def _go_duration_seconds(text: str, option: str) -> float:
    try:
        import durationpy  # shipped with the kubernetes client
    except ImportError:  # pragma: no cover - kubernetes >= 31 depends on it
        return _fallback_duration(text)
    try:
        return durationpy.from_str(text).total_seconds()
    except Exception as exc:  # durationpy raises its own error types
        raise InputError(f"{option} {_show(text)} is not a duration: {exc}.", option=option) from exc


def _fallback_duration(text: str) -> float:
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * units[u] for n, _frac, u in re.findall(r"([0-9]+(\.[0-9]*)?)(ns|us|µs|ms|s|m|h)", text))


def go_duration(seconds: float) -> str:
    """The canonical Go duration helm's --timeout takes (helm refuses a bare number)."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    milliseconds = seconds * 1000
    if milliseconds == int(milliseconds):
        return f"{int(milliseconds)}ms"
    return f"{max(1, int(round(seconds * 1e9)))}ns"


def positive_number(value: t.Any, option: str, *, minimum: float, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{option} must be a number.", option=option)
    if (isinstance(value, float) and math.isnan(value)) or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InputError(f"{option} must be {bound}, got {value}.", option=option)
    return float(value)


def has_control_characters(text: str) -> bool:
    """A newline, a tab, a NUL or another control character."""
    return bool(_CONTROL.search(text))


def _text(value: t.Any, option: str) -> str:
    if value is None:
        raise InputError(f"{option} is required.", option=option)
    if not isinstance(value, str):
        raise InputError(f"{option} must be a string, got {type(value).__name__}.", option=option)
    if value == "":
        raise InputError(f"{option} is empty.", option=option)
    if _CONTROL.search(value):
        raise InputError(f"{option} {_show(value)} contains a control character (a newline, a tab, a NUL).", option=option)
    if value != value.strip():
        raise InputError(f"{option} {_show(value)} has leading or trailing spaces.", option=option)
    return value


# A path is shown whole up to PATH_MAX: a user needs all of it to find the file; only a hostile
# one is cut.
PATH_SHOWN = 4096


def _show(text: str, limit: int = 80) -> str:
    """A value quoted for a message, cut so a huge input does not become a huge message."""
    shown = text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
    return repr(shown)
