# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Property tests of the redaction helpers: for any secret in any surrounding text, nothing of
it that helm, a chart or JSON could print survives redaction."""

from __future__ import annotations

import base64
import json
import os
import re

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._workspace import json_for_helm
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._manifest import diff_entries, compare
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import (
    MASK,
    REDACTED,
    REDACTED_CHANGED,
    Redactor,
    iter_leaves,
    redact_set_expression,
    text_forms,
)

# ansible-test units installs its own requirements; without hypothesis these cases skip.
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Any character Python can hold as UTF-8 text, controls and astral planes included.
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)
# A secret long enough that masking it is meaningful (shorter ones are only redacted
# structurally, see MIN_TEXT_MASK_LEN), of any characters, not made of the mask or a marker.
SECRETS = st.text(st.characters(codec="utf-8"), min_size=8, max_size=40).filter(
    lambda s: "*" not in s and s not in REDACTED and s not in REDACTED_CHANGED)  # part of a marker is no leak
# No example database: nothing is written into the checkout. More examples for a longer hunt:
# HELM_ENGINE_PROPERTY_EXAMPLES=5000.
MANY = settings(max_examples=int(os.environ.get("HELM_ENGINE_PROPERTY_EXAMPLES", "200")), deadline=None, database=None)


def _escaped(secret: str) -> list[str]:
    """Every way a program's output could carry the secret (see text_forms)."""
    quoted = json.dumps(secret)[1:-1]
    return [secret, quoted, json.dumps(secret, ensure_ascii=False)[1:-1],
            quoted.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
            base64.b64encode(secret.encode()).decode()]


@MANY
@given(secret=SECRETS, before=ANY_TEXT, after=ANY_TEXT)
def test_redact_text_hides_every_form_of_a_secret_in_any_text(secret, before, after):
    redactor = Redactor()
    redactor.add_secret(secret)
    for form in _escaped(secret):
        shown = redactor.redact_text(f"{before}{form}{after}")
        assert form not in shown
        assert MASK in shown


@MANY
@given(secrets=st.lists(SECRETS, min_size=2, max_size=4, unique=True), glue=st.lists(ANY_TEXT, min_size=5, max_size=5))
def test_redact_text_hides_several_secrets_even_overlapping(secrets, glue):
    redactor = Redactor()
    for secret in secrets:
        redactor.add_secret(secret)
    text = "".join(g + s for g, s in zip(glue, secrets + [secrets[0] + secrets[-1]])) + glue[-1]
    shown = redactor.redact_text(text)
    for secret in secrets:
        assert secret not in shown


@MANY
@given(text=ANY_TEXT)
def test_redact_text_without_secrets_changes_nothing(text):
    assert Redactor().redact_text(text) == text


@MANY
@given(secret=SECRETS, key=st.sampled_from(["password", "db.password", "auth.apiToken", "tls.privateKey"]),
       note=ANY_TEXT)
def test_values_are_redacted_structurally_and_in_free_text(secret, key, note):
    redactor = Redactor()
    *parents, leaf = key.split(".")
    values: dict = {leaf: secret}
    for parent in reversed(parents):
        values = {parent: values}
    redactor.add_values(values)
    shown = redactor.redact_values(dict(values, note=f"{note}{secret}{note}"))
    # Leaf by leaf: the secret may be spelled by the keys themselves ("password"), not a leak.
    assert not [leaf for _path, leaf in iter_leaves(shown) if secret in leaf]
    node = shown
    for part in key.split("."):
        node = node[part]
    assert node == REDACTED


def _set_escape(value: str) -> str:
    return "".join("\\" + c if not c.isalnum() else c for c in value)


@MANY
@given(secret=SECRETS, value_type=st.sampled_from(["raw", "string", "literal", "json", "file"]), note=ANY_TEXT)
def test_a_set_value_is_masked_as_helm_reads_it(secret, value_type, note):
    """helm shows the value it read (unescaped, parsed, or the file's content), not the expression."""
    value = {"raw": _set_escape(secret), "string": _set_escape(secret), "literal": secret,
             "json": json.dumps(secret), "file": "/run/secrets/token"}[value_type]
    redactor = Redactor()
    redactor.add_set_value(f"creds.apiToken={value}", value_type, file_content=secret if value_type == "file" else None)
    for form in _escaped(secret):
        assert form not in redactor.redact_text(f"{note}{form}{note}")


@MANY
@given(head=SECRETS, tail=st.text(st.characters(categories=("L", "N")), min_size=4, max_size=20))
def test_an_unescaped_comma_s_tail_is_masked_where_helm_quotes_it(head, tail):
    redactor = Redactor()
    redactor.add_set_value(f"db.password={_set_escape(head)},{tail}")
    shown = redactor.redact_text(f'Error: failed parsing --set data: key "{tail}" has no value')
    assert tail not in shown


@MANY
@given(expression=st.text(st.characters(codec="utf-8"), max_size=60))
def test_redact_set_expression_keeps_no_value_character(expression):
    shown = redact_set_expression(expression)
    # Only keys survive: whatever follows an "=" in a piece is the mask.
    for piece in re.split(r"(?<!\\),", shown):
        assert piece == MASK or piece.endswith("=" + MASK)


@MANY
@given(secret=SECRETS, other=SECRETS)
def test_a_copied_secret_is_masked_in_a_manifest_diff_before_and_after(secret, other):
    """An upgrade's diff shows the old value (before) and the new one (after) a chart copied."""
    redactor = Redactor()
    redactor.add_values({"password": secret})
    redactor.add_values({"password": other})

    def config(value: str) -> dict:
        return {("v1", "ConfigMap", "ns", "copy"): {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copy"},
                                                   "data": {"copy": value, "quoted": json.dumps(value)}},
                ("v1", "Secret", "ns", "s"): {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                             "data": {"password": base64.b64encode(value.encode()).decode()}}}

    def render(before: str, after: str) -> str:
        entries = diff_entries(compare(config(before), config(after)), redactor)
        return json.dumps(entries, ensure_ascii=False) + "".join(e["before"] + e["after"] for e in entries)

    # A "secret" that is part of the diff's own words (a marker, a field name) proves nothing.
    boilerplate = render("placeholder-1", "placeholder-2")
    assume(not any(form in boilerplate for value in (secret, other) for form in _escaped(value)))
    entries = diff_entries(compare(config(secret), config(other + "x")), redactor)
    shown = json.dumps(entries, ensure_ascii=False) + "".join(e["before"] + e["after"] for e in entries)
    for value in (secret, other):
        for form in _escaped(value):
            assert form not in shown


@MANY
@given(secret=SECRETS)
def test_text_forms_are_all_masked(secret):
    redactor = Redactor()
    redactor.add_secret(secret)
    for form in text_forms(secret):
        assert redactor.redact_text(form) == MASK


@MANY
@given(values=st.dictionaries(st.text(max_size=8), st.text(st.characters(codec="utf-8"), max_size=30), max_size=4))
def test_json_for_helm_round_trips_and_holds_no_surrogate_escape_or_raw_line_separator(values):
    text = json_for_helm(values, sort_keys=True)
    assert json.loads(text) == values
    # Characters outside the BMP as UTF-8 (helm refuses surrogate-pair escapes), no raw line separator.
    assert all(c in text for v in values.values() for c in v if ord(c) > 0xFFFF)
    assert "\u2028" not in text and "\x85" not in text
