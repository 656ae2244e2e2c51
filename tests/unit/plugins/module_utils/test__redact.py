# Copyright (c) ai_mesh.helm_engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._redact import (
    MASK,
    REDACTED,
    REDACTED_CHANGED,
    TOO_DEEP,
    Redactor,
)
from ansible_collections.ai_mesh.helm_engine.plugins.module_utils._validate import MAX_VALUES_DEPTH

# ---- redact_argv -------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--set", "--set-string", "--set-json", "--set-file", "--set-literal"])
def test_redact_argv_hides_set_values_in_both_forms(flag):
    argv = ["helm", "upgrade", "web", "./chart", flag, "auth.password=hunter22", f"{flag}=image.tag=1.2"]
    assert Redactor().redact_argv(argv) == [
        "helm", "upgrade", "web", "./chart", flag, f"auth.password={MASK}", f"{flag}=image.tag={MASK}",
    ]


@pytest.mark.parametrize(
    "expression, shown",
    [
        ("a=1,b.c=x", f"a={MASK},b.c={MASK}"),
        # An escaped comma belongs to the value: nothing of it may leak as its own item.
        (r"hosts=a\,b,port=80", f"hosts={MASK},port={MASK}"),
        ("url=https://x.example/?a=b", f"url={MASK}"),
        ("novalue", MASK),
        ("list={a,b}", f"list={MASK},{MASK}"),
    ],
)
def test_redact_argv_keeps_keys_only(expression, shown):
    assert Redactor().redact_argv(["--set", expression]) == ["--set", shown]
    assert Redactor().redact_argv([f"--set={expression}"]) == [f"--set={shown}"]


def test_redact_argv_masks_registered_secrets_elsewhere_and_keeps_the_rest():
    redactor = Redactor()
    redactor.add_secret("hunter22")
    argv = ["helm", "upgrade", "web", "--values", "/tmp/v.json", "--description", "rotate hunter22", "--settings", "x=y"]
    assert redactor.redact_argv(argv) == [
        "helm", "upgrade", "web", "--values", "/tmp/v.json", "--description", f"rotate {MASK}", "--settings", "x=y",
    ]


def test_redact_argv_does_not_modify_its_input():
    argv = ["--set", "a=secret"]
    Redactor().redact_argv(argv)
    assert argv == ["--set", "a=secret"]


# ---- redact_values -----------------------------------------------------------------------


def test_redact_values_sensitive_keys():
    values = {
        "replicaCount": 3,
        "image": {"repository": "registry.local/web", "tag": "1.2"},
        "db": {"host": "db.internal", "password": "hunter22", "passwd": "p2"},
        "apiKey": "k-123",
        "api_key": "k-456",
        "auth": {"token": "t-789"},
        "oauth": {"clientSecret": "cs", "enabled": True},
        "secrets": {"anything": "below", "n": 5},
        "users": [{"name": "alice", "password": "a-pw"}],
    }
    assert Redactor().redact_values(values) == {
        "replicaCount": 3,
        "image": {"repository": "registry.local/web", "tag": "1.2"},
        "db": {"host": "db.internal", "password": REDACTED, "passwd": REDACTED},
        "apiKey": REDACTED,
        "api_key": REDACTED,
        "auth": {"token": REDACTED},
        "oauth": {"clientSecret": REDACTED, "enabled": True},
        "secrets": {"anything": REDACTED, "n": REDACTED},
        "users": [{"name": "alice", "password": REDACTED}],
    }


def test_redact_values_sensitive_paths_with_wildcard():
    redactor = Redactor(["app.licence", "tenants.*.key", "regions.*.*.id"])
    values = {
        "app": {"licence": {"holder": "acme", "serial": "L-1"}, "name": "web"},
        "tenants": [{"name": "a", "key": "k-a"}, {"name": "b", "key": "k-b"}],
        "regions": {"eu": {"west": {"id": "r1", "zone": "z"}}},
        "key": "top-level key is not a sensitive path",
    }
    assert redactor.redact_values(values) == {
        "app": {"licence": {"holder": REDACTED, "serial": REDACTED}, "name": "web"},
        "tenants": [{"name": "a", "key": REDACTED}, {"name": "b", "key": REDACTED}],
        "regions": {"eu": {"west": {"id": REDACTED, "zone": "z"}}},
        "key": "top-level key is not a sensitive path",
    }


@pytest.mark.parametrize(
    "before, after, shown_after",
    [
        ({"db": {"password": "old"}}, {"db": {"password": "new"}}, {"db": {"password": REDACTED_CHANGED}}),
        ({"db": {"password": "same"}}, {"db": {"password": "same"}}, {"db": {"password": REDACTED}}),
        ({}, {"db": {"password": "new"}}, {"db": {"password": REDACTED}}),
        ({"tokens": ["a", "b"]}, {"tokens": ["a", "c", "d"]}, {"tokens": [REDACTED, REDACTED_CHANGED, REDACTED]}),
    ],
)
def test_redact_values_compared_with_the_other_side(before, after, shown_after):
    assert Redactor().redact_values(after, before) == shown_after


def test_redact_values_masks_registered_secrets_in_plain_strings():
    redactor = Redactor()
    redactor.add_secret("hunter22")
    assert redactor.redact_values({"note": "pw is hunter22", "n": 22}) == {"note": f"pw is {MASK}", "n": 22}


def test_redact_values_does_not_modify_its_input():
    values = {"db": {"password": "hunter22"}}
    Redactor().redact_values(values)
    assert values == {"db": {"password": "hunter22"}}


# ---- redact_text / add_values ------------------------------------------------------------


def test_redact_text_masks_registered_secrets():
    redactor = Redactor()
    redactor.add_secret("hunter22")
    redactor.add_secret(424242)
    assert redactor.redact_text("password hunter22, pin 424242") == f"password {MASK}, pin {MASK}"


def test_redact_text_masks_longest_secret_first():
    redactor = Redactor()
    redactor.add_secret("abc")
    redactor.add_secret("abcdef")
    assert redactor.redact_text("abcdef abc") == f"{MASK} {MASK}"


@pytest.mark.parametrize("short", ["on", "1", "ab"])
def test_redact_text_leaves_too_short_secrets(short):
    redactor = Redactor()
    redactor.add_secret(short)
    assert redactor.redact_text("status on, 1 ab") == "status on, 1 ab"
    # Still redacted structurally.
    assert redactor.redact_values({"password": short}) == {"password": REDACTED}


@pytest.mark.parametrize("text", [None, ""])
def test_redact_text_passes_empty_through(text):
    redactor = Redactor()
    redactor.add_secret("hunter22")
    assert redactor.redact_text(text) == text


def test_add_values_registers_only_sensitive_leaves():
    redactor = Redactor(["license.serial"])
    redactor.add_values({
        "replicaCount": 3,
        "image": {"tag": "1.2"},
        "db": {"host": "db.internal", "password": "hunter22"},
        "auth": {"token": 987654},
        "license": {"serial": "L-1", "holder": "acme"},
        "tls": {"secretEnabled": True, "privateKey": None},
    })
    assert redactor.secrets == frozenset({"hunter22", "987654", "L-1"})


@pytest.mark.parametrize("value", [None, True, False, ""])
def test_add_secret_ignores_empty_and_booleans(value):
    redactor = Redactor()
    redactor.add_secret(value)
    assert redactor.secrets == frozenset()


def test_redact_values_secret_set_from_null_is_changed_on_both_sides():
    before, after = {"db": {"password": None}}, {"db": {"password": "hunter22"}}
    redactor = Redactor()
    assert redactor.redact_values(before, after) == {"db": {"password": REDACTED_CHANGED}}
    assert redactor.redact_values(after, before) == {"db": {"password": REDACTED_CHANGED}}


# ---- what helm, a chart and JSON print ------------------------------------------------------------

PRINTED_SECRET = "pa\"ss\\w<r>d&\u00e9\U0001f511"


@pytest.mark.parametrize("shown", [
    PRINTED_SECRET,
    r'pa\"ss\\w<r>d&\u00e9\ud83d\udd11',                          # JSON, ASCII only
    'pa\\"ss\\\\w<r>d&\u00e9\U0001f511',                           # a chart's quote (Go %q), JSON as UTF-8
    r'pa\"ss\\w\u003cr\u003ed\u0026\u00e9\ud83d\udd11',            # a chart's toJson (Go escapes <, >, &)
    "cGEic3NcdzxyPmQmw6nwn5SR",                                     # b64enc outside a Secret's data
])
def test_redact_text_masks_the_forms_a_secret_is_printed_in(shown):
    redactor = Redactor()
    redactor.add_secret(PRINTED_SECRET)
    assert redactor.redact_text(f"value: {shown}.") == f"value: {MASK}."


@pytest.mark.parametrize("value_type, expression, read", [
    ("raw", r"db.password=a\,b\\c\{d", "a,b\\c{d"),
    ("string", r"db.password=-x\=y", "-x=y"),
    ("json", r'db.password="q\"uote"', 'q"uote'),
    ("json", 'creds={"token": "nested-json"}', "nested-json"),
    ("literal", r"db.password=a\,b", r"a\,b"),
])
def test_add_set_value_registers_the_value_helm_reads(value_type, expression, read):
    redactor = Redactor()
    redactor.add_set_value(expression, value_type)
    assert read in redactor.secrets and expression in redactor.secrets


def test_add_set_value_registers_a_set_file_s_content_under_a_sensitive_key_only():
    redactor = Redactor()
    redactor.add_set_value("tls.privateKey=/run/key.pem", "file", "-----KEY-----")
    redactor.add_set_value("banner=/run/banner.txt", "file", "Welcome")
    assert "-----KEY-----" in redactor.secrets and "Welcome" not in redactor.secrets


def test_add_set_value_registers_what_helm_quotes_after_an_unescaped_comma():
    redactor = Redactor()
    redactor.add_set_value("db.password=abc,defghi")
    assert redactor.redact_text('Error: failed parsing --set data: key "defghi" has no value') == \
        f'Error: failed parsing --set data: key "{MASK}" has no value'


def test_add_set_value_keeps_non_sensitive_values_readable():
    redactor = Redactor()
    redactor.add_set_value("image.tag=1.2.3,replicaCount=3")
    assert redactor.redact_text("image 1.2.3, 3 replicas") == "image 1.2.3, 3 replicas"


def test_redact_tree_masks_every_string_and_copies():
    redactor = Redactor()
    redactor.add_secret("Tree-Secret-1234")
    data = {"a": "x Tree-Secret-1234 y", "b": [1, None, True, {"c": ("Tree-Secret-1234",)}], "d": 2.5}
    swept = redactor.redact_tree(data)
    assert swept == {"a": "x ******** y", "b": [1, None, True, {"c": ["********"]}], "d": 2.5}
    assert data["a"] == "x Tree-Secret-1234 y"  # the input is left as it was
    assert Redactor().redact_tree(data) == dict(data, b=[1, None, True, {"c": ["Tree-Secret-1234"]}])


# ---- values nested past the limit ----------------------------------------------------------


def _nested(depth: int, leaf: object) -> object:
    tree = leaf
    for _level in range(depth):
        tree = {"config": tree}
    return tree


def test_redact_values_shows_values_up_to_the_nesting_limit_and_cuts_below():
    at_limit = Redactor().redact_values(_nested(MAX_VALUES_DEPTH, "x"))
    past = Redactor().redact_values(_nested(MAX_VALUES_DEPTH + 1, "x"))
    assert at_limit == _nested(MAX_VALUES_DEPTH, "x")
    assert past == _nested(MAX_VALUES_DEPTH, TOO_DEEP)
    # 5,000 levels: a recursion without that cut ends in RecursionError.
    assert Redactor().redact_values(_nested(5000, "x")) == past


def test_add_set_value_does_not_parse_json_nested_past_the_limit():
    redactor = Redactor()
    expression = "auth=" + '{"token": ' * 5000 + '"deep-secret"' + "}" * 5000
    redactor.add_set_value(expression, "json")  # json.loads would raise RecursionError
    assert expression in redactor.secrets and "deep-secret" not in redactor.secrets
    redactor.add_set_value('auth={"token": "shallow-secret"}', "json")
    assert "shallow-secret" in redactor.secrets
